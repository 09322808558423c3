#include "cli/load_bench.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <rapidjson/document.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "absl/strings/str_cat.h"
#include "cli/load_bench_transport.h"
#include "gmock/gmock.h"
#include "grpc_service.grpc.pb.h"
#include "gtest/gtest.h"

namespace flywheel::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

TEST(LoadBenchTest, ParseConcurrency) {
  EXPECT_THAT(*ParseConcurrency("8"), ElementsAre(8));
  EXPECT_THAT(*ParseConcurrency("1,4, 16"), ElementsAre(1, 4, 16));
  EXPECT_THAT(*ParseConcurrency("1:64"), ElementsAre(1, 2, 4, 8, 16, 32, 64));
  EXPECT_THAT(*ParseConcurrency("3:20"), ElementsAre(3, 6, 12, 20));
  EXPECT_THAT(*ParseConcurrency("4:16:4"), ElementsAre(4, 8, 12, 16));
  EXPECT_THAT(*ParseConcurrency("4:14:4"), ElementsAre(4, 8, 12));
  EXPECT_THAT(*ParseConcurrency("5:5"), ElementsAre(5));
  for (const char* bad : {"", "0", "-1", "x", "8:2", "1:2:3:4", "1:0", "1:8:0", "1,,2", "99999"}) {
    EXPECT_FALSE(ParseConcurrency(bad).ok()) << bad;
  }
  EXPECT_THAT(ParseConcurrency("8:2").status().message(), HasSubstr("start is larger than end"));
}

TEST(LoadBenchTest, ParseServerUrl) {
  auto a = ParseServerUrl("http://127.0.0.1:8123", "http");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 8123);
  EXPECT_EQ(ParseServerUrl("localhost", "http")->port, 8000);
  EXPECT_EQ(ParseServerUrl("localhost", "grpc")->port, 8001);
  EXPECT_EQ(ParseServerUrl("grpc://h:9", "grpc")->host, "h");
  EXPECT_EQ(ParseServerUrl("http://h:9/", "http")->port, 9);
  auto v6 = ParseServerUrl("http://[::1]:8000", "http");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8000);
  for (const char* bad : {"http://", "http://h:0", "http://h:70000", "http://h:x", "http://h:80/v2",
                          "https://h:443", "[::1", "http://[::1]x"}) {
    EXPECT_FALSE(ParseServerUrl(bad, "http").ok()) << bad;
  }
}

TEST(LoadBenchTest, PercentileIsNearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(Percentile(v, 50), 50);
  EXPECT_EQ(Percentile(v, 90), 90);
  EXPECT_EQ(Percentile(v, 99), 99);
  EXPECT_EQ(Percentile(v, 100), 100);
  EXPECT_EQ(Percentile({7}, 99), 7);
  EXPECT_EQ(Percentile({1, 2, 3}, 50), 2);
  EXPECT_EQ(Percentile({1, 2}, 50), 1);
  EXPECT_EQ(Percentile({}, 50), 0);
}

ModelMetadata TwoInputModel() {
  ModelMetadata m;
  m.name = "m";
  m.inputs = {{"x", DataType::kFp32, {-1, 3}},
              {"ids", DataType::kInt64, {-1, -1}},
              {"s", DataType::kBytes, {-1}},
              {"h", DataType::kFp16, {-1, 2}}};
  m.outputs = {{"y", DataType::kFp32, {-1, 1}}};
  return m;
}

