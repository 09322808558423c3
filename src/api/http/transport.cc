// One keep-alive connection: wait for a request (idle timeout), read its header (header timeout)
// and body (body timeout) with a bounded parser, hand it to the Handler, write the reply, repeat.
// Requests on one connection are answered in order; bytes of a pipelined next request stay in the
// read buffer until the current reply is written, so nothing is buffered without bound.
#include "api/http/transport.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/http/v2_json.h"
#include "boost/asio/basic_stream_socket.hpp"
#include "boost/asio/basic_waitable_timer.hpp"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/empty_body.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"

namespace flywheel::api::http {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
// Each io_context runs on one thread: a connection's handlers never run concurrently, so the
// concrete executor type replaces strands and the type-erased executor (both allocate and lock).
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using Clock = std::chrono::steady_clock;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Socket socket, std::shared_ptr<Transport> transport)
      : socket_(std::move(socket)),
        transport_(std::move(transport)),
        options_(transport_->options()),
        timer_(socket_.get_executor()),
        tick_(Ms(std::max(1, std::min({options_.header_timeout_ms, options_.body_timeout_ms,
                                       options_.idle_timeout_ms, kMaxLingerMs})))),
        // The read buffer holds at most a header or one read's worth of body at a time.
        buffer_(options_.max_header_bytes + (64 << 10)) {}

  void Start() {
    net::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      self->ArmTimer();
      self->ReadHeader();
    });
  }

  // StopAccepting: a connection waiting for its next request closes now; a busy one closes
  // after its reply (the reply says Connection: close).
  void CloseIfIdle() {
    if (state_ == State::kIdle) {
      CloseSocket();
    }
  }

  void Send(Reply reply) { Write(std::move(reply), /*close=*/false); }

  Executor executor() { return socket_.get_executor(); }

 private:
  enum class State { kIdle, kReading, kHandling, kWriting, kLingering, kClosed };
  // How long a connection closed after an error keeps reading what the client still sends.
  static constexpr int kMaxLingerMs = 30000;
  static constexpr size_t kIdleReadBytes = 64 << 10;

  static std::chrono::milliseconds Ms(int ms) { return std::chrono::milliseconds(ms); }

  // Timeouts. Each phase (idle, header, body, write) sets a deadline; one timer per connection
  // checks it. The timer never fires later than `tick_` (the shortest timeout) after it was
  // armed, so it is at or before any deadline set meanwhile, and it is re-armed only when it
  // fires: a request costs two clock reads, not timer operations and syscalls.
  void SetDeadline(int ms) { deadline_ = Clock::now() + Ms(ms); }
  void ClearDeadline() { deadline_ = Clock::time_point::max(); }

  void ArmTimer() {
    const Clock::time_point now = Clock::now();
    timer_.expires_at(deadline_ - now < tick_ ? deadline_ : now + tick_);
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->state_ == State::kClosed) return;  // Finish cancelled it
      if (Clock::now() < self->deadline_) return self->ArmTimer();
      // The pending read or write fails with operation_aborted and finishes the connection.
      self->CloseSocket();
    });
  }

  void CloseSocket() {
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

  // Between requests: wait for the first byte of the next one under the idle timeout. (Waiting
  // for readiness instead costs an epoll_ctl to re-arm the edge-triggered descriptor: no better
  // than the read that fails with EAGAIN here.) The read takes up to 64 KiB, the buffer's spare
  // room: a request of a few kilobytes then arrives in one read instead of three.
  void WaitForRequest() {
    if (buffer_.size() > 0) return ReadHeader();
    state_ = State::kIdle;
    SetDeadline(options_.idle_timeout_ms);
    socket_.async_read_some(buffer_.prepare(kIdleReadBytes),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->Finish();
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    state_ = State::kReading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    parser_->body_limit(options_.max_request_bytes);
    SetDeadline(options_.header_timeout_ms);
    bhttp::async_read_header(
        socket_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& header = parser_->get();
    version_ = header.version();
    auto expect = header.find(bhttp::field::expect);
    if (expect != header.end() && !parser_->is_done() &&
        absl::EqualsIgnoreCase(absl::string_view(expect->value().data(), expect->value().size()),
                               "100-continue")) {
      // Clients such as curl wait for this before sending a large body.
      continue_.emplace(bhttp::status::continue_, version_);
      SetDeadline(options_.body_timeout_ms);
      bhttp::async_write(socket_, *continue_,
                         [self = shared_from_this()](beast::error_code ec, size_t) {
                           if (ec) return self->Finish();
                           self->ReadBody();
                         });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return Dispatch();
    SetDeadline(options_.body_timeout_ms);
    bhttp::async_read(socket_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        if (ec) return self->OnReadError(ec);
                        self->Dispatch();
                      });
  }

  void OnReadError(beast::error_code ec) {
    // A peer that went away or went quiet gets no answer; a broken request gets one, then close.
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == net::error::operation_aborted || ec == net::error::connection_reset ||
        ec == net::error::eof) {
      return Finish();
    }
    if (ec == bhttp::error::body_limit) {
      return Write(ErrorReply(bhttp::status::payload_too_large,
                              absl::StrCat("the request body exceeds the limit of ",
                                           options_.max_request_bytes, " bytes")),
                   /*close=*/true);
    }
    if (ec == bhttp::error::header_limit) {
      return Write(ErrorReply(bhttp::status::request_header_fields_too_large,
                              absl::StrCat("the request header exceeds the limit of ",
                                           options_.max_header_bytes, " bytes")),
                   /*close=*/true);
    }
    if (ec == bhttp::error::partial_message) return Finish();
    Write(ErrorReply(bhttp::status::bad_request,
                     absl::StrCat("malformed HTTP request: ", ec.message())),
          /*close=*/true);
  }

  void Dispatch() {
    state_ = State::kHandling;
    keep_alive_ = parser_->get().keep_alive();
    Request request = parser_->release();
    parser_.reset();
    // No timer while the handler works: a slow model is not the client's fault.
    ClearDeadline();
    // The reply may come from another thread after the server is gone: hold nothing alive.
    std::weak_ptr<Connection> weak = weak_from_this();
    std::weak_ptr<Transport> transport = transport_;
    transport_->handler().Handle(std::move(request), [weak, transport](Reply reply) {
      std::shared_ptr<Transport> t = transport.lock();
      if (t == nullptr) return;
      t->PostToConnection(
          weak, [reply = std::move(reply)](Connection& c) mutable { c.Send(std::move(reply)); });
    });
  }

  // `close`: the request could not be read completely; the reply ends the connection.
  void Write(Reply reply, bool close) {
    if (state_ == State::kClosed || state_ == State::kLingering) return;
    state_ = State::kWriting;
    const bool keep = keep_alive_ && !close && !transport_->stopping();
    reply_ = std::move(reply);
    // The status line and header are formatted into a string the connection keeps (and so
    // reuses), then written with the body in one gather write: no per-request allocation for
    // header fields or a serializer.
    const unsigned code = static_cast<unsigned>(reply_.status);
    // 1xx, 204 and 304 carry no body and no Content-Length (RFC 9110 8.6).
    const bool bodyless = code < 200 || code == 204 || code == 304;
    head_.clear();
    const auto reason = bhttp::obsolete_reason(reply_.status);
    absl::StrAppend(&head_, version_ == 10 ? "HTTP/1.0 " : "HTTP/1.1 ", code, " ",
                    absl::string_view(reason.data(), reason.size()), "\r\nServer: flywheel\r\n");
    if (!reply_.content_type.empty()) AppendField("Content-Type", reply_.content_type);
    for (const auto& [name, value] : reply_.headers) AppendField(name, value);
    buffers_.clear();
    buffers_.emplace_back();  // the header, filled in below
    if (!bodyless) {
      size_t length = reply_.body.text.size();
      for (const net::const_buffer& b : reply_.body.tail) length += b.size();
      absl::StrAppend(&head_, "Content-Length: ", length, "\r\n");
      if (!reply_.body.text.empty()) buffers_.emplace_back(net::buffer(reply_.body.text));
      buffers_.insert(buffers_.end(), reply_.body.tail.begin(), reply_.body.tail.end());
    }
    // HTTP/1.1 keeps connections open unless told; HTTP/1.0 closes them unless told.
    if (version_ == 11 && !keep) head_ += "Connection: close\r\n";
    if (version_ == 10 && keep) head_ += "Connection: keep-alive\r\n";
    head_ += "\r\n";
    buffers_.front() = net::buffer(head_);
    SetDeadline(options_.body_timeout_ms);
    net::async_write(socket_, buffers_,
                     [self = shared_from_this(), keep, close](beast::error_code ec, size_t) {
                       self->reply_ = Reply();
                       if (ec) return self->Finish();
                       if (close) return self->Linger();
                       if (!keep) return self->Finish();
                       self->WaitForRequest();
                     });
  }

  // One header line; CR and LF in a value become spaces, so no value can start a new field.
  void AppendField(absl::string_view name, absl::string_view value) {
    absl::StrAppend(&head_, name, ": ");
    const size_t start = head_.size();
    head_.append(value.data(), value.size());
    for (size_t i = start; i < head_.size(); ++i) {
      if (head_[i] == '\r' || head_[i] == '\n') head_[i] = ' ';
    }
    head_ += "\r\n";
  }

  // After an error reply with part of the request unread: stop sending and discard what the
  // client still sends, so that closing does not reset the connection before it reads the reply.
  void Linger() {
    state_ = State::kLingering;
    beast::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    SetDeadline(std::min(options_.body_timeout_ms, kMaxLingerMs));
    Discard();
  }

  void Discard() {
    buffer_.clear();
    socket_.async_read_some(buffer_.prepare(64 << 10),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Finish();
                              self->Discard();
                            });
  }

  void Finish() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    CloseSocket();
    timer_.cancel();
    transport_->Remove(this);
  }

  Socket socket_;
  std::shared_ptr<Transport> transport_;
  const TransportOptions& options_;
  net::basic_waitable_timer<Clock, net::wait_traits<Clock>, Executor> timer_;
  const Clock::duration tick_;
  Clock::time_point deadline_ = Clock::time_point::max();
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<RequestBody>> parser_;
  std::optional<bhttp::response<bhttp::empty_body>> continue_;
  // The reply being written, its formatted header and the buffers of the gather write.
  Reply reply_;
  std::string head_;
  std::vector<net::const_buffer> buffers_;
  State state_ = State::kReading;
  unsigned version_ = 11;
  bool keep_alive_ = false;
};

