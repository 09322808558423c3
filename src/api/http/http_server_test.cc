// HttpServer::StartInference over a real serving::Server serving the example `simple` model
// (INT32 add/sub), through real sockets: every endpoint, JSON and binary inference, errors with
// their HTTP statuses, the repository API behind the admin token.
#include "api/http/http_server.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/http/http_message.h"
#include "api/http/v2_json.h"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/tcp_stream.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/http/write.hpp"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitor/metrics.h"
#include "rapidjson/document.h"
#include "serving/server.h"

namespace flywheel::api {
namespace {

namespace fs = std::filesystem;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using ::testing::HasSubstr;

struct Response {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string header_length;  // Inference-Header-Content-Length
  std::string allow;
  std::string www_authenticate;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = fs::temp_directory_path() /
            ("flywheel-http-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(repo_);
    fs::create_directories(repo_);
    const char* src = std::getenv("FLYWHEEL_SOURCE_DIR");
    fs::copy(fs::path(src ? src : ".") / "examples/models/simple", repo_ / "simple",
             fs::copy_options::recursive);
  }

  void TearDown() override {
    http_.reset();
    server_.reset();
    fs::remove_all(repo_);
  }

  void Start(std::string admin_token = "", HttpRoutes routes = {}) {
    serving::ServerOptions options;
    options.model_repositories = {repo_.string()};
    options.control_mode = serving::ModelControlMode::kExplicit;
    options.startup_models = {"*"};
    auto server = serving::Server::Create(options, &registry_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    HttpOptions http;
    http.bind = "127.0.0.1";
    http.port = 0;
    http.max_request_bytes = 1 << 20;
    http.admin_token = std::move(admin_token);
    auto started = HttpServer::StartInference(http, server_.get(), std::move(routes));
    ASSERT_TRUE(started.ok()) << started.status();
    http_ = *std::move(started);
    stream_.emplace(io_);
    stream_->connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"),
                                            static_cast<uint16_t>(http_->port())));
  }

  // One request on the test's keep-alive connection.
  Response Call(bhttp::verb method, const std::string& target, const std::string& body = "",
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, "localhost");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    bhttp::write(*stream_, req);
    bhttp::response<bhttp::string_body> res;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    bhttp::read(*stream_, buffer_, parser);
    res = parser.release();
    Response r;
    r.status = static_cast<int>(res.result_int());
    r.body = res.body();
    r.content_type = std::string(res[bhttp::field::content_type]);
    r.header_length = std::string(res["Inference-Header-Content-Length"]);
    r.allow = std::string(res[bhttp::field::allow]);
    r.www_authenticate = std::string(res[bhttp::field::www_authenticate]);
    return r;
  }

  Response Get(const std::string& target) { return Call(bhttp::verb::get, target); }
  Response Post(const std::string& target, const std::string& body = "",
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    return Call(bhttp::verb::post, target, body, std::move(headers));
  }

  static rapidjson::Document Json(const std::string& s) {
    rapidjson::Document d;
    d.Parse(s.data(), s.size());
    EXPECT_FALSE(d.HasParseError()) << s;
    return d;
  }

  static std::string AddSubJson(const std::string& extra = "") {
    std::string a, b;
    for (int i = 0; i < 16; ++i) {
      absl::StrAppend(&a, i ? "," : "", i);
      absl::StrAppend(&b, i ? "," : "", 1);
    }
    return absl::StrCat(
        "{\"id\":\"q1\",\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT32\",\"shape\":[1,16],"
        "\"data\":[",
        a, "]},{\"name\":\"INPUT1\",\"datatype\":\"INT32\",\"shape\":[1,16],\"data\":[", b, "]}]",
        extra, "}");
  }