TEST(LoadBenchTest, RequestInputsResolveShapesAndFillData) {
  auto zero = MakeRequestInputs(TwoInputModel(), 4, 5, 0, "zero");
  ASSERT_TRUE(zero.ok()) << zero.status();
  ASSERT_EQ(zero->size(), 4u);
  EXPECT_THAT((*zero)[0].shape, ElementsAre(4, 3));
  EXPECT_EQ((*zero)[0].data, std::string(4 * 3 * 4, '\0'));
  EXPECT_THAT((*zero)[1].shape, ElementsAre(4, 5));
  EXPECT_EQ((*zero)[1].data.size(), 4u * 5 * 8);
  EXPECT_EQ((*zero)[2].data, std::string(4 * 4, '\0'));  // four empty strings
  EXPECT_THAT((*zero)[3].shape, ElementsAre(4, 2));
  EXPECT_EQ((*zero)[3].data.size(), 4u * 2 * 2);

  auto random = MakeRequestInputs(TwoInputModel(), 2, 3, 7, "random");
  ASSERT_TRUE(random.ok());
  const std::vector<InputTensor>& r = *random;
  for (int i = 0; i < 6; ++i) {
    float f;
    std::memcpy(&f, r[0].data.data() + 4 * i, 4);
    EXPECT_GE(f, -1.0f);
    EXPECT_LT(f, 1.0f);
  }
  for (int i = 0; i < 6; ++i) {
    int64_t id;
    std::memcpy(&id, r[1].data.data() + 8 * i, 8);
    EXPECT_GE(id, 0);
    EXPECT_LT(id, 7);  // --int-max
  }
  ASSERT_EQ(r[2].data.size(), 2u * (4 + 8));
  EXPECT_EQ(r[2].data.substr(0, 4), std::string("\x08\0\0\0", 4));
  for (int i = 0; i < 4; ++i) {
    uint16_t h;
    std::memcpy(&h, r[3].data.data() + 2 * i, 2);
    EXPECT_LE(h & 0x7c00, 0x3c00) << "FP16 magnitude must stay below 1: " << h;
  }
  // Same seed every time: two runs send the same bytes.
  EXPECT_EQ(MakeRequestInputs(TwoInputModel(), 2, 3, 7, "random")->at(0).data, r[0].data);
}

TEST(LoadBenchTest, RequestInputsRejectBadCombinations) {
  ModelMetadata fixed;
  fixed.name = "f";
  fixed.inputs = {{"x", DataType::kFp32, {1, 3}}};
  auto s = MakeRequestInputs(fixed, 8, 1, 0, "zero");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("model 'f' input 'x' FP32 [1,3]"));
  EXPECT_THAT(s.status().message(), HasSubstr("--batch 8"));
  EXPECT_TRUE(MakeRequestInputs(fixed, 1, 1, 0, "zero").ok());
  EXPECT_FALSE(MakeRequestInputs(fixed, 1, 1, 0, "ones").ok());
  ModelMetadata none;
  none.name = "n";
  EXPECT_THAT(MakeRequestInputs(none, 1, 1, 0, "zero").status().message(), HasSubstr("no inputs"));
  ModelMetadata huge;
  huge.inputs = {{"x", DataType::kFp32, {-1, -1, -1}}};
  EXPECT_THAT(MakeRequestInputs(huge, 100000, 100000, 0, "zero").status().message(),
              HasSubstr("lower --batch or --dim"));
}

TEST(LoadBenchTest, HttpBodyIsJsonHeaderThenBinaryInputs) {
  std::vector<InputTensor> inputs = {{"x", DataType::kFp32, {1, 2}, std::string(8, 'a')},
                                     {"q\"", DataType::kBytes, {1}, std::string("\1\0\0\0z", 5)}};
  size_t header_length = 0;
  std::string body = EncodeHttpInferBody(inputs, {"y"}, &header_length);
  const std::string header =
      "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"parameters\":{"
      "\"binary_data_size\":8}},{\"name\":\"q\\\"\",\"shape\":[1],\"datatype\":\"BYTES\","
      "\"parameters\":{\"binary_data_size\":5}}],\"outputs\":[{\"name\":\"y\",\"parameters\":{"
      "\"binary_data\":true}}]}";
  EXPECT_EQ(header_length, header.size());
  EXPECT_EQ(body, header + std::string(8, 'a') + std::string("\1\0\0\0z", 5));
}