Transport::Transport(std::vector<net::io_context*> contexts, TransportOptions options,
                     std::shared_ptr<Handler> handler)
    : contexts_(std::move(contexts)),
      options_(options),
      handler_(std::move(handler)),
      acceptor_(std::in_place, *contexts_.front()),
      accept_retry_(std::in_place, acceptor_->get_executor()) {}

net::io_context& Transport::NextContext() {
  net::io_context& io = *contexts_[next_context_];
  next_context_ = (next_context_ + 1) % contexts_.size();
  return io;
}

absl::StatusOr<int> Transport::Listen(const std::string& address, int port) {
  beast::error_code ec;
  auto ip = net::ip::make_address(address, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("invalid bind address '", address, "'"));
  tcp::endpoint endpoint(ip, static_cast<unsigned short>(port));
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) acceptor_->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_->bind(endpoint, ec);
  if (!ec) acceptor_->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", address, ":", port, ": ", ec.message()));
  }
  return static_cast<int>(acceptor_->local_endpoint().port());
}

void Transport::StartAccepting() {
  net::dispatch(acceptor_->get_executor(), [self = shared_from_this()] { self->Accept(); });
}

void Transport::Accept() {
  acceptor_->async_accept(NextContext(),
                          [self = shared_from_this()](beast::error_code ec, Socket socket) {
                            if (ec == net::error::operation_aborted || !self->acceptor_->is_open())
                              return;
                            if (ec) {
                              // Out of file descriptors and the like: retry shortly instead of
                              // spinning, and never stop listening.
                              self->accept_retry_->expires_after(std::chrono::milliseconds(50));
                              self->accept_retry_->async_wait([self](beast::error_code wait_ec) {
                                if (!wait_ec && self->acceptor_->is_open()) self->Accept();
                              });
                              return;
                            }
                            socket.set_option(tcp::no_delay(true), ec);
                            auto connection = std::make_shared<Connection>(std::move(socket), self);
                            self->Add(connection);
                            connection->Start();
                            self->Accept();
                          });
}

