// The HTTP load run of `flywheel bench --url`: the connections are spread over a few threads,
// each running one event loop, the way wrk drives its connections. A thread per connection (64
// of them at concurrency 64) spends more CPU on wake-ups than the server spends on the request,
// and on a machine shared with the server that CPU is taken from the server being measured.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "cli/load_bench_transport.h"

namespace flywheel::cli {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// A request still unanswered after this fails the run (the blocking client's limit too).
constexpr std::chrono::seconds kTimeout{60};
// How often a loop looks for requests past kTimeout: one timer per loop, not one per request.
constexpr std::chrono::milliseconds kTick{100};

class Loop;

// One keep-alive connection in closed loop, driven by its loop's thread only.
class LoopConnection {
 public:
  LoopConnection(Loop& loop, int index) : loop_(loop), index_(index) {}

  absl::Status Open();
  void Send();
  // Closes the socket of a request past its deadline; the pending operation then fails.
  void CheckDeadline(Clock::time_point now);

 private:
  void OnResponse(beast::error_code ec);
  void Done(const absl::Status& status);

  Loop& loop_;
  const int index_;
  std::optional<tcp::socket> socket_;
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::string_body>> parser_;
  Clock::time_point start_;
  bool in_flight_ = false;
  bool timed_out_ = false;
};

// One thread's event loop and the connections it drives.
class Loop {
 public:
  Loop(const tcp::resolver::results_type& endpoints, const std::string& request,
       const std::string& model, const OnRequestDone& done)
      : io_(1), endpoints_(endpoints), request_(request), model_(model), done_(done), tick_(io_) {}

  absl::Status Add(int index) {
    connections_.push_back(std::make_unique<LoopConnection>(*this, index));
    return connections_.back()->Open();
  }

  void Run() {
    for (auto& c : connections_) c->Send();
    Tick();
    io_.run();
  }

  // After a connection stopped: the loop ends once all have (the tick timer is cancelled).
  void ConnectionStopped() {
    if (++stopped_ == connections_.size()) tick_.cancel();
  }

  net::io_context& io() { return io_; }
  const tcp::resolver::results_type& endpoints() const { return endpoints_; }
  const std::string& request() const { return request_; }
  const std::string& model() const { return model_; }
  const OnRequestDone& done() const { return done_; }

 private:
  void Tick() {
    tick_.expires_after(kTick);
    tick_.async_wait([this](beast::error_code ec) {
      // cancel() cannot stop a handler whose timer had already expired: it would re-arm the
      // timer, and the loop would never run out of work.
      if (ec || stopped_ == connections_.size()) return;
      const Clock::time_point now = Clock::now();
      for (auto& c : connections_) c->CheckDeadline(now);
      Tick();
    });
  }

  net::io_context io_;
  const tcp::resolver::results_type& endpoints_;
  const std::string& request_;
  const std::string& model_;
  const OnRequestDone& done_;
  net::steady_timer tick_;
  std::vector<std::unique_ptr<LoopConnection>> connections_;
  size_t stopped_ = 0;
};

absl::Status LoopConnection::Open() {
  socket_.emplace(loop_.io());
  beast::error_code ec;
  net::connect(*socket_, loop_.endpoints(), ec);
  if (!ec) socket_->set_option(tcp::no_delay(true), ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("load connection ", index_, ": cannot connect: ", ec.message()));
  }
  buffer_.clear();
  return absl::OkStatus();
}

void LoopConnection::Send() {
  start_ = Clock::now();
  in_flight_ = true;
  timed_out_ = false;
  net::async_write(*socket_, net::buffer(loop_.request()), [this](beast::error_code ec, size_t) {
    if (ec) return OnResponse(ec);
    parser_.emplace();
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser_->header_limit(1 << 20);
    http::async_read(*socket_, buffer_, *parser_,
                     [this](beast::error_code ec, size_t) { OnResponse(ec); });
  });
}

void LoopConnection::CheckDeadline(Clock::time_point now) {
  if (in_flight_ && now - start_ > kTimeout) {
    timed_out_ = true;
    beast::error_code ignored;
    socket_->close(ignored);
  }
}

void LoopConnection::OnResponse(beast::error_code ec) {
  in_flight_ = false;
  if (ec) {
    if (timed_out_) {
      return Done(absl::DeadlineExceededError(absl::StrCat(
          "load connection ", index_, ": no response within ", kTimeout.count(), " s")));
    }
    return Done(
        absl::UnavailableError(absl::StrCat("load connection ", index_, ": ", ec.message())));
  }
  const http::response<http::string_body>& response = parser_->get();
  absl::Status status;
  if (response.result() != http::status::ok) {
    status = HttpStatusError(response.result_int(), response.body(),
                             absl::StrCat("model '", loop_.model(), "' inference"));
  } else if (!response.keep_alive()) {
    // The server ends the connection after this answer: the next request needs a new one.
    beast::error_code ignored;
    socket_->close(ignored);
    status = Open();
  }
  Done(status);
}

void LoopConnection::Done(const absl::Status& status) {
  const bool more = loop_.done()(index_, SteadyNs(start_), SteadyNs(Clock::now()), status);
  parser_.reset();
  if (more && status.ok()) return Send();
  beast::error_code ignored;
  socket_->close(ignored);
  loop_.ConnectionStopped();
}

class HttpLoadRun : public LoadRun {
 public:
  HttpLoadRun(std::string request, std::string model, OnRequestDone done)
      : request_(std::move(request)), model_(std::move(model)), done_(std::move(done)) {}
  ~HttpLoadRun() override { Join(); }

  absl::Status Open(const std::string& host, int port, const LoadSpec& spec) {
    net::io_context resolver_io;
    tcp::resolver resolver(resolver_io);
    beast::error_code ec;
    endpoints_ = resolver.resolve(host, std::to_string(port), ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot resolve host '", host, "': ", ec.message()));
    }
    int threads = spec.threads;
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::clamp(threads, 1, std::max(1, spec.concurrency));
    for (int t = 0; t < threads; ++t) {
      loops_.push_back(std::make_unique<Loop>(endpoints_, request_, model_, done_));
    }
    for (int k = 0; k < spec.concurrency; ++k) {
      absl::Status status = loops_[k % threads]->Add(k);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  void Start() {
    for (auto& loop : loops_) threads_.emplace_back([l = loop.get()] { l->Run(); });
  }

  void Join() override {
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  const std::string request_;
  const std::string model_;
  const OnRequestDone done_;
  tcp::resolver::results_type endpoints_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LoadRun>> StartHttpLoad(const std::string& host, int port,
                                                       std::string request, const LoadSpec& spec,
                                                       OnRequestDone done) {
  auto run = std::make_unique<HttpLoadRun>(std::move(request), spec.model, std::move(done));
  absl::Status status = run->Open(host, port, spec);
  if (!status.ok()) return status;
  run->Start();
  return std::unique_ptr<LoadRun>(std::move(run));
}

}  // namespace flywheel::cli
