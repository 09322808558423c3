#include "api/grpc/grpc_codec.h"

#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::api {
namespace {

using inference::ModelInferRequest;
using ::testing::HasSubstr;

std::shared_ptr<ModelInferRequest> NewRequest() {
  auto m = std::make_shared<ModelInferRequest>();
  m->set_model_name("simple");
  return m;
}

ModelInferRequest::InferInputTensor* AddInput(ModelInferRequest* m, const std::string& name,
                                              const std::string& datatype,
                                              std::initializer_list<int64_t> shape) {
  auto* in = m->add_inputs();
  in->set_name(name);
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return in;
}

template <typename T>
std::string RawOf(std::initializer_list<T> values) {
  std::string s(values.size() * sizeof(T), '\0');
  std::memcpy(s.data(), values.begin(), s.size());
  return s;
}

std::string LengthPrefixed(std::initializer_list<std::string> elems) {
  std::string out;
  for (const std::string& e : elems) {
    const auto len = static_cast<uint32_t>(e.size());
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
    out += e;
  }
  return out;
}

TEST(GrpcCodecTest, TypedInt32IsAViewIntoTheMessage) {
  auto m = NewRequest();
  m->set_model_version("1");
  m->set_id("req-7");
  auto* in = AddInput(m.get(), "INPUT0", "INT32", {2, 2});
  for (int v : {1, 2, 3, 4}) in->mutable_contents()->add_int_contents(v);
  m->add_outputs()->set_name("OUTPUT0");

  auto req = DecodeInferRequest(m);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ((*req)->model_name, "simple");
  EXPECT_EQ((*req)->model_version, "1");
  EXPECT_EQ((*req)->id, "req-7");
  ASSERT_EQ((*req)->inputs.size(), 1u);
  const Tensor& t = (*req)->inputs[0].data;
  EXPECT_EQ(t.dtype(), DataType::kInt32);
  EXPECT_EQ(t.shape(), Shape({2, 2}));
  EXPECT_EQ(t.data<int32_t>(), m->inputs(0).contents().int_contents().data());
  EXPECT_EQ(t.data<int32_t>()[3], 4);
  ASSERT_EQ((*req)->outputs.size(), 1u);
  EXPECT_EQ((*req)->outputs[0].name, "OUTPUT0");
  // The request keeps the message alive for its views.
  EXPECT_EQ((*req)->body.get(), static_cast<const void*>(m.get()));
}

TEST(GrpcCodecTest, NarrowIntegersAreRangeChecked) {
  auto m = NewRequest();
  auto* in = AddInput(m.get(), "x", "INT8", {3});
  for (int v : {-128, 5, 127}) in->mutable_contents()->add_int_contents(v);
  auto ok = DecodeInferRequest(m);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->inputs[0].data.data<int8_t>()[0], -128);

  in->mutable_contents()->set_int_contents(1, 300);
  auto bad = DecodeInferRequest(m);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("value 300 at index 1"));
  EXPECT_THAT(bad.status().message(), HasSubstr("input 'x'"));

  auto u = NewRequest();
  auto* uin = AddInput(u.get(), "u", "UINT16", {2});
  uin->mutable_contents()->add_uint_contents(65535);
  uin->mutable_contents()->add_uint_contents(65536);
  EXPECT_THAT(DecodeInferRequest(u).status().message(), HasSubstr("out of range for UINT16"));
}

TEST(GrpcCodecTest, EveryTypedFieldDecodes) {
  auto m = NewRequest();
  AddInput(m.get(), "b", "BOOL", {2})->mutable_contents()->add_bool_contents(true);
  m->mutable_inputs(0)->mutable_contents()->add_bool_contents(false);
  AddInput(m.get(), "i64", "INT64", {1})->mutable_contents()->add_int64_contents(-5);
  AddInput(m.get(), "u32", "UINT32", {1})->mutable_contents()->add_uint_contents(7);
  AddInput(m.get(), "u64", "UINT64", {1})->mutable_contents()->add_uint64_contents(1ull << 40);
  AddInput(m.get(), "f", "FP32", {1})->mutable_contents()->add_fp32_contents(1.5f);
  AddInput(m.get(), "d", "FP64", {1})->mutable_contents()->add_fp64_contents(2.25);
  auto* s = AddInput(m.get(), "s", "BYTES", {2});
  s->mutable_contents()->add_bytes_contents("hello");
  s->mutable_contents()->add_bytes_contents(std::string("a\0b", 3));

  auto req = DecodeInferRequest(m);
  ASSERT_TRUE(req.ok()) << req.status();
  const auto& in = (*req)->inputs;
  ASSERT_EQ(in.size(), 7u);
  EXPECT_TRUE(in[0].data.data<bool>()[0]);
  EXPECT_FALSE(in[0].data.data<bool>()[1]);
  EXPECT_EQ(in[1].data.data<int64_t>()[0], -5);
  EXPECT_EQ(in[2].data.data<uint32_t>()[0], 7u);
  EXPECT_EQ(in[3].data.data<uint64_t>()[0], 1ull << 40);
  EXPECT_EQ(in[4].data.data<float>()[0], 1.5f);
  EXPECT_EQ(in[5].data.data<double>()[0], 2.25);
  EXPECT_EQ(in[6].data.dtype(), DataType::kBytes);
  EXPECT_EQ(in[6].data.strings()[0], "hello");
  EXPECT_EQ(in[6].data.strings()[1], std::string("a\0b", 3));
}