TEST(LoadBenchTest, ParsesMetadataStatsAndErrors) {
  auto m = ParseMetadataJson(R"({"name":"rank","versions":["1"],"platform":"onnxruntime_onnx",)"
                             R"("inputs":[{"name":"x","datatype":"FP32","shape":[-1,256]}],)"
                             R"("outputs":[{"name":"y","datatype":"INT64","shape":[-1]}]})");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->name, "rank");
  ASSERT_EQ(m->inputs.size(), 1u);
  EXPECT_EQ(m->inputs[0].dtype, DataType::kFp32);
  EXPECT_THAT(m->inputs[0].shape, ElementsAre(-1, 256));
  EXPECT_EQ(m->outputs[0].dtype, DataType::kInt64);
  EXPECT_THAT(ParseMetadataJson(R"({"inputs":[{"name":"x","datatype":"F32","shape":[1]}]})")
                  .status()
                  .message(),
              HasSubstr("unknown datatype 'F32'"));
  EXPECT_FALSE(ParseMetadataJson("not json").ok());
  EXPECT_FALSE(ParseMetadataJson(R"({"inputs":[{"name":"x","shape":[1]}]})").ok());

  auto s = ParseStatsJson(
      R"({"model_stats":[{"name":"m","version":"1","inference_count":8,"execution_count":2,)"
      R"("inference_stats":{"success":{"count":4,"ns":400},"queue":{"count":4,"ns":40},)"
      R"("compute_input":{"count":4,"ns":1},"compute_infer":{"count":4,"ns":2},)"
      R"("compute_output":{"count":4,"ns":3}}},)"
      R"({"name":"m","version":"2","inference_count":1,"execution_count":1,)"
      R"("inference_stats":{"queue":{"count":1,"ns":5}}}]})");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->inference_count, 9u);
  EXPECT_EQ(s->execution_count, 3u);
  EXPECT_EQ(s->queue.count, 5u);
  EXPECT_EQ(s->queue.ns, 45u);
  EXPECT_EQ(s->compute_infer.ns, 2u);
  EXPECT_EQ(s->success.count, 4u);
  EXPECT_FALSE(ParseStatsJson("{}").ok());

  EXPECT_EQ(ErrorFromBody(R"({"error":"model 'x' is not loaded"})"), "model 'x' is not loaded");
  EXPECT_EQ(ErrorFromBody("plain text"), "plain text");
  EXPECT_EQ(ErrorFromBody(""), "(empty body)");
}

// --- End to end against fake servers --------------------------------------------------------

// Per-request figures the fake servers report, so that the expected averages are exact.
constexpr uint64_t kQueueNs = 1000, kInputNs = 2000, kInferNs = 3000, kOutputNs = 4000;

std::string StatsJson(uint64_t requests, uint64_t inferences) {
  auto d = [requests](uint64_t ns) {
    return absl::StrCat("{\"count\":", requests, ",\"ns\":", requests * ns, "}");
  };
  return absl::StrCat(
      "{\"model_stats\":[{\"name\":\"m\",\"version\":\"1\",\"inference_count\":", inferences,
      ",\"execution_count\":", requests, ",\"inference_stats\":{\"success\":", d(10000),
      ",\"queue\":", d(kQueueNs), ",\"compute_input\":", d(kInputNs),
      ",\"compute_infer\":", d(kInferNs), ",\"compute_output\":", d(kOutputNs), "}}]}");
}

// Requests and inferences counted in one atomic word, so that a statistics read sees both from
// the same instant (inferences == requests x batch exactly).
class Counts {
 public:
  void Add(uint64_t batch) { packed_.fetch_add((batch << 32) | 1); }
  // {requests, inferences}
  std::pair<uint64_t, uint64_t> Read() const {
    const uint64_t v = packed_.load();
    return {v & 0xffffffffu, v >> 32};
  }

 private:
  std::atomic<uint64_t> packed_{0};
};

// A KServe v2 HTTP server for one model "m" (input x FP32 [-1,3], output y) that checks every
// inference body the way a real server parses the binary extension.
class FakeHttpServer {
 public:
  FakeHttpServer() : acceptor_(ioc_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~FakeHttpServer() {
    stop_ = true;
    beast::error_code ec;
    tcp::socket wake(ioc_);
    wake.connect(acceptor_.local_endpoint(), ec);
    accept_thread_.join();
    wake.close(ec);
    std::lock_guard<std::mutex> lock(mu_);
    for (Worker& w : connection_threads_) w.thread.join();
  }
  int port() const { return port_; }
  // Answer every inference with Connection: close.
  void set_close_after_infer(bool close) { close_after_infer_ = close; }
  // Answer inferences with 503 once this many have succeeded.
  void set_fail_after(uint64_t n) { fail_after_ = n; }
  uint64_t infers() const { return counts_.Read().first; }
  int connections() const { return connections_.load(); }
  std::string last_error() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_error_;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      tcp::socket socket(ioc_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      connections_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      // Threads of connections that have ended are joined here, so that a server closing
      // every connection after one answer does not pile up thousands of them.
      for (size_t i = 0; i < connection_threads_.size();) {
        if (connection_threads_[i].done->load()) {
          connection_threads_[i].thread.join();
          connection_threads_[i] = std::move(connection_threads_.back());
          connection_threads_.pop_back();
        } else {
          ++i;
        }
      }
      auto done = std::make_shared<std::atomic<bool>>(false);
      connection_threads_.push_back(
          {std::thread([this, done, s = std::make_shared<tcp::socket>(std::move(socket))] {
             Serve(*s);
             done->store(true);
           }),
           done});
    }
  }

