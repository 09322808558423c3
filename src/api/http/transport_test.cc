// The HTTP transport against real sockets: keep-alive, pipelining, limits, timeouts, replies from
// other threads, Expect: 100-continue, StopAccepting; and the metrics server end to end.
#include "api/http/transport.h"

#include <poll.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/http/http_server.h"
#include "api/http/url_path.h"
#include "api/http/v2_json.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/write.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitor/metrics.h"

namespace flywheel::api::http {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using ::testing::HasSubstr;
using ::testing::Not;

// Waits until `s` has something to read (or EOF); false after 5 s, so a broken timeout fails the
// test instead of hanging it.
bool WaitReadable(tcp::socket& s) {
  pollfd p{s.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 5000) == 1;
}

// Echoes "METHOD TARGET BODY"; a target of /later answers from another thread after 50 ms.
class EchoHandler : public Handler {
 public:
  void Handle(Request request, Respond respond) override {
    std::string text =
        absl::StrCat(std::string(request.method_string()), " ", std::string(request.target()), " ",
                     request.body() ? request.body()->view() : "");
    Reply reply;
    reply.content_type = "text/plain";
    reply.body.text = text;
    // Binary tail, to check that the gather write sends every buffer.
    auto tail = std::make_shared<std::string>("|tail");
    reply.body.tail.emplace_back(tail->data(), tail->size());
    reply.body.keep_alive = tail;
    if (request.target() == "/later") {
      std::thread([respond, reply = std::move(reply)]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        respond(std::move(reply));
      }).detach();
      return;
    }
    respond(std::move(reply));
  }
};

class TransportTest : public ::testing::Test {
 protected:
  void Start(TransportOptions options = {}) {
    transport_ = std::make_shared<Transport>(io_, options, std::make_shared<EchoHandler>());
    auto port = transport_->Listen("127.0.0.1", 0);
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    transport_->StartAccepting();
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (transport_ == nullptr) return;
    work_.reset();
    io_.stop();
    thread_.join();
    transport_->Close();
  }

  tcp::socket Connect() {
    tcp::socket s(client_io_);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)));
    return s;
  }

  static void Send(tcp::socket& s, const std::string& bytes) { net::write(s, net::buffer(bytes)); }

  // Reads until the peer closes; "<no close>" when it stays open for 5 s.
  static std::string ReadAll(tcp::socket& s) {
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    for (;;) {
      if (!WaitReadable(s)) return out + "<no close>";
      size_t n = s.read_some(net::buffer(buf), ec);
      out.append(buf, n);
      if (ec) break;
    }
    return out;
  }

  // Reads one response with a Content-Length body.
  static std::string ReadResponse(tcp::socket& s, std::string& pending) {
    char buf[4096];
    for (;;) {
      size_t header_end = pending.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        size_t pos = pending.find("Content-Length: ");
        size_t length = pos < header_end ? std::stoul(pending.substr(pos + 16)) : 0;
        size_t total = header_end + 4 + length;
        if (pending.size() >= total) {
          std::string response = pending.substr(0, total);
          pending.erase(0, total);
          return response;
        }
      }
      boost::system::error_code ec;
      if (!WaitReadable(s)) return "<timeout>";
      size_t n = s.read_some(net::buffer(buf), ec);
      if (ec) return "";
      pending.append(buf, n);
    }
  }

  net::io_context io_{1};
  net::executor_work_guard<net::io_context::executor_type> work_ = net::make_work_guard(io_);
  net::io_context client_io_;
  std::shared_ptr<Transport> transport_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(TransportTest, KeepAliveServesManyRequestsOnOneConnection) {
  Start();
  tcp::socket s = Connect();
  std::string pending;
  for (int i = 0; i < 3; ++i) {
    Send(s, absl::StrCat("POST /x", i, " HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"));
    std::string r = ReadResponse(s, pending);
    EXPECT_THAT(r, HasSubstr("HTTP/1.1 200 OK"));
    EXPECT_THAT(r, HasSubstr(absl::StrCat("POST /x", i, " hi|tail")));
    EXPECT_THAT(r, HasSubstr("Server: flywheel"));
    EXPECT_THAT(r, Not(HasSubstr("Connection: close")));
  }
}

