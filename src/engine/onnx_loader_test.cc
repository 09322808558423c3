#include "engine/onnx_loader.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"

namespace flywheel::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

void SetInfo(onnx::ValueInfoProto* info, const std::string& name, int elem,
             std::vector<int64_t> dims) {
  info->set_name(name);
  auto* tt = info->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem);
  auto* shape = tt->mutable_shape();
  for (int64_t d : dims) shape->add_dim()->set_dim_value(d);
}

// A model with no nodes whose outputs are the given tensors (initializers or inputs).
onnx::ModelProto BaseModel(int64_t opset = 13) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  m.mutable_graph()->set_name("g");
  return m;
}

onnx::TensorProto* AddInitializer(onnx::ModelProto& m, const std::string& name, int elem,
                                  std::vector<int64_t> dims) {
  onnx::TensorProto* t = m.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(elem);
  for (int64_t d : dims) t->add_dims(d);
  SetInfo(m.mutable_graph()->add_output(), name, elem, dims);
  return t;
}

absl::StatusOr<Graph> Load(const onnx::ModelProto& m, const std::string& dir = "") {
  return LoadOnnxBytes(m.SerializeAsString(), dir, "test model");
}

const Tensor& ConstantNamed(const Graph& g, const std::string& name) {
  int v = g.FindValue(name);
  EXPECT_TRUE(g.IsConstant(v)) << name;
  return *g.ConstantOf(v);
}

TEST(OnnxLoaderTest, TypedFieldInitializers) {
  onnx::ModelProto m = BaseModel();
  auto* f = AddInitializer(m, "f", onnx::TensorProto::FLOAT, {2});
  f->add_float_data(1.5f);
  f->add_float_data(-2.f);
  auto* d = AddInitializer(m, "d", onnx::TensorProto::DOUBLE, {1});
  d->add_double_data(0.25);
  auto* i64 = AddInitializer(m, "i64", onnx::TensorProto::INT64, {2});
  i64->add_int64_data(int64_t{1} << 40);
  i64->add_int64_data(-3);
  auto* i8 = AddInitializer(m, "i8", onnx::TensorProto::INT8, {2});
  i8->add_int32_data(-128);
  i8->add_int32_data(127);
  auto* u8 = AddInitializer(m, "u8", onnx::TensorProto::UINT8, {1});
  u8->add_int32_data(255);
  auto* b = AddInitializer(m, "b", onnx::TensorProto::BOOL, {2});
  b->add_int32_data(1);
  b->add_int32_data(0);
  auto* h = AddInitializer(m, "h", onnx::TensorProto::FLOAT16, {1});
  h->add_int32_data(0x3c00);  // 1.0 in IEEE half
  auto* u32 = AddInitializer(m, "u32", onnx::TensorProto::UINT32, {1});
  u32->add_uint64_data(4000000000u);
  auto* raw = AddInitializer(m, "raw", onnx::TensorProto::INT32, {2});
  int32_t raw_values[2] = {7, -7};
  raw->set_raw_data(std::string(reinterpret_cast<const char*>(raw_values), sizeof(raw_values)));

  auto g = Load(m);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(ConstantNamed(*g, "f").data<float>()[1], -2.f);
  EXPECT_EQ(ConstantNamed(*g, "d").data<double>()[0], 0.25);
  EXPECT_EQ(ConstantNamed(*g, "i64").data<int64_t>()[0], int64_t{1} << 40);
  EXPECT_EQ(ConstantNamed(*g, "i8").data<int8_t>()[0], -128);
  EXPECT_EQ(ConstantNamed(*g, "i8").data<int8_t>()[1], 127);
  EXPECT_EQ(ConstantNamed(*g, "u8").data<uint8_t>()[0], 255);
  EXPECT_TRUE(ConstantNamed(*g, "b").data<bool>()[0]);
  EXPECT_FALSE(ConstantNamed(*g, "b").data<bool>()[1]);
  EXPECT_EQ(ConstantNamed(*g, "h").dtype(), DataType::kFp16);
  EXPECT_EQ(ConstantNamed(*g, "h").data<uint16_t>()[0], 0x3c00);
  EXPECT_EQ(ConstantNamed(*g, "u32").data<uint32_t>()[0], 4000000000u);
  EXPECT_EQ(ConstantNamed(*g, "raw").data<int32_t>()[1], -7);
}

TEST(OnnxLoaderTest, TypedFieldCountMismatchIsAnError) {
  onnx::ModelProto m = BaseModel();
  auto* i64 = AddInitializer(m, "short_ints", onnx::TensorProto::INT64, {3});
  i64->add_int64_data(1);
  // The ONNX checker does not count values; the loader must.
  i64->add_int64_data(2);
  auto g = Load(m);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(),
              AllOf(HasSubstr("test model"), HasSubstr("short_ints"), HasSubstr("2 values")));
}