  void Serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> req;
      beast::error_code ec;
      http::read(socket, buffer, req, ec);
      if (ec) return;
      http::response<http::string_body> res(http::status::ok, req.version());
      res.keep_alive(req.keep_alive());
      const std::string target(req.target());
      if (target == "/v2/models/m" && req.method() == http::verb::get) {
        res.body() = R"({"name":"m","versions":["1"],"platform":"fake",)"
                     R"("inputs":[{"name":"x","datatype":"FP32","shape":[-1,3]}],)"
                     R"("outputs":[{"name":"y","datatype":"FP32","shape":[-1,1]}]})";
      } else if (target == "/v2/models/m/stats") {
        auto [requests, inferences] = counts_.Read();
        res.body() = StatsJson(requests, inferences);
      } else if (target == "/v2/models/m/infer" && req.method() == http::verb::post) {
        if (close_after_infer_) res.keep_alive(false);
        std::string error = counts_.Read().first >= fail_after_ ? "overloaded" : CheckInfer(req);
        if (error == "overloaded") {
          res.result(http::status::service_unavailable);
          res.body() = R"({"error":"model 'm': the queue is full"})";
        } else if (error.empty()) {
          res.body() = R"({"model_name":"m","outputs":[]})";
        } else {
          std::lock_guard<std::mutex> lock(mu_);
          last_error_ = error;
          res.result(http::status::bad_request);
          res.body() = absl::StrCat("{\"error\":\"", error, "\"}");
        }
      } else {
        res.result(http::status::not_found);
        res.body() = "{\"error\":\"unknown model or path " + target + "\"}";
      }
      res.prepare_payload();
      http::write(socket, res, ec);
      if (ec || !res.keep_alive()) return;
    }
  }

  // Empty when the request is what the binary extension requires; counts it then.
  std::string CheckInfer(const http::request<http::string_body>& req) {
    auto it = req.find("Inference-Header-Content-Length");
    if (it == req.end()) return "no Inference-Header-Content-Length";
    size_t header_length = std::stoul(std::string(it->value()));
    const std::string& body = req.body();
    if (header_length > body.size()) return "header length beyond body";
    rapidjson::Document doc;
    doc.Parse(body.data(), header_length);
    if (doc.HasParseError() || !doc.HasMember("inputs")) return "bad JSON header";
    const rapidjson::Value& x = doc["inputs"][0];
    if (std::string(x["name"].GetString()) != "x") return "wrong input name";
    if (std::string(x["datatype"].GetString()) != "FP32") return "wrong datatype";
    const int64_t batch = x["shape"][0].GetInt64();
    if (x["shape"].Size() != 2 || x["shape"][1].GetInt64() != 3) return "wrong shape";
    const uint64_t size = x["parameters"]["binary_data_size"].GetUint64();
    if (size != static_cast<uint64_t>(batch) * 3 * 4) return "wrong binary_data_size";
    if (body.size() - header_length != size) return "body size does not match";
    if (!doc["outputs"][0]["parameters"]["binary_data"].GetBool()) return "outputs not binary";
    counts_.Add(batch);
    return "";
  }

  net::io_context ioc_;
  tcp::acceptor acceptor_;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> close_after_infer_{false};
  std::atomic<uint64_t> fail_after_{std::numeric_limits<uint64_t>::max()};
  Counts counts_;
  std::atomic<int> connections_{0};
  std::thread accept_thread_;
  std::mutex mu_;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> connection_threads_;
  std::string last_error_;
};

std::string TempPath(const std::string& name) {
  return absl::StrCat(testing::TempDir(), "/", name, "_", getpid(), ".json");
}

rapidjson::Document ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  return doc;
}

LoadBenchOptions QuickOptions(const std::string& url, const std::string& json_path) {
  LoadBenchOptions opt;
  opt.url = url;
  opt.model = "m";
  opt.concurrency = "1:2";
  opt.duration_secs = 0.2;
  opt.warmup = 2;
  opt.batches = {1, 4};
  opt.json = true;
  opt.json_path = json_path;
  return opt;
}