TEST(GrpcCodecTest, TypedCountAndFieldMismatchesNameTheInput) {
  auto m = NewRequest();
  auto* in = AddInput(m.get(), "INPUT0", "INT32", {16});
  for (int i = 0; i < 15; ++i) in->mutable_contents()->add_int_contents(i);
  auto r = DecodeInferRequest(m);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("model 'simple' input 'INPUT0': int_contents has 15 values, expected 16"));

  in->mutable_contents()->Clear();
  in->mutable_contents()->add_fp32_contents(1.0f);
  EXPECT_THAT(DecodeInferRequest(m).status().message(),
              HasSubstr("takes its values in int_contents, but the request sets fp32_contents"));

  in->mutable_contents()->Clear();
  EXPECT_THAT(DecodeInferRequest(m).status().message(), HasSubstr("no data"));
}

TEST(GrpcCodecTest, BadDatatypeAndShapeAreRefused) {
  auto m = NewRequest();
  AddInput(m.get(), "x", "FP33", {1})->mutable_contents()->add_fp32_contents(1);
  EXPECT_THAT(DecodeInferRequest(m).status().message(), HasSubstr("unknown datatype 'FP33'"));

  auto n = NewRequest();
  AddInput(n.get(), "x", "FP32", {-1, 2});
  EXPECT_EQ(DecodeInferRequest(n).status().code(), absl::StatusCode::kInvalidArgument);

  auto e = NewRequest();
  AddInput(e.get(), "", "FP32", {0});
  EXPECT_THAT(DecodeInferRequest(e).status().message(), HasSubstr("input #0 has no name"));

  auto h = NewRequest();
  AddInput(h.get(), "h", "FP16", {1})->mutable_contents()->add_fp32_contents(1);
  EXPECT_THAT(DecodeInferRequest(h).status().message(), HasSubstr("raw_input_contents"));
}

TEST(GrpcCodecTest, RawInputsAreViewsAndSizesAreChecked) {
  auto m = NewRequest();
  AddInput(m.get(), "a", "FP32", {2});
  AddInput(m.get(), "b", "INT64", {1});
  m->add_raw_input_contents(RawOf<float>({1.0f, -2.0f}));
  m->add_raw_input_contents(RawOf<int64_t>({9}));
  auto req = DecodeInferRequest(m);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ((*req)->inputs[0].data.data<float>()[1], -2.0f);
  EXPECT_EQ((*req)->inputs[0].data.raw_data(),
            static_cast<const void*>(m->raw_input_contents(0).data()));
  EXPECT_EQ((*req)->inputs[1].data.data<int64_t>()[0], 9);

  m->mutable_raw_input_contents(0)->pop_back();
  auto bad = DecodeInferRequest(m);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("input 'a': raw_input_contents has 7 bytes"));

  m->mutable_raw_input_contents()->RemoveLast();
  EXPECT_THAT(DecodeInferRequest(m).status().message(),
              HasSubstr("1 raw_input_contents for 2 inputs"));
}

TEST(GrpcCodecTest, RawAndTypedContentsCannotMix) {
  auto m = NewRequest();
  AddInput(m.get(), "a", "FP32", {1})->mutable_contents()->add_fp32_contents(1);
  m->add_raw_input_contents(RawOf<float>({1.0f}));
  EXPECT_THAT(DecodeInferRequest(m).status().message(),
              HasSubstr("sets contents while the request uses raw_input_contents"));
}

TEST(GrpcCodecTest, RawBoolMustBeZeroOrOne) {
  auto m = NewRequest();
  AddInput(m.get(), "b", "BOOL", {2});
  m->add_raw_input_contents(std::string("\x01\x02", 2));
  EXPECT_THAT(DecodeInferRequest(m).status().message(), HasSubstr("other than 0 or 1"));
}