void Transport::StopAccepting() {
  stopping_.store(true, std::memory_order_release);
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  net::dispatch(acceptor_->get_executor(), [self = shared_from_this()] {
    beast::error_code ec;
    self->acceptor_->close(ec);
    self->accept_retry_->cancel();
  });
  for (auto& [raw, connection] : connections_) {
    net::post(connection->executor(), [c = connection] { c->CloseIfIdle(); });
  }
}

void Transport::Close() {
  absl::flat_hash_map<Connection*, std::shared_ptr<Connection>> connections;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    connections.swap(connections_);
  }
  // Nothing of the io_context may outlive it; a late reply can still hold this object.
  accept_retry_.reset();
  acceptor_.reset();
  connections.clear();
}

void Transport::PostToConnection(const std::weak_ptr<Connection>& connection,
                                 std::function<void(Connection&)> fn) {
  absl::ReaderMutexLock lock(&mu_);
  if (closed_) return;
  std::shared_ptr<Connection> c = connection.lock();
  if (c == nullptr) return;
  auto executor = c->executor();
  net::post(executor, [c = std::move(c), fn = std::move(fn)] { fn(*c); });
}

void Transport::Add(const std::shared_ptr<Connection>& connection) {
  absl::MutexLock lock(&mu_);
  if (closed_) return;
  connections_[connection.get()] = connection;
}

void Transport::Remove(Connection* connection) {
  absl::MutexLock lock(&mu_);
  connections_.erase(connection);
}

}  // namespace flywheel::api::http
