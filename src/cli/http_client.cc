#include "cli/http_client.h"

#include <chrono>
#include <limits>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>

#include "absl/strings/str_cat.h"

namespace flywheel::cli {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// Asynchronous operations run to completion on a private io_context: that is what gives a
// synchronous call a deadline (tcp_stream's timer closes the socket when it expires).
struct HttpConnection::Impl {
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buffer;
  tcp::resolver::results_type endpoints;
  std::string peer;
  std::chrono::milliseconds timeout{0};
  bool connected = false;

  absl::Status Connect() {
    beast::error_code ec;
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
    ioc.restart();
    ioc.run();
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot connect to ", peer, ": ", ec.message()));
    }
    stream.socket().set_option(tcp::no_delay(true), ec);
    buffer.clear();
    connected = true;
    return absl::OkStatus();
  }

  void Close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    connected = false;
  }

  beast::error_code Exchange(const HttpRequest& request, HttpResponse* response) {
    beast::error_code ec;
    stream.expires_after(timeout);
    http::async_write(stream, request, [&ec](beast::error_code e, size_t) { ec = e; });
    ioc.restart();
    ioc.run();
    if (ec) return ec;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.header_limit(1 << 20);
    stream.expires_after(timeout);
    http::async_read(stream, buffer, parser, [&ec](beast::error_code e, size_t) { ec = e; });
    ioc.restart();
    ioc.run();
    if (!ec) *response = parser.release();
    return ec;
  }
};

HttpConnection::HttpConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpConnection::~HttpConnection() {
  if (impl_->connected) impl_->Close();
}

absl::StatusOr<std::unique_ptr<HttpConnection>> HttpConnection::Open(
    const std::string& host, int port, std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->peer = absl::StrCat(host, ":", port);
  impl->timeout = timeout;
  beast::error_code ec;
  tcp::resolver resolver(impl->ioc);
  impl->endpoints = resolver.resolve(host, std::to_string(port), ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot resolve host '", host, "': ", ec.message()));
  }
  absl::Status status = impl->Connect();
  if (!status.ok()) return status;
  return std::unique_ptr<HttpConnection>(new HttpConnection(std::move(impl)));
}

absl::Status HttpConnection::RoundTrip(const HttpRequest& request, HttpResponse* response) {
  const bool reused = impl_->connected;
  if (!impl_->connected) {
    absl::Status status = impl_->Connect();
    if (!status.ok()) return status;
  }
  beast::error_code ec = impl_->Exchange(request, response);
  // A kept-alive connection the server has since closed fails on first use; that is not the
  // request's fault, so it gets one fresh connection.
  if (ec && reused &&
      (ec == http::error::end_of_stream || ec == net::error::connection_reset ||
       ec == net::error::broken_pipe || ec == net::error::eof)) {
    impl_->Close();
    absl::Status status = impl_->Connect();
    if (!status.ok()) return status;
    ec = impl_->Exchange(request, response);
  }
  if (ec) {
    impl_->Close();
    if (ec == beast::error::timeout) {
      return absl::DeadlineExceededError(
          absl::StrCat(impl_->peer, ": no response within ", impl_->timeout.count(), " ms"));
    }
    return absl::UnavailableError(absl::StrCat(impl_->peer, ": ", ec.message()));
  }
  if (!response->keep_alive()) impl_->Close();
  return absl::OkStatus();
}

absl::StatusOr<HttpResponse> HttpConnection::Get(const std::string& target) {
  HttpRequest request(http::verb::get, target, 11);
  request.set(http::field::host, impl_->peer);
  request.set(http::field::user_agent, "flywheel-bench");
  HttpResponse response;
  absl::Status status = RoundTrip(request, &response);
  if (!status.ok()) return status;
  return response;
}

const std::string& HttpConnection::peer() const { return impl_->peer; }

}  // namespace flywheel::cli
