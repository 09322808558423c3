// Runs every committed fixture model (tests/fixtures/{ops,models}/<name>/) through the engine and
// compares each case's outputs with the reference outputs the generators in tools/ recorded.
// Each model runs optimised and unoptimised, with one and two intra-op threads.
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/npy.h"
#include "engine/session.h"
#include "engine/testing/op_test_util.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

namespace fs = std::filesystem;

fs::path SourceDir() {
  const char* dir = std::getenv("FLYWHEEL_SOURCE_DIR");
  return dir != nullptr ? fs::path(dir) : fs::current_path();
}

struct Fixture {
  std::string group, name;
  fs::path dir;
};

std::vector<Fixture> AllFixtures() {
  std::vector<Fixture> out;
  for (const char* group : {"ops", "models"}) {
    fs::path root = SourceDir() / "tests" / "fixtures" / group;
    if (!fs::exists(root)) continue;
    for (const auto& entry : fs::directory_iterator(root)) {
      if (fs::exists(entry.path() / "model.onnx")) {
        out.push_back({group, entry.path().filename().string(), entry.path()});
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Fixture& a, const Fixture& b) { return a.dir < b.dir; });
  return out;
}

// Reads <case>/<prefix>_<k>.npy for k = 0, 1, ... until one is missing.
std::vector<Tensor> ReadTensors(const fs::path& case_dir, const std::string& prefix) {
  std::vector<Tensor> tensors;
  for (int k = 0;; ++k) {
    fs::path file = case_dir / absl::StrCat(prefix, "_", k, ".npy");
    if (!fs::exists(file)) break;
    auto t = ReadNpy(file.string());
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) break;
    tensors.push_back(*std::move(t));
  }
  return tensors;
}

struct Variant {
  bool optimize;
  int threads;
};

class FixtureTest : public ::testing::TestWithParam<Fixture> {};

TEST_P(FixtureTest, MatchesReference) {
  const Fixture& fixture = GetParam();
  std::vector<fs::path> cases;
  for (const auto& entry : fs::directory_iterator(fixture.dir)) {
    if (entry.is_directory()) cases.push_back(entry.path());
  }
  std::sort(cases.begin(), cases.end());
  ASSERT_FALSE(cases.empty()) << "fixture " << fixture.dir << " has no cases";
  for (Variant variant : {Variant{true, 1}, Variant{false, 1}, Variant{true, 2}}) {
    SCOPED_TRACE(absl::StrCat("optimize=", variant.optimize, " threads=", variant.threads));
    SessionOptions options;
    options.optimize = variant.optimize;
    options.intra_op_threads = variant.threads;
    auto session = Session::Load((fixture.dir / "model.onnx").string(), options);
    ASSERT_TRUE(session.ok()) << session.status();
    std::vector<Tensor> outputs;
    for (const fs::path& case_dir : cases) {
      SCOPED_TRACE(case_dir.filename().string());
      std::vector<Tensor> inputs = ReadTensors(case_dir, "input");
      std::vector<Tensor> expected = ReadTensors(case_dir, "output");
      ASSERT_EQ(inputs.size(), (*session)->inputs().size());
      ASSERT_EQ(expected.size(), (*session)->outputs().size());
      // Twice: the first run records the memory plan, the second runs in the planned arena.
      for (int rep = 0; rep < 2; ++rep) {
        absl::Status status = (*session)->Run(inputs, &outputs);
        ASSERT_TRUE(status.ok()) << status;
        for (size_t k = 0; k < expected.size(); ++k) {
          SCOPED_TRACE(absl::StrCat("output ", k, " '", (*session)->outputs()[k].name, "'"));
          testing::ExpectTensorNear(outputs[k], expected[k]);
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, FixtureTest, ::testing::ValuesIn(AllFixtures()),
                         [](const ::testing::TestParamInfo<Fixture>& info) {
                           std::string name = info.param.group + "_" + info.param.name;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(FixtureTest);

}  // namespace
}  // namespace flywheel::engine