TEST_F(TransportTest, PipelinedRequestsAreAnsweredInOrder) {
  Start();
  tcp::socket s = Connect();
  // The second request arrives before the first (slow) one is answered.
  Send(s,
       "GET /later HTTP/1.1\r\nHost: a\r\n\r\nGET /now HTTP/1.1\r\nHost: a\r\n\r\n"
       "GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  std::string all = ReadAll(s);
  size_t a = all.find("GET /later"), b = all.find("GET /now"), c = all.find("GET /last");
  ASSERT_NE(a, std::string::npos) << all;
  ASSERT_NE(b, std::string::npos) << all;
  ASSERT_NE(c, std::string::npos) << all;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_THAT(all, HasSubstr("Connection: close"));
}

TEST_F(TransportTest, Http10ClosesUnlessKeepAliveIsAsked) {
  Start();
  tcp::socket s = Connect();
  Send(s, "GET /a HTTP/1.0\r\n\r\n");
  std::string r = ReadAll(s);
  EXPECT_THAT(r, HasSubstr("HTTP/1.0 200 OK"));
  EXPECT_THAT(r, HasSubstr("GET /a"));
  tcp::socket k = Connect();
  std::string pending;
  Send(k, "GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_THAT(ReadResponse(k, pending), HasSubstr("Connection: keep-alive"));
  Send(k, "GET /c HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  EXPECT_THAT(ReadResponse(k, pending), HasSubstr("GET /c"));
}

TEST_F(TransportTest, OversizedBodyGets413BeforeItIsRead) {
  TransportOptions o;
  o.max_request_bytes = 1000;
  Start(o);
  tcp::socket s = Connect();
  // Only the header is sent: the answer must not wait for the 5000-byte body.
  Send(s, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n\r\n");
  std::string pending;
  std::string r = ReadResponse(s, pending);
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 413"));
  EXPECT_THAT(r, HasSubstr("Connection: close"));
  EXPECT_THAT(r, HasSubstr("{\"error\":\"the request body exceeds the limit of 1000 bytes\"}"));
  // A body at the limit is fine.
  tcp::socket ok = Connect();
  Send(ok, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'z'));
  EXPECT_THAT(ReadResponse(ok, pending), HasSubstr("200 OK"));
}

TEST_F(TransportTest, OversizedChunkedBodyGets413) {
  TransportOptions o;
  o.max_request_bytes = 100;
  Start(o);
  tcp::socket s = Connect();
  Send(s, "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n80\r\n" +
              std::string(128, 'a') + "\r\n0\r\n\r\n");
  std::string pending;
  EXPECT_THAT(ReadResponse(s, pending), HasSubstr("HTTP/1.1 413"));
}

TEST_F(TransportTest, ChunkedBodyIsAssembled) {
  Start();
  tcp::socket s = Connect();
  Send(s,
       "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n"
       "0\r\n\r\n");
  std::string pending;
  EXPECT_THAT(ReadResponse(s, pending), HasSubstr("POST /c abcde|tail"));
}

TEST_F(TransportTest, MalformedRequestGets400AndClose) {
  Start();
  tcp::socket s = Connect();
  Send(s, "NOT A REQUEST\r\n\r\n");
  std::string r = ReadAll(s);
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 400"));
  EXPECT_THAT(r, HasSubstr("malformed HTTP request"));
}

TEST_F(TransportTest, HugeHeaderGets431) {
  Start();
  tcp::socket s = Connect();
  Send(s, "GET / HTTP/1.1\r\nX-Big: " + std::string(100 << 10, 'x') + "\r\n\r\n");
  EXPECT_THAT(ReadAll(s), HasSubstr("HTTP/1.1 431"));
}

TEST_F(TransportTest, HeaderAndIdleTimeoutsClose) {
  TransportOptions o;
  o.header_timeout_ms = 200;
  o.idle_timeout_ms = 200;
  Start(o);
  // A header that never completes.
  tcp::socket slow = Connect();
  Send(slow, "GET / HTTP/1.1\r\n");
  EXPECT_EQ(ReadAll(slow), "");
  // A keep-alive connection that stays quiet after its first response.
  tcp::socket idle = Connect();
  Send(idle, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  std::string all = ReadAll(idle);
  EXPECT_THAT(all, HasSubstr("GET /a"));
  EXPECT_THAT(all, Not(HasSubstr("<no close>")));
}

TEST_F(TransportTest, BodyTimeoutCloses) {
  TransportOptions o;
  o.body_timeout_ms = 200;
  Start(o);
  tcp::socket s = Connect();
  Send(s, "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_EQ(ReadAll(s), "");
}

TEST_F(TransportTest, ExpectContinueGets100ThenTheResponse) {
  Start();
  tcp::socket s = Connect();
  Send(s, "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
  char buf[256];
  ASSERT_TRUE(WaitReadable(s));
  size_t n = s.read_some(net::buffer(buf));
  EXPECT_THAT(std::string(buf, n), HasSubstr("HTTP/1.1 100 Continue"));
  Send(s, "xyz");
  std::string pending;
  EXPECT_THAT(ReadResponse(s, pending), HasSubstr("POST /e xyz|tail"));
}

TEST_F(TransportTest, StopAcceptingClosesIdleConnectionsAndTheListener) {
  Start();
  tcp::socket idle = Connect();
  std::string pending;
  Send(idle, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_THAT(ReadResponse(idle, pending), HasSubstr("GET /a"));
  // A request being handled when the stop comes still gets its reply, with Connection: close.
  tcp::socket busy = Connect();
  Send(busy, "GET /later HTTP/1.1\r\nHost: a\r\n\r\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  transport_->StopAccepting();
  std::string r = ReadAll(busy);
  EXPECT_THAT(r, HasSubstr("GET /later"));
  EXPECT_THAT(r, HasSubstr("Connection: close"));
  EXPECT_EQ(ReadAll(idle), "");
  tcp::socket late(client_io_);
  boost::system::error_code ec;
  late.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port_)), ec);
  EXPECT_TRUE(ec) << "the listener should be closed";
}

TEST_F(TransportTest, ListenOnABusyPortFails) {
  Start();
  net::io_context io;
  auto other = std::make_shared<Transport>(io, TransportOptions{}, std::make_shared<EchoHandler>());
  auto port = other->Listen("127.0.0.1", port_);
  EXPECT_EQ(port.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(port.status().message()), HasSubstr("cannot listen on 127.0.0.1:"));
  EXPECT_FALSE(other->Listen("not-an-address", 0).ok());
  other->Close();
}

TEST(UrlPath, SplitsAndDecodes) {
  EXPECT_EQ(*SplitPath("/v2/models/a%20b/versions/2/infer?x=1"),
            (std::vector<std::string>{"v2", "models", "a b", "versions", "2", "infer"}));
  EXPECT_EQ(*SplitPath("/v2/"), (std::vector<std::string>{"v2"}));
  EXPECT_EQ(*SplitPath("/"), (std::vector<std::string>{}));
  EXPECT_EQ(*SplitPath("/v2/models/a%2Fb"), (std::vector<std::string>{"v2", "models", "a/b"}));
  EXPECT_EQ(*SplitPath("/v2//x"), (std::vector<std::string>{"v2", "", "x"}));
  EXPECT_FALSE(SplitPath("/v2/%zz").ok());
  EXPECT_FALSE(SplitPath("/v2/%4").ok());
  EXPECT_FALSE(SplitPath("/v2/a%00").ok());
  EXPECT_FALSE(SplitPath("http://host/v2").ok());
  EXPECT_FALSE(SplitPath("").ok());
}

TEST(StatusMapping, FollowsTriton) {
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInvalidArgument), bhttp::status::bad_request);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kFailedPrecondition), bhttp::status::bad_request);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kNotFound), bhttp::status::not_found);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnavailable), bhttp::status::service_unavailable);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kDeadlineExceeded), bhttp::status::service_unavailable);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnimplemented), bhttp::status::not_implemented);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kInternal), bhttp::status::internal_server_error);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kUnauthenticated), bhttp::status::unauthorized);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kPermissionDenied), bhttp::status::forbidden);
  EXPECT_EQ(HttpStatusFor(absl::StatusCode::kResourceExhausted), bhttp::status::too_many_requests);
  EXPECT_EQ(ErrorJson("a \"b\"\n"), "{\"error\":\"a \\\"b\\\"\\n\"}");
}