void ExpectResults(const rapidjson::Document& doc) {
  ASSERT_TRUE(doc.IsObject());
  const rapidjson::Value& results = doc["results"];
  ASSERT_EQ(results.Size(), 4u);
  const int64_t batches[] = {1, 1, 4, 4};
  const int levels[] = {1, 2, 1, 2};
  for (rapidjson::SizeType i = 0; i < results.Size(); ++i) {
    const rapidjson::Value& r = results[i];
    EXPECT_EQ(r["batch"].GetInt64(), batches[i]);
    EXPECT_EQ(r["concurrency"].GetInt(), levels[i]);
    EXPECT_GT(r["requests"].GetUint64(), 0u);
    EXPECT_GT(r["throughput_infer_per_s"].GetDouble(), 0);
    EXPECT_NEAR(r["throughput_infer_per_s"].GetDouble(),
                r["throughput_req_per_s"].GetDouble() * batches[i], 0.2 * batches[i]);
    EXPECT_LE(r["p50_us"].GetDouble(), r["p90_us"].GetDouble());
    EXPECT_LE(r["p90_us"].GetDouble(), r["p99_us"].GetDouble());
    EXPECT_DOUBLE_EQ(r["server_queue_us"].GetDouble(), kQueueNs / 1000.0);
    EXPECT_DOUBLE_EQ(r["server_compute_us"].GetDouble(),
                     (kInputNs + kInferNs + kOutputNs) / 1000.0);
    EXPECT_EQ(r["server_inferences"].GetUint64(), r["server_executions"].GetUint64() * batches[i]);
  }
  EXPECT_STREQ(doc["model"].GetString(), "m");
  EXPECT_STREQ(doc["inputs"][0]["name"].GetString(), "x");
}

TEST(LoadBenchTest, HttpEndToEndAgainstFakeServer) {
  FakeHttpServer server;
  const std::string path = TempPath("http_bench");
  absl::Status status =
      RunLoadBench(QuickOptions(absl::StrCat("http://127.0.0.1:", server.port()), path));
  ASSERT_TRUE(status.ok()) << status << " server saw: " << server.last_error();
  EXPECT_EQ(server.last_error(), "");
  ExpectResults(ReadJson(path));
  // Keep-alive: one control connection plus one per load thread and level, not one per request.
  EXPECT_EQ(server.connections(), 1 + (1 + 2) * 2);
  // At least the warm-ups, (1 + 2) connections x 2 requests per batch, and one per window.
  EXPECT_GE(server.infers(), 2u * (3 * 2 + 2));
  std::remove(path.c_str());
}

// Eight connections on two event-loop threads; then a server that closes every connection
// after its answer, so each request needs a new one.
TEST(LoadBenchTest, HttpConnectionsShareLoopThreads) {
  FakeHttpServer server;
  const std::string path = TempPath("http_loops");
  LoadBenchOptions opt = QuickOptions(absl::StrCat("http://127.0.0.1:", server.port()), path);
  opt.concurrency = "8";
  opt.batches = {2};
  opt.client_threads = 2;
  absl::Status status = RunLoadBench(opt);
  ASSERT_TRUE(status.ok()) << status << " server saw: " << server.last_error();
  rapidjson::Document doc = ReadJson(path);
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(doc["client_threads"].GetInt(), 2);
  EXPECT_EQ(doc["results"][0]["concurrency"].GetInt(), 8);
  EXPECT_GT(doc["results"][0]["requests"].GetUint64(), 0u);
  EXPECT_EQ(server.connections(), 1 + 8);

  FakeHttpServer closing;
  closing.set_close_after_infer(true);
  opt = QuickOptions(absl::StrCat("http://127.0.0.1:", closing.port()), path);
  opt.concurrency = "3";
  opt.batches = {1};
  status = RunLoadBench(opt);
  ASSERT_TRUE(status.ok()) << status << " server saw: " << closing.last_error();
  EXPECT_EQ(closing.last_error(), "");
  // A connection per inference (the last answer's reconnect may not be used), plus control.
  EXPECT_GE(static_cast<uint64_t>(closing.connections()), closing.infers());
  std::remove(path.c_str());
}

// An error answer in the middle of a run ends it with the server's message.
TEST(LoadBenchTest, HttpErrorDuringRunEndsIt) {
  FakeHttpServer server;
  server.set_fail_after(5);
  LoadBenchOptions opt = QuickOptions(absl::StrCat("http://127.0.0.1:", server.port()), "");
  opt.concurrency = "4";
  opt.client_threads = 2;
  absl::Status status = RunLoadBench(opt);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("model 'm' inference: HTTP 503"));
  EXPECT_THAT(status.message(), HasSubstr("the queue is full"));
}

