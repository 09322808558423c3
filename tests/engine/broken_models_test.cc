// Broken models (tests/fixtures/broken/, written by tools/gen_broken_models.py) and bad run-time
// inputs: each must fail with a clear error that names the file or tensor, the node and the
// problem, and must never crash. Also checks that a model with external data loads and runs.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/npy.h"
#include "engine/kernels/registry.h"
#include "engine/session.h"
#include "engine/testing/op_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

fs::path BrokenDir() {
  const char* dir = std::getenv("FLYWHEEL_SOURCE_DIR");
  return (dir != nullptr ? fs::path(dir) : fs::current_path()) / "tests" / "fixtures" / "broken";
}

std::string Fixture(const std::string& name) { return (BrokenDir() / name).string(); }

// Loads `name` from the fixtures and returns the error message (the test fails if it loads).
std::string LoadError(const std::string& path) {
  auto session = Session::Load(path, {});
  EXPECT_FALSE(session.ok()) << path << " loaded but should not have";
  return session.ok() ? std::string() : std::string(session.status().message());
}

// Same bytes through LoadFromMemory: must fail too (with the in-memory name "model").
void ExpectMemoryLoadFails(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto session = Session::LoadFromMemory(bytes, "", {});
  EXPECT_FALSE(session.ok()) << path << " loaded from memory but should not have";
}

TEST(BrokenModelsTest, FixturesExist) {
  ASSERT_TRUE(fs::exists(BrokenDir() / "truncated.onnx"))
      << "run /usr/bin/python3 tools/gen_broken_models.py";
}

// --- Not a model at all --------------------------------------------------------------------

TEST(BrokenModelsTest, NotProtobuf) {
  for (const char* name :
       {"truncated.onnx", "wrong_magic.onnx", "random_bytes.onnx", "text.onnx"}) {
    SCOPED_TRACE(name);
    std::string path = Fixture(name);
    EXPECT_THAT(LoadError(path), AllOf(HasSubstr(path), HasSubstr("not a valid ONNX model")));
    ExpectMemoryLoadFails(path);
  }
}

TEST(BrokenModelsTest, EmptyFile) {
  // An empty byte string is a valid (empty) protobuf message: the error is that it has no graph.
  std::string path = Fixture("empty.onnx");
  EXPECT_THAT(LoadError(path), AllOf(HasSubstr(path), HasSubstr("no graph")));
  ExpectMemoryLoadFails(path);
}

TEST(BrokenModelsTest, DirectoryInsteadOfFile) {
  std::string path = BrokenDir().string();
  EXPECT_THAT(LoadError(path), AllOf(HasSubstr(path), HasSubstr("folder, not a model file")));
}

TEST(BrokenModelsTest, NonexistentPath) {
  std::string path = Fixture("no_such_model.onnx");
  auto session = Session::Load(path, {});
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(session.status().message(),
              AllOf(HasSubstr("cannot open model"), HasSubstr(path), HasSubstr("No such file")));
}

// --- Graph damage --------------------------------------------------------------------------

TEST(BrokenModelsTest, CyclicGraph) {
  // The ONNX checker sees the cycle as a node reading a value no earlier node wrote.
  std::string path = Fixture("cyclic.onnx");
  EXPECT_THAT(LoadError(path),
              AllOf(HasSubstr(path), HasSubstr("add_in_cycle"), HasSubstr("topologically sorted")));
  ExpectMemoryLoadFails(path);
}

TEST(BrokenModelsTest, HugeInitializerDims) {
  for (const char* name : {"huge_initializer_dims.onnx", "big_initializer_dims.onnx"}) {
    SCOPED_TRACE(name);
    std::string path = Fixture(name);
    std::string error = LoadError(path);
    EXPECT_THAT(error, HasSubstr(path));
    EXPECT_THAT(error, ::testing::AnyOf(HasSubstr("huge_weight"), HasSubstr("big_weight")));
    EXPECT_THAT(error, ::testing::AnyOf(HasSubstr("too many elements"), HasSubstr("raw data"),
                                        HasSubstr("one and only one value field")));
    ExpectMemoryLoadFails(path);
  }
}

TEST(BrokenModelsTest, HugeInputDim) {
  // Declaring a dim of 2^62 is legal; no real tensor can match it, so every run is refused.
  auto session = Session::Load(Fixture("huge_input_dim.onnx"), {});
  if (!session.ok()) {
    // Without a Relu kernel the load fails on that instead; the declared dim is not the problem.
    EXPECT_THAT(session.status().message(), HasSubstr("Relu"));
    return;
  }
  Tensor x = Tensor::Allocate(DataType::kFp32, Shape{1, 2}, true);
  auto out = (*session)->Run({x});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(out.status().message(),
              AllOf(HasSubstr("input 'x'"), HasSubstr("4611686018427387904"), HasSubstr("[1,2]")));
}

