// A blocking HTTP/1.1 client connection for the command line tools (Boost.Beast): keep-alive,
// a deadline on every exchange, one transparent reconnect when the server closed an idle
// connection. One connection per thread; it is not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/beast/http.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace flywheel::cli {

using HttpRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpResponse = boost::beast::http::response<boost::beast::http::string_body>;

class HttpConnection {
 public:
  // Resolves host and connects. Fails with UNAVAILABLE (and the system's reason) when nothing
  // listens there.
  static absl::StatusOr<std::unique_ptr<HttpConnection>> Open(const std::string& host, int port,
                                                              std::chrono::milliseconds timeout);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends request and reads the whole response into *response (any status code). Errors are
  // transport errors only: refused, reset, timed out, malformed response.
  absl::Status RoundTrip(const HttpRequest& request, HttpResponse* response);

  // GET target; the status code and body.
  absl::StatusOr<HttpResponse> Get(const std::string& target);

  // "host:port", for messages.
  const std::string& peer() const;

 private:
  struct Impl;
  explicit HttpConnection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace flywheel::cli