TEST(OnnxLoaderTest, ConstantNodesBecomeConstants) {
  onnx::ModelProto m = BaseModel();
  auto* graph = m.mutable_graph();
  auto add_constant = [&](const std::string& out) {
    onnx::NodeProto* n = graph->add_node();
    n->set_op_type("Constant");
    n->set_name("const_" + out);
    n->add_output(out);
    return n->add_attribute();
  };
  onnx::AttributeProto* a = add_constant("t");
  a->set_name("value");
  a->set_type(onnx::AttributeProto::TENSOR);
  a->mutable_t()->set_data_type(onnx::TensorProto::FLOAT);
  a->mutable_t()->add_dims(2);
  a->mutable_t()->add_float_data(3.f);
  a->mutable_t()->add_float_data(4.f);
  SetInfo(graph->add_output(), "t", onnx::TensorProto::FLOAT, {2});
  a = add_constant("vf");
  a->set_name("value_float");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(0.5f);
  SetInfo(graph->add_output(), "vf", onnx::TensorProto::FLOAT, {});
  a = add_constant("vi");
  a->set_name("value_ints");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(5);
  a->add_ints(-6);
  a->add_ints(7);
  SetInfo(graph->add_output(), "vi", onnx::TensorProto::INT64, {3});

  auto g = Load(m);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(g->nodes.empty());
  EXPECT_EQ(ConstantNamed(*g, "t").data<float>()[1], 4.f);
  EXPECT_EQ(ConstantNamed(*g, "vf").rank(), 0);
  EXPECT_EQ(ConstantNamed(*g, "vf").data<float>()[0], 0.5f);
  EXPECT_EQ(ConstantNamed(*g, "vi").shape(), (Shape{3}));
  EXPECT_EQ(ConstantNamed(*g, "vi").data<int64_t>()[1], -6);
}

TEST(OnnxLoaderTest, OpsetRange) {
  for (int64_t opset : {11, 13, 17, 18}) {
    onnx::ModelProto m = BaseModel(opset);
    AddInitializer(m, "w", onnx::TensorProto::FLOAT, {1})->add_float_data(1.f);
    auto g = Load(m);
    EXPECT_TRUE(g.ok()) << "opset " << opset << ": " << g.status();
    if (g.ok()) {
      EXPECT_EQ(g->opset, opset);
    }
  }
  for (int64_t opset : {1, 10, 19, 1000}) {
    onnx::ModelProto m = BaseModel(opset);
    AddInitializer(m, "w", onnx::TensorProto::FLOAT, {1})->add_float_data(1.f);
    auto g = Load(m);
    ASSERT_FALSE(g.ok()) << "opset " << opset;
    EXPECT_THAT(g.status().message(),
                AllOf(HasSubstr(absl::StrCat("opset ", opset, " is not supported")),
                      HasSubstr("11 to 18")));
  }
}

TEST(OnnxLoaderTest, SubgraphOperatorsAreReportedAsUnsupported) {
  onnx::ModelProto m = BaseModel();
  auto* graph = m.mutable_graph();
  SetInfo(graph->add_input(), "c", onnx::TensorProto::BOOL, {});
  SetInfo(graph->add_input(), "x", onnx::TensorProto::FLOAT, {2});
  onnx::NodeProto* n = graph->add_node();
  n->set_op_type("If");
  n->set_name("the_if");
  n->add_input("c");
  n->add_output("y");
  for (const char* branch : {"then_branch", "else_branch"}) {
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name(branch);
    a->set_type(onnx::AttributeProto::GRAPH);
    onnx::GraphProto* g = a->mutable_g();
    g->set_name(branch);
    onnx::NodeProto* id = g->add_node();
    id->set_op_type("Identity");
    id->add_input("x");
    id->add_output(absl::StrCat(branch, "_out"));
    SetInfo(g->add_output(), absl::StrCat(branch, "_out"), onnx::TensorProto::FLOAT, {2});
  }
  SetInfo(graph->add_output(), "y", onnx::TensorProto::FLOAT, {2});
  auto g = Load(m);
  ASSERT_TRUE(g.ok()) << g.status();
  absl::Status s = CheckOperatorsSupported(*g);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("If ('the_if')"));
}

TEST(OnnxLoaderTest, GarbageIsRefused) {
  for (std::string bytes : {std::string("\xff\xff\xff\xff", 4), std::string("hello world"),
                            BaseModel().SerializeAsString().substr(0, 5)}) {
    auto g = LoadOnnxBytes(bytes, "", "blob");
    ASSERT_FALSE(g.ok());
    EXPECT_THAT(g.status().message(), HasSubstr("blob"));
  }
}

// --- External data -------------------------------------------------------------------------

class ExternalDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::path(::testing::TempDir()) /
            absl::StrCat("onnx_loader_test_", getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_ / "model" / "sub");
    float values[4] = {1, 2, 3, 4};
    Write(root_ / "model" / "w.bin", std::string(reinterpret_cast<char*>(values), 16));
    Write(root_ / "model" / "sub" / "w.bin", std::string(reinterpret_cast<char*>(values), 16));
    Write(root_ / "secret.bin", std::string(16, 's'));
  }
  void TearDown() override { fs::remove_all(root_); }

  static void Write(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::binary) << bytes;
  }

  // Writes model/model.onnx with a [4] float initializer stored at `location`, then loads it.
  absl::StatusOr<Graph> LoadWithLocation(const std::string& location, int64_t offset = 0,
                                         int64_t length = -1) {
    onnx::ModelProto m = BaseModel();
    onnx::TensorProto* t = AddInitializer(m, "ext_w", onnx::TensorProto::FLOAT, {4});
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* e = t->add_external_data();
    e->set_key("location");
    e->set_value(location);
    if (offset != 0) {
      e = t->add_external_data();
      e->set_key("offset");
      e->set_value(std::to_string(offset));
    }
    if (length >= 0) {
      e = t->add_external_data();
      e->set_key("length");
      e->set_value(std::to_string(length));
    }
    model_bytes_ = m.SerializeAsString();
    Write(root_ / "model" / "model.onnx", model_bytes_);
    return LoadOnnxFile((root_ / "model" / "model.onnx").string());
  }

  fs::path root_;
  std::string model_bytes_;
};

TEST_F(ExternalDataTest, InsideTheFolderLoads) {
  for (const char* location : {"w.bin", "sub/w.bin", "./sub/../w.bin"}) {
    auto g = LoadWithLocation(location);
    ASSERT_TRUE(g.ok()) << location << ": " << g.status();
    EXPECT_EQ(ConstantNamed(*g, "ext_w").data<float>()[3], 4.f);
  }
  auto g = LoadWithLocation("w.bin", 4, 16);
  EXPECT_FALSE(g.ok());  // 4 + 16 > 16 bytes
  Write(root_ / "model" / "w.bin", std::string(4, '\0') + std::string(16, '\0'));
  g = LoadWithLocation("w.bin", 4, 16);
  EXPECT_TRUE(g.ok()) << g.status();
}

TEST_F(ExternalDataTest, LeavingTheFolderIsRefused) {
  fs::create_symlink(root_ / "secret.bin", root_ / "model" / "abs_link.bin");
  fs::create_symlink("../secret.bin", root_ / "model" / "rel_link.bin");
  fs::create_directory_symlink(root_, root_ / "model" / "up");
  for (const std::string& location : std::vector<std::string>{
           "../secret.bin", "sub/../../secret.bin", (root_ / "secret.bin").string(), "/etc/passwd",
           "abs_link.bin", "rel_link.bin", "up/secret.bin", ".", "sub/..",
           std::string("w.bin\0/../../secret.bin", 23)}) {
    auto g = LoadWithLocation(location);
    ASSERT_FALSE(g.ok()) << location;
    EXPECT_EQ(g.status().code(), absl::StatusCode::kPermissionDenied) << g.status();
    EXPECT_THAT(g.status().message(), AllOf(HasSubstr("ext_w"), HasSubstr("outside")));
  }
}

TEST_F(ExternalDataTest, MissingShortOrOddFiles) {
  auto g = LoadWithLocation("absent.bin");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(g.status().message(), AllOf(HasSubstr("absent.bin"), HasSubstr("does not exist")));

  Write(root_ / "model" / "short.bin", "abc");
  g = LoadWithLocation("short.bin");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), AllOf(HasSubstr("short.bin"), HasSubstr("has 3 bytes")));

  g = LoadWithLocation("sub");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("not a regular file"));

  g = LoadWithLocation("w.bin", 0, 12);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("length 12 does not match the tensor's 16 bytes"));

  g = LoadWithLocation("w.bin", -5);
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(), HasSubstr("offset"));
}

TEST_F(ExternalDataTest, FromMemoryNeedsAFolder) {
  ASSERT_TRUE(LoadWithLocation("w.bin").ok());
  auto g = LoadOnnxBytes(model_bytes_, "", "in-memory model");
  ASSERT_FALSE(g.ok());
  EXPECT_THAT(g.status().message(),
              AllOf(HasSubstr("in-memory model"), HasSubstr("w.bin"), HasSubstr("from memory")));
  g = LoadOnnxBytes(model_bytes_, (root_ / "model").string(), "in-memory model");
  EXPECT_TRUE(g.ok()) << g.status();
}

TEST_F(ExternalDataTest, ResolvesAgainstTheModelFolderNotTheWorkingDirectory) {
  fs::path old = fs::current_path();
  fs::current_path(root_);
  auto g = LoadWithLocation("w.bin");
  fs::current_path(old);
  EXPECT_TRUE(g.ok()) << g.status();
}

}  // namespace
}  // namespace flywheel::engine