TEST(BrokenModelsTest, NegativeDims) {
  std::string path = Fixture("negative_initializer_dims.onnx");
  EXPECT_THAT(LoadError(path),
              AllOf(HasSubstr(path), HasSubstr("neg_weight"), HasSubstr("negative dimension")));
  path = Fixture("negative_input_dim.onnx");
  EXPECT_THAT(LoadError(path),
              AllOf(HasSubstr(path), HasSubstr("'x'"), HasSubstr("negative dimension")));
}

TEST(BrokenModelsTest, RawDataSizeMismatch) {
  std::string path = Fixture("raw_data_mismatch.onnx");
  EXPECT_THAT(LoadError(path), AllOf(HasSubstr(path), HasSubstr("short_weight"),
                                     HasSubstr("10 bytes"), HasSubstr("needs 64")));
  path = Fixture("typed_data_mismatch.onnx");
  EXPECT_THAT(LoadError(path),
              AllOf(HasSubstr(path), HasSubstr("few_values"), HasSubstr("3 values")));
}

TEST(BrokenModelsTest, MissingInitializer) {
  std::string path = Fixture("missing_initializer.onnx");
  EXPECT_THAT(LoadError(path), AllOf(HasSubstr(path), HasSubstr("missing_weight"),
                                     HasSubstr("matmul_reads_missing")));
}

TEST(BrokenModelsTest, OrphanOutput) {
  std::string path = Fixture("orphan_output.onnx");
  EXPECT_THAT(LoadError(path), AllOf(HasSubstr("orphan"), HasSubstr("not produced")));
}

TEST(BrokenModelsTest, UnsupportedOperatorsListedTogether) {
  std::string error = LoadError(Fixture("unsupported_ops.onnx"));
  EXPECT_THAT(error, HasSubstr("unsupported operator"));
  EXPECT_THAT(error, HasSubstr("Loop ('loop_1')"));
  EXPECT_THAT(error, HasSubstr("com.microsoft.FancyFusedThing ('ms_op_1', 'ms_op_2')"));
  if (KernelRegistry::Global().Find("", "NonZero") == nullptr) {
    EXPECT_THAT(error, HasSubstr("NonZero ('nonzero_a', 'nonzero_b')"));
  }
  if (KernelRegistry::Global().Find("", "Relu") != nullptr) {
    EXPECT_THAT(error, Not(HasSubstr("relu_ok")));
  }
}

TEST(BrokenModelsTest, OpsetOutOfRange) {
  std::string path = Fixture("opset_too_old.onnx");
  EXPECT_THAT(LoadError(path),
              AllOf(HasSubstr(path), HasSubstr("opset 7 is not supported"), HasSubstr("11 to 18")));
  path = Fixture("opset_too_new.onnx");
  EXPECT_THAT(LoadError(path), AllOf(HasSubstr(path), HasSubstr("opset 19 is not supported")));
}

// --- External data -------------------------------------------------------------------------

std::string ExternalModel(const std::string& name) {
  return (BrokenDir() / "external" / name / "model.onnx").string();
}