TEST(V2Json, StatisticsAndIndexShapes) {
  serving::ModelStatistics s;
  s.name = "m";
  s.version = "1";
  s.inference_count = 3;
  s.success = {2, 500};
  s.batch_stats.push_back({4, {1, 10}, {1, 20}, {1, 30}});
  std::string json = StatisticsJson({s});
  EXPECT_THAT(json, HasSubstr("{\"model_stats\":[{\"name\":\"m\",\"version\":\"1\","
                              "\"last_inference\":0,\"inference_count\":3,\"execution_count\":0,"
                              "\"inference_stats\":{\"success\":{\"count\":2,\"ns\":500},"));
  EXPECT_THAT(json, HasSubstr("\"batch_stats\":[{\"batch_size\":4,\"compute_input\":{\"count\":1,"
                              "\"ns\":10},\"compute_infer\":{\"count\":1,\"ns\":20}"));
  EXPECT_EQ(RepositoryIndexJson({{"a", "1", "READY", ""}, {"b", "", "UNAVAILABLE", "bad"}}),
            "[{\"name\":\"a\",\"version\":\"1\",\"state\":\"READY\"},"
            "{\"name\":\"b\",\"state\":\"UNAVAILABLE\",\"reason\":\"bad\"}]");
}

TEST(MetricsServer, ServesPrometheusText) {
  monitor::Registry registry;
  registry.AddCounter("nv_inference_request_success", "Successful requests")
      .WithLabels({{"model", "m"}, {"version", "1"}})
      .Increment(7);
  HttpOptions options;
  options.bind = "127.0.0.1";
  options.port = 0;
  auto server = HttpServer::StartMetrics(options, &registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  net::io_context io;
  auto get = [&](const std::string& request) {
    tcp::socket s(io);
    s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"),
                            static_cast<uint16_t>((*server)->port())));
    net::write(s, net::buffer(request));
    std::string out;
    char buf[4096];
    boost::system::error_code ec;
    for (;;) {
      size_t n = s.read_some(net::buffer(buf), ec);
      out.append(buf, n);
      if (ec) break;
    }
    return out;
  };
  std::string r = get("GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(r, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(r, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(r, HasSubstr("nv_inference_request_success{model=\"m\",version=\"1\"} 7"));
  EXPECT_THAT(get("GET /other HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
              HasSubstr("HTTP/1.1 404"));
  std::string post = get("POST /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(post, HasSubstr("HTTP/1.1 405"));
  EXPECT_THAT(post, HasSubstr("Allow: GET"));
  (*server)->StopAccepting();
  (*server)->Shutdown();
  (*server)->Shutdown();
}

TEST(MetricsServer, RefusesBadOptions) {
  monitor::Registry registry;
  HttpOptions options;
  options.io_threads = 0;
  EXPECT_FALSE(HttpServer::StartMetrics(options, &registry).ok());
  options.io_threads = 1;
  options.bind = "256.0.0.1";
  EXPECT_FALSE(HttpServer::StartMetrics(options, &registry).ok());
}

}  // namespace
}  // namespace flywheel::api::http
