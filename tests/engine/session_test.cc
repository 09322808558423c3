// Session behaviour on real models: repeated runs allocate nothing, concurrent runs from several
// threads give the reference answers, and bad inputs at run time give clear errors.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <new>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/npy.h"
#include "engine/session.h"
#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"
#include "tests/engine/alloc_counter.h"

namespace flywheel::engine {
namespace {

namespace fs = std::filesystem;

fs::path ModelDir(const std::string& name) {
  const char* dir = std::getenv("FLYWHEEL_SOURCE_DIR");
  return (dir != nullptr ? fs::path(dir) : fs::current_path()) / "tests" / "fixtures" / "models" /
         name;
}

struct Case {
  std::vector<Tensor> inputs, expected;
};

Case ReadCase(const fs::path& dir) {
  Case c;
  for (const char* prefix : {"input", "output"}) {
    for (int k = 0;; ++k) {
      fs::path file = dir / absl::StrCat(prefix, "_", k, ".npy");
      if (!fs::exists(file)) break;
      auto t = ReadNpy(file.string());
      EXPECT_TRUE(t.ok()) << t.status();
      (std::string(prefix) == "input" ? c.inputs : c.expected).push_back(*t);
    }
  }
  return c;
}

// The first case folder of a fixture, in name order.
fs::path FirstCase(const fs::path& dir) {
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory()) cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  return cases.empty() ? dir : cases.front();
}

class SessionModelTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SessionModelTest, RepeatedRunWithSameShapesAllocatesNothing) {
  fs::path dir = ModelDir(GetParam());
  ASSERT_TRUE(fs::exists(dir / "model.onnx")) << dir;
  for (int threads : {1, 2}) {
    SessionOptions options;
    options.intra_op_threads = threads;
    auto session = Session::Load((dir / "model.onnx").string(), options);
    ASSERT_TRUE(session.ok()) << session.status();
    Case c = ReadCase(FirstCase(dir));
    ASSERT_FALSE(c.inputs.empty());
    std::vector<Tensor> outputs;
    ASSERT_TRUE((*session)->Run(c.inputs, &outputs).ok());
    ASSERT_TRUE((*session)->Run(c.inputs, &outputs).ok());
    int64_t news = testing::NewCallCount(), aligned = AlignedAllocCount();
    absl::Status status = (*session)->Run(c.inputs, &outputs);
    int64_t news_after = testing::NewCallCount(), aligned_after = AlignedAllocCount();
    ASSERT_TRUE(status.ok()) << status;
    // oneDNN's convolution primitives make small `new` calls of their own inside every execute
    // (not tensor buffers); for the models that use them only the buffer count is held to zero.
    if (GetParam() != "cnn") {
      EXPECT_EQ(news_after - news, 0) << "operator new calls in a planned run, threads=" << threads;
    }
    EXPECT_EQ(aligned_after - aligned, 0) << "buffer allocations in a planned run";
  }
}

TEST_P(SessionModelTest, ConcurrentRunsGiveReferenceOutputs) {
  fs::path dir = ModelDir(GetParam());
  SessionOptions options;
  options.intra_op_threads = 2;
  auto session = Session::Load((dir / "model.onnx").string(), options);
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<Case> cases;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory()) cases.push_back(ReadCase(entry.path()));
  }
  ASSERT_GE(cases.size(), 2u);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Tensor> outputs;
      for (int rep = 0; rep < 20; ++rep) {
        const Case& c = cases[(t + rep) % cases.size()];
        if (!(*session)->Run(c.inputs, &outputs).ok()) {
          failures++;
          continue;
        }
        for (size_t k = 0; k < c.expected.size(); ++k) {
          const Tensor& got = outputs[k];
          const Tensor& want = c.expected[k];
          if (got.shape() != want.shape()) {
            failures++;
            continue;
          }
          for (int64_t i = 0; i < want.NumElements(); ++i) {
            float g = got.data<float>()[i], w = want.data<float>()[i];
            if (std::abs(g - w) > 1e-5f + 1e-4f * std::abs(w)) {
              failures++;
              break;
            }
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Models, SessionModelTest,
                         ::testing::Values("mlp_ranker", "recommender", "cnn", "transformer"));

TEST(SessionTest, ReportsDeclaredInputsAndEmbeddingBounds) {
  auto session = Session::Load((ModelDir("recommender") / "model.onnx").string(), {});
  ASSERT_TRUE(session.ok()) << session.status();
  const auto& inputs = (*session)->inputs();
  ASSERT_EQ(inputs.size(), 3u);
  EXPECT_EQ(inputs[0].name, "user_id");
  EXPECT_EQ(inputs[0].dtype, DataType::kInt64);
  EXPECT_EQ(inputs[0].index_bound, 10000);
  EXPECT_EQ(inputs[1].index_bound, 5000);
  EXPECT_EQ(inputs[2].dtype, DataType::kFp32);
  EXPECT_EQ(inputs[2].index_bound, 0);
  EXPECT_EQ(inputs[2].dims, (std::vector<int64_t>{-1, 13}));
  EXPECT_GT((*session)->WeightBytes(), (10000u + 5000u) * 32u * 4u);
}

TEST(SessionTest, WrongInputsGiveClearErrors) {
  auto session = Session::Load((ModelDir("mlp_ranker") / "model.onnx").string(), {});
  ASSERT_TRUE(session.ok()) << session.status();
  Tensor wrong_type = Tensor::Allocate(DataType::kInt64, Shape{4, 256}, true);
  auto r = (*session)->Run({wrong_type});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.status().message().find("input 'features': expected FP32 [-1,256], got INT64 [4,256]"),
      std::string::npos)
      << r.status();
  Tensor wrong_dim = Tensor::Allocate(DataType::kFp32, Shape{4, 255}, true);
  EXPECT_FALSE((*session)->Run({wrong_dim}).ok());
  Tensor wrong_rank = Tensor::Allocate(DataType::kFp32, Shape{256}, true);
  EXPECT_FALSE((*session)->Run({wrong_rank}).ok());
  auto none = (*session)->Run({});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("expected 1 inputs"), std::string::npos);
  // The session still works after the errors.
  Tensor good = Tensor::Allocate(DataType::kFp32, Shape{2, 256}, true);
  auto ok = (*session)->Run({good});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)[0].shape(), (Shape{2, 1}));
}

}  // namespace
}  // namespace flywheel::engine