  fs::path repo_;
  monitor::Registry registry_;
  std::unique_ptr<serving::Server> server_;
  std::unique_ptr<HttpServer> http_;
  net::io_context io_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

TEST_F(HttpServerTest, HealthAndMetadata) {
  Start();
  EXPECT_EQ(Get("/v2/health/live").status, 200);
  EXPECT_EQ(Get("/v2/health/ready").status, 200);
  Response meta = Get("/v2");
  EXPECT_EQ(meta.status, 200);
  EXPECT_EQ(meta.content_type, "application/json");
  auto d = Json(meta.body);
  EXPECT_STREQ(d["name"].GetString(), "flywheel");
  EXPECT_THAT(meta.body, HasSubstr("\"binary_tensor_data\""));
  Response model = Get("/v2/models/simple");
  ASSERT_EQ(model.status, 200) << model.body;
  auto m = Json(model.body);
  EXPECT_STREQ(m["name"].GetString(), "simple");
  EXPECT_STREQ(m["versions"][0].GetString(), "1");
  EXPECT_STREQ(m["inputs"][0]["name"].GetString(), "INPUT0");
  EXPECT_STREQ(m["inputs"][0]["datatype"].GetString(), "INT32");
  EXPECT_EQ(m["inputs"][0]["shape"][0].GetInt(), -1);
  EXPECT_EQ(m["inputs"][0]["shape"][1].GetInt(), 16);
  EXPECT_EQ(Get("/v2/models/simple/versions/1").status, 200);
  EXPECT_EQ(Get("/v2/models/simple/ready").status, 200);
  EXPECT_EQ(Get("/v2/models/simple/versions/1/ready").status, 200);
  Response config = Get("/v2/models/simple/config");
  ASSERT_EQ(config.status, 200) << config.body;
  EXPECT_EQ(Json(config.body)["max_batch_size"].GetInt(), 8);
  // Unknown model and version: 404 with a message naming them.
  Response unknown = Get("/v2/models/nope");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(unknown.body, HasSubstr("nope"));
  EXPECT_EQ(Get("/v2/models/nope/ready").status, 404);
  EXPECT_EQ(Get("/v2/models/simple/versions/7").status, 404);
  EXPECT_EQ(Get("/v2/models/simple/versions/7/config").status, 404);
}

TEST_F(HttpServerTest, InferJson) {
  Start();
  Response r = Post("/v2/models/simple/infer", AddSubJson());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  auto d = Json(r.body);
  EXPECT_STREQ(d["model_name"].GetString(), "simple");
  EXPECT_STREQ(d["model_version"].GetString(), "1");
  EXPECT_STREQ(d["id"].GetString(), "q1");
  const auto& outs = d["outputs"];
  ASSERT_EQ(outs.Size(), 2u);
  for (const auto& o : outs.GetArray()) {
    bool sum = std::string(o["name"].GetString()) == "OUTPUT0";
    EXPECT_STREQ(o["datatype"].GetString(), "INT32");
    EXPECT_EQ(o["shape"][0].GetInt(), 1);
    EXPECT_EQ(o["shape"][1].GetInt(), 16);
    for (int i = 0; i < 16; ++i) EXPECT_EQ(o["data"][i].GetInt(), sum ? i + 1 : i - 1);
  }
  // A named version, and only one output requested.
  Response one = Post("/v2/models/simple/versions/1/infer",
                      AddSubJson(",\"outputs\":[{\"name\":\"OUTPUT1\"}]"));
  ASSERT_EQ(one.status, 200) << one.body;
  auto od = Json(one.body);
  ASSERT_EQ(od["outputs"].Size(), 1u);
  EXPECT_STREQ(od["outputs"][0]["name"].GetString(), "OUTPUT1");
}

TEST_F(HttpServerTest, InferBinaryInAndOut) {
  Start();
  // INPUT0 binary, INPUT1 JSON.
  std::string ones;
  for (int i = 0; i < 32; ++i) absl::StrAppend(&ones, i ? "," : "", 3);
  std::string json =
      "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT32\",\"shape\":[2,16],"
      "\"parameters\":{\"binary_data_size\":128}},{\"name\":\"INPUT1\",\"datatype\":\"INT32\","
      "\"shape\":[2,16],\"data\":[" +
      ones +
      "]}],\"outputs\":[{\"name\":\"OUTPUT0\",\"parameters\":{\"binary_data\":true}},"
      "{\"name\":\"OUTPUT1\"}]}";
  std::vector<int32_t> in(32);
  for (int i = 0; i < 32; ++i) in[i] = 100 * i;
  std::string body = json + std::string(reinterpret_cast<const char*>(in.data()), 128);
  Response r = Post("/v2/models/simple/infer", body,
                    {{"Inference-Header-Content-Length", std::to_string(json.size())},
                     {"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/octet-stream");
  size_t n = std::stoul(r.header_length);
  ASSERT_LE(n, r.body.size());
  auto d = Json(r.body.substr(0, n));
  ASSERT_EQ(r.body.size() - n, 128u);
  std::vector<int32_t> out(32);
  std::memcpy(out.data(), r.body.data() + n, 128);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(out[i], 100 * i + 3);
  for (const auto& o : d["outputs"].GetArray()) {
    if (std::string(o["name"].GetString()) == "OUTPUT0") {
      EXPECT_EQ(o["parameters"]["binary_data_size"].GetInt(), 128);
      EXPECT_FALSE(o.HasMember("data"));
    } else {
      EXPECT_EQ(o["data"][31].GetInt(), 3100 - 3);
    }
  }
  // binary_data_output with no outputs named: every output binary.
  Response all =
      Post("/v2/models/simple/infer", AddSubJson(",\"parameters\":{\"binary_data_output\":true}"));
  ASSERT_EQ(all.status, 200) << all.body;
  EXPECT_EQ(all.body.size() - std::stoul(all.header_length), 128u);
}

TEST_F(HttpServerTest, InferErrorsAndTheServerKeepsServing) {
  Start();
  struct Case {
    std::string target, body;
    int status;
    std::string fragment;
  };
  std::string wrong_dtype = AddSubJson();
  wrong_dtype.replace(wrong_dtype.find("INT32"), 5, "INT64");
  std::string wrong_shape = AddSubJson();
  wrong_shape.replace(wrong_shape.find("[1,16]"), 6, "[2,8]");
  std::vector<Case> cases = {
      {"/v2/models/simple/infer", "{\"inputs\":[", 400, "malformed JSON at offset"},
      {"/v2/models/simple/infer", wrong_dtype, 400, "INPUT0"},
      {"/v2/models/simple/infer", wrong_shape, 400, "INPUT0"},
      {"/v2/models/simple/infer",
       "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT32\",\"shape\":[1,16],"
       "\"data\":[1,2]}]}",
       400, "'data' has 2 elements but shape [1,16] needs 16"},
      {"/v2/models/nope/infer", AddSubJson(), 404, "nope"},
      {"/v2/models/simple/versions/3/infer", AddSubJson(), 404, "3"},
      {"/v2/models/simple/infer",
       AddSubJson(",\"outputs\":[{\"name\":\"X\",\"parameters\":{\"classification\":2}}]"), 501,
       "classification"},
  };
  for (const Case& c : cases) {
    Response r = Post(c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_THAT(r.body, HasSubstr("{\"error\":\"")) << c.body;
    EXPECT_THAT(r.body, HasSubstr(c.fragment)) << c.body;
    // Same connection, next request still served.
    EXPECT_EQ(Post("/v2/models/simple/infer", AddSubJson()).status, 200);
  }
  // Truncated binary section, and a header length beyond the body.
  std::string json =
      "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT32\",\"shape\":[1,16],"
      "\"parameters\":{\"binary_data_size\":64}}]}";
  Response truncated = Post("/v2/models/simple/infer", json + std::string(10, '\0'),
                            {{"Inference-Header-Content-Length", std::to_string(json.size())}});
  EXPECT_EQ(truncated.status, 400);
  EXPECT_THAT(truncated.body, HasSubstr("input 'INPUT0': binary_data_size is 64 but only 10"));
  Response bad_length =
      Post("/v2/models/simple/infer", json, {{"Inference-Header-Content-Length", "99999"}});
  EXPECT_EQ(bad_length.status, 400);
  EXPECT_THAT(bad_length.body, HasSubstr("Inference-Header-Content-Length is 99999"));
  Response not_number =
      Post("/v2/models/simple/infer", json, {{"Inference-Header-Content-Length", "ten"}});
  EXPECT_EQ(not_number.status, 400);
  // Routing errors.
  Response wrong_method = Get("/v2/models/simple/infer");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.allow, "POST");
  EXPECT_EQ(Get("/v3/x").status, 404);
  EXPECT_EQ(Get("/v2/models/simple/bogus").status, 404);
  Response gzip = Post("/v2/models/simple/infer", AddSubJson(), {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(gzip.status, 400);
  EXPECT_THAT(gzip.body, HasSubstr("gzip request body is corrupt"));
  Response brotli = Post("/v2/models/simple/infer", AddSubJson(), {{"Content-Encoding", "br"}});
  EXPECT_EQ(brotli.status, 415);
  EXPECT_THAT(brotli.body, HasSubstr("'br' is not supported"));
  EXPECT_EQ(Post("/v2/models/simple/infer", AddSubJson()).status, 200);
}

TEST_F(HttpServerTest, OversizedBodyGets413) {
  Start();
  Response r = Post("/v2/models/simple/infer", std::string(2 << 20, ' '));
  EXPECT_EQ(r.status, 413);
  EXPECT_THAT(r.body, HasSubstr("exceeds the limit of 1048576 bytes"));
}

TEST_F(HttpServerTest, Statistics) {
  Start();
  ASSERT_EQ(Post("/v2/models/simple/infer", AddSubJson()).status, 200);
  ASSERT_EQ(Post("/v2/models/simple/infer", AddSubJson()).status, 200);
  Response one = Get("/v2/models/simple/stats");
  ASSERT_EQ(one.status, 200) << one.body;
  auto d = Json(one.body);
  const auto& s = d["model_stats"][0];
  EXPECT_STREQ(s["name"].GetString(), "simple");
  EXPECT_STREQ(s["version"].GetString(), "1");
  EXPECT_EQ(s["inference_count"].GetUint64(), 2u);
  EXPECT_EQ(s["inference_stats"]["success"]["count"].GetUint64(), 2u);
  EXPECT_GT(s["inference_stats"]["success"]["ns"].GetUint64(), 0u);
  EXPECT_GE(s["batch_stats"].Size(), 1u);
  EXPECT_EQ(Get("/v2/models/simple/versions/1/stats").status, 200);
  Response all = Get("/v2/models/stats");
  ASSERT_EQ(all.status, 200);
  EXPECT_EQ(Json(all.body)["model_stats"].Size(), 1u);
  EXPECT_EQ(Get("/v2/models/nope/stats").status, 404);
}

TEST_F(HttpServerTest, RepositoryApi) {
  Start();
  Response index = Post("/v2/repository/index");
  ASSERT_EQ(index.status, 200) << index.body;
  auto d = Json(index.body);
  ASSERT_EQ(d.Size(), 1u);
  EXPECT_STREQ(d[0]["name"].GetString(), "simple");
  EXPECT_STREQ(d[0]["state"].GetString(), "READY");
  EXPECT_EQ(Post("/v2/repository/index", "{\"ready\":true}").status, 200);
  EXPECT_EQ(Post("/v2/repository/index", "{\"ready\":1}").status, 400);
  EXPECT_EQ(Post("/v2/repository/index", "[").status, 400);
  // Unload: the model stops being ready; load brings it back.
  ASSERT_EQ(Post("/v2/repository/models/simple/unload").status, 200);
  EXPECT_NE(Get("/v2/models/simple/ready").status, 200);
  EXPECT_NE(Post("/v2/models/simple/infer", AddSubJson()).status, 200);
  ASSERT_EQ(Post("/v2/repository/models/simple/load").status, 200);
  EXPECT_EQ(Get("/v2/models/simple/ready").status, 200);
  // A config override that is not valid JSON for ModelConfig is refused, and the model serves on.
  Response bad = Post("/v2/repository/models/simple/load",
                      "{\"parameters\":{\"config\":\"{\\\"max_batch_size\\\": \\\"x\\\"}\"}}");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(Post("/v2/models/simple/infer", AddSubJson()).status, 200);
  EXPECT_EQ(Post("/v2/repository/models/simple/load", "{\"parameters\":{\"config\":5}}").status,
            400);
  EXPECT_EQ(Post("/v2/repository/models/simple/load",
                 "{\"parameters\":{\"file:1/model.onnx\":"
                 "\"AAAA\"}}")
                .status,
            501);
  Response missing = Post("/v2/repository/models/absent/load");
  EXPECT_EQ(missing.status, 404) << missing.body;
}

TEST_F(HttpServerTest, AdminTokenGuardsTheRepositoryApi) {
  Start("s3cret");
  Response none = Post("/v2/repository/index");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.www_authenticate, "Bearer");
  EXPECT_EQ(Post("/v2/repository/index", "", {{"Authorization", "Bearer wrong"}}).status, 403);
  EXPECT_EQ(Post("/v2/repository/index", "", {{"Authorization", "Basic czNjcmV0"}}).status, 401);
  EXPECT_EQ(
      Post("/v2/repository/models/simple/unload", "", {{"Authorization", "Bearer nope"}}).status,
      403);
  EXPECT_EQ(Get("/v2/models/simple/ready").status, 200);
  EXPECT_EQ(Post("/v2/repository/index", "", {{"Authorization", "Bearer s3cret"}}).status, 200);
  // Inference needs no token.
  EXPECT_EQ(Post("/v2/models/simple/infer", AddSubJson()).status, 200);
}

// A /v1/<prefix> route gets every request under its prefix; other paths stay with KServe v2.
class EchoRoute : public http::Handler {
 public:
  void Handle(http::Request request, http::Respond respond) override {
    respond(http::JsonReply(http::bhttp::status::ok,
                            absl::StrCat("{\"target\":\"", std::string(request.target()), "\"}")));
  }
};

TEST_F(HttpServerTest, ExtraRoutesAnswerTheirV1Prefix) {
  Start("", {{"echo", std::make_shared<EchoRoute>()}});
  Response r = Post("/v1/echo/things?x=1", "{}");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"target\":\"/v1/echo/things?x=1\"}");
  EXPECT_EQ(Get("/v1/other/things").status, 404);
  EXPECT_EQ(Post("/v2/models/simple/infer", AddSubJson()).status, 200);
}

}  // namespace
}  // namespace flywheel::api