TEST(GrpcCodecTest, RawBytesAreLengthPrefixed) {
  auto m = NewRequest();
  AddInput(m.get(), "s", "BYTES", {3});
  m->add_raw_input_contents(LengthPrefixed({"one", "", "three"}));
  auto req = DecodeInferRequest(m);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ((*req)->inputs[0].data.strings(), (std::vector<std::string>{"one", "", "three"}));

  // Fewer elements than the shape.
  m->set_raw_input_contents(0, LengthPrefixed({"one", "two"}));
  EXPECT_THAT(DecodeInferRequest(m).status().message(),
              HasSubstr("holds only 2 of the 3 BYTES elements"));
  // A length that runs past the end.
  std::string truncated = LengthPrefixed({"one", "two", "three"});
  truncated.pop_back();
  m->set_raw_input_contents(0, truncated);
  EXPECT_THAT(DecodeInferRequest(m).status().message(), HasSubstr("declares 5 bytes"));
  // Trailing bytes after the last element.
  m->set_raw_input_contents(0, LengthPrefixed({"one", "two", "three"}) + "x");
  EXPECT_THAT(DecodeInferRequest(m).status().message(), HasSubstr("after the 3 BYTES elements"));
}

TEST(GrpcCodecTest, HugeBytesShapeIsRefusedBeforeAllocating) {
  auto m = NewRequest();
  AddInput(m.get(), "s", "BYTES", {1000000000000});
  m->add_raw_input_contents(LengthPrefixed({"x"}));
  EXPECT_EQ(DecodeInferRequest(m).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GrpcCodecTest, ParametersSteerPriorityAndTimeout) {
  auto m = NewRequest();
  (*m->mutable_parameters())["priority"].set_int64_param(2);
  (*m->mutable_parameters())["timeout"].set_uint64_param(5000);
  (*m->mutable_parameters())["binary_data_output"].set_bool_param(true);
  (*m->mutable_parameters())["sequence_id"].set_int64_param(42);
  (*m->mutable_parameters())["tag"].set_string_param("a/b");
  auto req = DecodeInferRequest(m);
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_EQ((*req)->priority, 2u);
  EXPECT_EQ((*req)->timeout_us, 5000u);
  EXPECT_EQ((*req)->parameters.size(), 2u);
  EXPECT_EQ(std::get<int64_t>((*req)->parameters.at("sequence_id")), 42);
  EXPECT_EQ(std::get<std::string>((*req)->parameters.at("tag")), "a/b");

  (*m->mutable_parameters())["priority"].set_int64_param(-1);
  EXPECT_THAT(DecodeInferRequest(m).status().message(),
              HasSubstr("parameter 'priority' must be a non-negative integer"));
}

TEST(GrpcCodecTest, EncodeWritesRawOutputs) {
  serving::InferResponse r;
  r.model_name = "simple";
  r.model_version = "1";
  r.id = "x";
  r.parameters["sequence_end"] = true;
  Tensor f = Tensor::Allocate(DataType::kFp32, Shape({2}));
  f.data<float>()[0] = 1.5f;
  f.data<float>()[1] = -3.0f;
  Tensor s = Tensor::Allocate(DataType::kBytes, Shape({2}));
  s.strings()[0] = "ab";
  s.strings()[1] = "";
  r.outputs.push_back({"OUT", f, false});
  r.outputs.push_back({"STR", s, false});

  inference::ModelInferResponse out;
  ASSERT_TRUE(EncodeInferResponse(r, &out).ok());
  EXPECT_EQ(out.model_name(), "simple");
  EXPECT_EQ(out.model_version(), "1");
  EXPECT_EQ(out.id(), "x");
  EXPECT_TRUE(out.parameters().at("sequence_end").bool_param());
  ASSERT_EQ(out.outputs_size(), 2);
  EXPECT_EQ(out.outputs(0).datatype(), "FP32");
  EXPECT_EQ(out.outputs(0).shape_size(), 1);
  EXPECT_EQ(out.outputs(0).shape(0), 2);
  EXPECT_FALSE(out.outputs(0).has_contents());
  EXPECT_EQ(out.raw_output_contents(0), RawOf<float>({1.5f, -3.0f}));
  EXPECT_EQ(out.outputs(1).datatype(), "BYTES");
  EXPECT_EQ(out.raw_output_contents(1), LengthPrefixed({"ab", ""}));
}

TEST(GrpcCodecTest, StatusCodesCarryOver) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  grpc::Status s = ToGrpcStatus(absl::NotFoundError("model 'x' is not found"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "model 'x' is not found");
  EXPECT_EQ(ToGrpcStatus(absl::UnavailableError("full")).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ToGrpcStatus(absl::InvalidArgumentError("bad")).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace flywheel::api