TEST(LoadBenchTest, HttpErrorsAreClear) {
  FakeHttpServer server;
  LoadBenchOptions opt = QuickOptions(absl::StrCat("http://127.0.0.1:", server.port()), "");
  opt.model = "missing";
  absl::Status status = RunLoadBench(opt);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("model 'missing' metadata: HTTP 404"));
  EXPECT_THAT(status.message(), HasSubstr("unknown model or path"));

  // Nothing listens on a port that was just released.
  int free_port;
  {
    net::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    free_port = a.local_endpoint().port();
  }
  opt = QuickOptions(absl::StrCat("http://127.0.0.1:", free_port), "");
  status = RunLoadBench(opt);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("cannot connect to 127.0.0.1:"));

  opt = QuickOptions(absl::StrCat("http://127.0.0.1:", server.port()), "");
  opt.model = "";
  EXPECT_THAT(RunLoadBench(opt).message(), HasSubstr("--model"));
}

// The same model over gRPC.
class FakeGrpcService final : public inference::GRPCInferenceService::Service {
 public:
  grpc::Status ModelMetadata(grpc::ServerContext*, const inference::ModelMetadataRequest* request,
                             inference::ModelMetadataResponse* response) override {
    if (request->name() != "m") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no model '" + request->name() + "'");
    }
    response->set_name("m");
    auto* x = response->add_inputs();
    x->set_name("x");
    x->set_datatype("FP32");
    x->add_shape(-1);
    x->add_shape(3);
    auto* y = response->add_outputs();
    y->set_name("y");
    y->set_datatype("FP32");
    return grpc::Status::OK;
  }

  grpc::Status ServerLive(grpc::ServerContext*, const inference::ServerLiveRequest*,
                          inference::ServerLiveResponse* response) override {
    response->set_live(true);
    return grpc::Status::OK;
  }

  grpc::Status ModelInfer(grpc::ServerContext*, const inference::ModelInferRequest* request,
                          inference::ModelInferResponse* response) override {
    if (request->model_name() != "m" || request->inputs_size() != 1 ||
        request->raw_input_contents_size() != 1 || request->inputs(0).shape_size() != 2 ||
        request->inputs(0).datatype() != "FP32" || request->outputs_size() != 1 ||
        static_cast<int64_t>(request->raw_input_contents(0).size()) !=
            request->inputs(0).shape(0) * 3 * 4) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed request");
    }
    counts_.Add(request->inputs(0).shape(0));
    response->set_model_name("m");
    return grpc::Status::OK;
  }

  grpc::Status ModelStatistics(grpc::ServerContext*, const inference::ModelStatisticsRequest*,
                               inference::ModelStatisticsResponse* response) override {
    const auto [n, inferences] = counts_.Read();
    auto* m = response->add_model_stats();
    m->set_name("m");
    m->set_inference_count(inferences);
    m->set_execution_count(n);
    auto set = [n](inference::StatisticDuration* d, uint64_t ns) {
      d->set_count(n);
      d->set_ns(n * ns);
    };
    set(m->mutable_inference_stats()->mutable_queue(), kQueueNs);
    set(m->mutable_inference_stats()->mutable_compute_input(), kInputNs);
    set(m->mutable_inference_stats()->mutable_compute_infer(), kInferNs);
    set(m->mutable_inference_stats()->mutable_compute_output(), kOutputNs);
    return grpc::Status::OK;
  }

 private:
  Counts counts_;
};

TEST(LoadBenchTest, GrpcEndToEndAgainstFakeServer) {
  FakeGrpcService service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);
  const std::string path = TempPath("grpc_bench");
  LoadBenchOptions opt = QuickOptions(absl::StrCat("127.0.0.1:", port), path);
  opt.protocol = "grpc";
  absl::Status status = RunLoadBench(opt);
  ASSERT_TRUE(status.ok()) << status;
  ExpectResults(ReadJson(path));
  std::remove(path.c_str());

  opt.model = "nope";
  status = RunLoadBench(opt);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("no model 'nope'"));
  server->Shutdown();
  server->Wait();

  // Server gone: a prompt, clear error.
  opt.model = "m";
  status = RunLoadBench(opt);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("cannot connect to gRPC server 127.0.0.1:"));
}

}  // namespace
}  // namespace flywheel::cli
