// The HTTP/1.1 front end: KServe v2 inference endpoints with Triton's extensions (binary tensors,
// model repository, statistics, model configuration) served from a serving::Server, or the
// Prometheus /metrics endpoint of a monitor::Registry. Transport only: decode, call, encode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace flywheel::serving {
class Server;
}  // namespace flywheel::serving

namespace flywheel::monitor {
class Registry;
}  // namespace flywheel::monitor

namespace flywheel::api {

struct HttpOptions {
  std::string bind = "0.0.0.0";
  int port = 8000;  // 0 picks a free port (see HttpServer::port)
  int io_threads = 2;
  // Larger bodies get 413 before they are read.
  size_t max_request_bytes = 64 << 20;
  int header_timeout_ms = 10000;
  int body_timeout_ms = 60000;
  // How long a keep-alive connection may wait for its next request.
  int idle_timeout_ms = 60000;
  // When set, the model repository endpoints (index, load, unload) require the header
  // `Authorization: Bearer <admin_token>`: 401 without it, 403 with another token.
  std::string admin_token;
};

namespace http {
class Handler;
class Transport;
}  // namespace http

// More endpoint families on the inference port, each under `/v1/<prefix>/...` (e.g. "features",
// "monitor"): the handler gets every request whose path starts so.
using HttpRoutes = std::vector<std::pair<std::string, std::shared_ptr<http::Handler>>>;

class HttpServer {
 public:
  // KServe v2 endpoints on options.port, answered by `server`, which must outlive this object.
  static absl::StatusOr<std::unique_ptr<HttpServer>> StartInference(const HttpOptions& options,
                                                                    serving::Server* server,
                                                                    HttpRoutes routes = {});
  // GET /metrics in Prometheus text format (version 0.0.4) from `registry`, which must outlive
  // this object.
  static absl::StatusOr<std::unique_ptr<HttpServer>> StartMetrics(const HttpOptions& options,
                                                                  monitor::Registry* registry);

  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // The bound port.
  int port() const { return port_; }
  // SIGTERM: close the listener. Idle keep-alive connections close now; busy ones after their
  // current response, which carries Connection: close.
  void StopAccepting();
  // After StopAccepting and once the server has answered everything in flight: lets the open
  // connections write their last replies and close, waiting up to `timeout_ms`. Returns true
  // when every connection finished.
  bool FinishReplies(int64_t timeout_ms);
  // Stops the I/O threads and closes every connection; replies still pending are dropped.
  // Waits for repository loads and unloads in progress. Idempotent; the destructor calls it.
  void Shutdown();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl, int port);
  std::unique_ptr<Impl> impl_;
  int port_;
};

}  // namespace flywheel::api
