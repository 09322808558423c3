#include "api/http/http_server.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/http/inference_handler.h"
#include "api/http/transport.h"
#include "api/http/url_path.h"
#include "api/http/v2_json.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/thread_pool.hpp"
#include "monitor/metrics.h"

namespace flywheel::api {
namespace {

namespace net = boost::asio;
using http::bhttp::status;

// GET /metrics on the metrics port. Rendering reads atomics and is cheap enough for an I/O thread.
class MetricsHandler : public http::Handler {
 public:
  explicit MetricsHandler(monitor::Registry* registry) : registry_(registry) {}

  void Handle(http::Request request, http::Respond respond) override {
    auto segments =
        http::SplitPath(absl::string_view(request.target().data(), request.target().size()));
    if (!segments.ok()) return respond(http::ErrorReply(segments.status()));
    if (segments->size() != 1 || (*segments)[0] != "metrics") {
      return respond(http::ErrorReply(status::not_found, "the metrics port serves GET /metrics"));
    }
    if (request.method() != http::bhttp::verb::get) {
      http::Reply reply = http::ErrorReply(status::method_not_allowed, "use GET /metrics");
      reply.headers.emplace_back("Allow", "GET");
      return respond(std::move(reply));
    }
    http::Reply reply;
    reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
    reply.body.text = registry_->Render();
    respond(std::move(reply));
  }

 private:
  monitor::Registry* registry_;
};

http::TransportOptions TransportOptionsFrom(const HttpOptions& o) {
  http::TransportOptions t;
  t.max_request_bytes = o.max_request_bytes;
  t.header_timeout_ms = o.header_timeout_ms;
  t.body_timeout_ms = o.body_timeout_ms;
  t.idle_timeout_ms = o.idle_timeout_ms;
  return t;
}

}  // namespace

struct HttpServer::Impl {
  explicit Impl(int io_threads) : blocking(2) {
    for (int i = 0; i < io_threads; ++i) {
      // Concurrency hint 1: each context is run by one thread (other threads only post to it).
      contexts.push_back(std::make_unique<net::io_context>(1));
      work.push_back(net::make_work_guard(*contexts.back()));
    }
  }

  // Destroyed last: everything below is bound to them. One per I/O thread.
  std::vector<std::unique_ptr<net::io_context>> contexts;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> work;
  // Calls that wait (model load and unload).
  net::thread_pool blocking;
  std::shared_ptr<http::Transport> transport;
  std::vector<std::thread> threads;
  bool shut_down = false;
  // I/O threads still inside io.run(); FinishReplies waits for it to reach zero.
  std::mutex running_mu;
  std::condition_variable running_cv;
  int running = 0;

  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const HttpOptions& options, std::function<std::shared_ptr<http::Handler>(Impl&)> make) {
    if (options.io_threads < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("io_threads must be at least 1, got ", options.io_threads));
    }
    auto impl = std::make_unique<Impl>(options.io_threads);
    std::vector<net::io_context*> contexts;
    for (auto& io : impl->contexts) contexts.push_back(io.get());
    impl->transport = std::make_shared<http::Transport>(std::move(contexts),
                                                        TransportOptionsFrom(options), make(*impl));
    auto port = impl->transport->Listen(options.bind, options.port);
    if (!port.ok()) {
      impl->transport->Close();
      return port.status();
    }
    impl->transport->StartAccepting();
    impl->running = options.io_threads;
    for (int i = 0; i < options.io_threads; ++i) {
      impl->threads.emplace_back([self = impl.get(), io = impl->contexts[i].get()] {
        io->run();
        std::lock_guard<std::mutex> lock(self->running_mu);
        if (--self->running == 0) self->running_cv.notify_all();
      });
    }
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl), *port));
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

HttpServer::~HttpServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::StartInference(const HttpOptions& options,
                                                                       serving::Server* server,
                                                                       HttpRoutes routes) {
  return Impl::Start(options, [&](Impl& impl) {
    return std::make_shared<http::InferenceHandler>(
        server, options.admin_token, options.max_request_bytes, &impl.blocking, std::move(routes));
  });
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::StartMetrics(const HttpOptions& options,
                                                                     monitor::Registry* registry) {
  return Impl::Start(options, [&](Impl&) { return std::make_shared<MetricsHandler>(registry); });
}

void HttpServer::StopAccepting() {
  if (!impl_->shut_down) impl_->transport->StopAccepting();
}

bool HttpServer::FinishReplies(int64_t timeout_ms) {
  if (impl_->shut_down) return true;
  impl_->transport->StopAccepting();
  // Without the work guard, run() returns once the last connection has written its reply and
  // closed; what is still pending after the timeout is dropped by Shutdown.
  for (auto& guard : impl_->work) guard.reset();
  std::unique_lock<std::mutex> lock(impl_->running_mu);
  return impl_->running_cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                                    [this] { return impl_->running == 0; });
}

void HttpServer::Shutdown() {
  if (impl_->shut_down) return;
  impl_->shut_down = true;
  impl_->transport->StopAccepting();
  for (auto& guard : impl_->work) guard.reset();
  for (auto& io : impl_->contexts) io->stop();
  for (std::thread& t : impl_->threads) t.join();
  impl_->threads.clear();
  // From here on late replies are dropped and no connection outlives the io_context.
  impl_->transport->Close();
  impl_->blocking.join();
}

}  // namespace flywheel::api
