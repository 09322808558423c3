#include "api/grpc/grpc_server.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "grpc_service.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"

namespace flywheel::api {
namespace {

namespace fs = std::filesystem;

// A serving::Server over a private repository holding only examples/models/simple.
class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* src = std::getenv("FLYWHEEL_SOURCE_DIR");
    const fs::path root = src != nullptr ? fs::path(src) : fs::current_path();
    repo_ =
        fs::temp_directory_path() /
        ("flywheel-grpc-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(repo_);
    fs::copy(root / "examples" / "models" / "simple", repo_ / "simple",
             fs::copy_options::recursive);
    serving::ServerOptions options;
    options.model_repositories = {repo_.string()};
    auto server = serving::Server::Create(options, nullptr);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);

    GrpcOptions grpc_options;
    grpc_options.bind = "127.0.0.1";
    grpc_options.port = 0;
    auto grpc_server = GrpcServer::Start(grpc_options, server_.get());
    ASSERT_TRUE(grpc_server.ok()) << grpc_server.status();
    grpc_ = std::move(*grpc_server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(grpc_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = inference::GRPCInferenceService::NewStub(channel_);
  }

  void TearDown() override {
    if (grpc_ != nullptr) grpc_->Shutdown(1000);
    grpc_.reset();
    server_.reset();
    std::error_code ec;
    fs::remove_all(repo_, ec);
  }

  static inference::ModelInferRequest SimpleRequest(int value, const std::string& id) {
    inference::ModelInferRequest req;
    req.set_model_name("simple");
    req.set_id(id);
    for (const char* name : {"INPUT0", "INPUT1"}) {
      auto* in = req.add_inputs();
      in->set_name(name);
      in->set_datatype("INT32");
      in->add_shape(1);
      in->add_shape(16);
      for (int i = 0; i < 16; ++i) in->mutable_contents()->add_int_contents(value + i);
    }
    return req;
  }

  static int32_t FirstOutput0(const inference::ModelInferResponse& resp) {
    for (int i = 0; i < resp.outputs_size(); ++i) {
      if (resp.outputs(i).name() == "OUTPUT0") {
        int32_t v;
        std::memcpy(&v, resp.raw_output_contents(i).data(), sizeof(v));
        return v;
      }
    }
    ADD_FAILURE() << "no OUTPUT0";
    return 0;
  }

  fs::path repo_;
  std::unique_ptr<serving::Server> server_;
  std::unique_ptr<GrpcServer> grpc_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
};

TEST_F(GrpcServerTest, EphemeralPortServesInference) {
  EXPECT_GT(grpc_->port(), 0);
  grpc::ClientContext ctx;
  inference::ModelInferResponse resp;
  grpc::Status s = stub_->ModelInfer(&ctx, SimpleRequest(5, "a"), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.id(), "a");
  EXPECT_EQ(FirstOutput0(resp), 10);
}

TEST_F(GrpcServerTest, SecondServerOnTheSamePortFails) {
  GrpcOptions options;
  options.bind = "127.0.0.1";
  options.port = grpc_->port();
  auto second = GrpcServer::Start(options, server_.get());
  EXPECT_FALSE(second.ok());
}

TEST_F(GrpcServerTest, BadDecodeIsInvalidArgument) {
  inference::ModelInferRequest req = SimpleRequest(0, "");
  req.mutable_inputs(0)->mutable_contents()->mutable_int_contents()->RemoveLast();
  grpc::ClientContext ctx;
  inference::ModelInferResponse resp;
  grpc::Status s = stub_->ModelInfer(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("INPUT0"), std::string::npos) << s.error_message();
}

TEST_F(GrpcServerTest, StreamAnswersEveryRequest) {
  grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  constexpr int kRequests = 40;
  for (int i = 0; i < kRequests; ++i) {
    inference::ModelInferRequest req =
        i == 7 ? SimpleRequest(0, "bad") : SimpleRequest(i, std::to_string(i));
    if (i == 7) req.set_model_name("no_such_model");
    ASSERT_TRUE(stream->Write(req));
  }
  stream->WritesDone();
  int answered = 0, errors = 0;
  inference::ModelStreamInferResponse resp;
  while (stream->Read(&resp)) {
    ++answered;
    if (!resp.error_message().empty()) {
      ++errors;
      EXPECT_EQ(resp.infer_response().id(), "bad");
      continue;
    }
    const int i = std::stoi(resp.infer_response().id());
    EXPECT_EQ(FirstOutput0(resp.infer_response()), 2 * i);
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered, kRequests);
  EXPECT_EQ(errors, 1);
}

// More requests than the stream lets be outstanding, from a client that starts reading late:
// the server pauses reading, resumes as answers drain, and answers every request.
TEST_F(GrpcServerTest, StreamBackpressureStillAnswersEverything) {
  grpc::ClientContext ctx;
  auto stream = stub_->ModelStreamInfer(&ctx);
  const int requests = 3 * 256;
  std::thread writer([&] {
    for (int i = 0; i < requests; ++i) {
      if (!stream->Write(SimpleRequest(i, std::to_string(i)))) break;
    }
    stream->WritesDone();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int answered = 0;
  inference::ModelStreamInferResponse resp;
  while (stream->Read(&resp)) {
    EXPECT_EQ(resp.error_message(), "");
    ++answered;
  }
  writer.join();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered, requests);
}

TEST_F(GrpcServerTest, ShutdownEndsOpenStreams) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext watch_ctx;
  grpc::health::v1::HealthCheckRequest req;
  auto watch = health->Watch(&watch_ctx, req);
  grpc::health::v1::HealthCheckResponse status;
  ASSERT_TRUE(watch->Read(&status));
  EXPECT_EQ(status.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  grpc::ClientContext stream_ctx;
  auto stream = stub_->ModelStreamInfer(&stream_ctx);
  ASSERT_TRUE(stream->Write(SimpleRequest(1, "x")));
  inference::ModelStreamInferResponse resp;
  ASSERT_TRUE(stream->Read(&resp));

  // Returns although neither client ends its call: the stream is cancelled at the deadline and
  // the watch is closed at once.
  grpc_->Shutdown(200);
  while (watch->Read(&status)) {
    EXPECT_EQ(status.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  }
  watch->Finish();
  while (stream->Read(&resp)) {
  }
  EXPECT_FALSE(stream->Finish().ok());
}

}  // namespace
}  // namespace flywheel::api
