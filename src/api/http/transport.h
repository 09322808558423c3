// The HTTP/1.1 transport under HttpServer: an acceptor and keep-alive connections on Boost.Beast,
// with size limits, header/body/idle timeouts and a Handler that answers each request, possibly
// later and from another thread. Internal to api/http.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "api/http/http_message.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"

namespace flywheel::api::http {

struct TransportOptions {
  size_t max_request_bytes = 64 << 20;
  size_t max_header_bytes = 64 << 10;
  int header_timeout_ms = 10000;
  int body_timeout_ms = 60000;
  int idle_timeout_ms = 60000;
};

class Connection;

// State shared by the acceptor, the connections and the respond callbacks that a handler may call
// from other threads after the server is gone.
class Transport : public std::enable_shared_from_this<Transport> {
 public:
  // `contexts`: one io_context per I/O thread, each run by exactly one thread, so a connection
  // needs no strand. The acceptor lives on the first; connections are spread round-robin.
  Transport(std::vector<boost::asio::io_context*> contexts, TransportOptions options,
            std::shared_ptr<Handler> handler);
  Transport(boost::asio::io_context& io, TransportOptions options, std::shared_ptr<Handler> handler)
      : Transport(std::vector<boost::asio::io_context*>{&io}, options, std::move(handler)) {}

  // Binds and listens; port 0 picks a free one.
  absl::StatusOr<int> Listen(const std::string& address, int port);
  void StartAccepting();
  // Closes the listener; keep-alive connections close after their current response, idle ones
  // at once.
  void StopAccepting();
  // Call after the io_context has stopped and its threads have joined: refuses late replies and
  // closes every connection.
  void Close();

  const TransportOptions& options() const { return options_; }
  Handler& handler() { return *handler_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // Runs `fn` on the connection's executor unless the transport is closed.
  void PostToConnection(const std::weak_ptr<Connection>& connection,
                        std::function<void(Connection&)> fn);
  void Add(const std::shared_ptr<Connection>& connection);
  void Remove(Connection* connection);

 private:
  void Accept();

  boost::asio::io_context& NextContext();

  std::vector<boost::asio::io_context*> contexts_;
  size_t next_context_ = 0;  // used by the acceptor's thread only
  TransportOptions options_;
  std::shared_ptr<Handler> handler_;
  // Reset by Close: nothing bound to the io_context may outlive it.
  std::optional<boost::asio::ip::tcp::acceptor> acceptor_;
  std::optional<boost::asio::steady_timer> accept_retry_;
  std::atomic<bool> stopping_{false};
  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Every open connection, so that StopAccepting reaches idle ones and Close destroys them while
  // the io_context still exists.
  absl::flat_hash_map<Connection*, std::shared_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace flywheel::api::http