TEST(BrokenModelsTest, ExternalDataOutsideFolder) {
  for (const char* name : {"parent_dir", "absolute", "symlink"}) {
    SCOPED_TRACE(name);
    auto session = Session::Load(ExternalModel(name), {});
    ASSERT_FALSE(session.ok());
    EXPECT_EQ(session.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(session.status().message(),
                AllOf(HasSubstr("ext_weight"), HasSubstr("outside the model's folder")));
  }
}

TEST(BrokenModelsTest, ExternalDataFromMemoryIsRefused) {
  std::ifstream in(ExternalModel("valid"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto session = Session::LoadFromMemory(bytes, "", {});
  ASSERT_FALSE(session.ok());
  EXPECT_THAT(session.status().message(),
              AllOf(HasSubstr("weights.bin"), HasSubstr("loaded from memory")));
}

TEST(BrokenModelsTest, ExternalDataMissingOrShort) {
  auto session = Session::Load(ExternalModel("missing_file"), {});
  ASSERT_FALSE(session.ok());
  EXPECT_EQ(session.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(session.status().message(), AllOf(HasSubstr("ext_weight"), HasSubstr("nothere.bin"),
                                                HasSubstr("does not exist")));

  session = Session::Load(ExternalModel("short_file"), {});
  ASSERT_FALSE(session.ok());
  EXPECT_THAT(session.status().message(),
              AllOf(HasSubstr("ext_weight"), HasSubstr("short.bin"), HasSubstr("has 8 bytes"),
                    HasSubstr("shorter than")));

  session = Session::Load(ExternalModel("offset_past_end"), {});
  ASSERT_FALSE(session.ok());
  EXPECT_THAT(session.status().message(),
              AllOf(HasSubstr("ext_weight"), HasSubstr("offset 1048576"), HasSubstr("shorter")));
}

bool HasKernels(std::initializer_list<const char*> ops) {
  for (const char* op : ops) {
    if (KernelRegistry::Global().Find("", op) == nullptr) return false;
  }
  return true;
}

TEST(BrokenModelsTest, ExternalDataLoadsAndRuns) {
  if (!HasKernels({"MatMul", "Add", "Relu"})) GTEST_SKIP() << "MatMul/Add/Relu kernels missing";
  fs::path dir = BrokenDir() / "external" / "valid";
  // From another working directory too: locations resolve against the model's folder.
  fs::path old_cwd = fs::current_path();
  fs::current_path(fs::temp_directory_path());
  auto session = Session::Load((dir / "model.onnx").string(), {});
  fs::current_path(old_cwd);
  ASSERT_TRUE(session.ok()) << session.status();
  EXPECT_EQ((*session)->WeightBytes(), 8u * 8u * 4u + 8u * 4u);
  auto x = ReadNpy((dir / "case0" / "input_0.npy").string());
  auto want = ReadNpy((dir / "case0" / "output_0.npy").string());
  ASSERT_TRUE(x.ok() && want.ok());
  auto out = (*session)->Run({*x});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 1u);
  testing::ExpectTensorNear((*out)[0], *want);
}

// --- Run-time input checks -----------------------------------------------------------------

// good/passthrough.onnx: inputs x FP32 [2,3] and ids INT64 [-1,4], outputs the same (no nodes).
class RunInputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto session = Session::Load(Fixture("good/passthrough.onnx"), {});
    ASSERT_TRUE(session.ok()) << session.status();
    session_ = *std::move(session);
  }
  std::string RunError(std::vector<Tensor> inputs) {
    auto out = session_->Run(inputs);
    EXPECT_FALSE(out.ok());
    return out.ok() ? std::string() : std::string(out.status().message());
  }
  Tensor x_ = Tensor::Allocate(DataType::kFp32, Shape{2, 3}, true);
  Tensor ids_ = Tensor::Allocate(DataType::kInt64, Shape{5, 4}, true);
  std::unique_ptr<Session> session_;
};

TEST_F(RunInputsTest, ValidInputsRun) {
  auto out = session_->Run({x_, ids_});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[1].shape(), (Shape{5, 4}));
}

TEST_F(RunInputsTest, WrongDtype) {
  Tensor x = Tensor::Allocate(DataType::kInt32, Shape{2, 3}, true);
  EXPECT_THAT(RunError({x, ids_}),
              AllOf(HasSubstr("input 'x'"), HasSubstr("expected FP32 [2,3]"), HasSubstr("INT32")));
}

TEST_F(RunInputsTest, WrongRank) {
  Tensor ids = Tensor::Allocate(DataType::kInt64, Shape{20}, true);
  EXPECT_THAT(RunError({x_, ids}), AllOf(HasSubstr("input 'ids'"),
                                         HasSubstr("expected INT64 [-1,4]"), HasSubstr("[20]")));
}

TEST_F(RunInputsTest, WrongStaticDim) {
  Tensor x = Tensor::Allocate(DataType::kFp32, Shape{2, 4}, true);
  EXPECT_THAT(RunError({x, ids_}),
              AllOf(HasSubstr("input 'x'"), HasSubstr("expected FP32 [2,3]"), HasSubstr("[2,4]")));
}

TEST_F(RunInputsTest, WrongNumberOfInputs) {
  EXPECT_THAT(RunError({x_}),
              AllOf(HasSubstr("expected 2 inputs"), HasSubstr("'x', 'ids'"), HasSubstr("got 1")));
  EXPECT_THAT(RunError({x_, ids_, x_}), AllOf(HasSubstr("expected 2 inputs"), HasSubstr("got 3")));
  EXPECT_THAT(RunError({}), HasSubstr("got 0"));
}

TEST_F(RunInputsTest, EmptyTensor) {
  EXPECT_THAT(RunError({x_, Tensor()}), AllOf(HasSubstr("input 'ids'"), HasSubstr("no tensor")));
}

}  // namespace
}  // namespace flywheel::engine
