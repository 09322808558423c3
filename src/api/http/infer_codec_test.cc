#include "api/http/infer_codec.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace flywheel::api::http {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Decoded {
  absl::Status status;
  serving::InferRequest request;
  InferEncodeOptions options;
  std::shared_ptr<std::string> body;
};

// Decodes `json` followed by `binary`; the header length is sent when binary is non-empty or
// `with_header` is set.
Decoded Decode(const std::string& json, const std::string& binary = "", bool with_header = false) {
  Decoded d;
  d.body = std::make_shared<std::string>(json + binary);
  std::optional<size_t> header;
  if (!binary.empty() || with_header) header = json.size();
  d.status =
      DecodeInferRequest(d.body->data(), d.body->size(), header, d.body, &d.request, &d.options);
  return d;
}

std::string Input(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& data) {
  return "{\"name\":\"" + name + "\",\"datatype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"data\":" + data + "}";
}

std::string BinaryInput(const std::string& name, const std::string& dtype, const std::string& shape,
                        size_t size) {
  return "{\"name\":\"" + name + "\",\"datatype\":\"" + dtype + "\",\"shape\":" + shape +
         ",\"parameters\":{\"binary_data_size\":" + std::to_string(size) + "}}";
}

std::string Request(const std::string& inputs, const std::string& rest = "") {
  return "{\"inputs\":[" + inputs + "]" + rest + "}";
}

template <typename T>
std::string Raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

std::string Le32(uint32_t n) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}

template <typename T>
std::vector<T> Values(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.NumElements());
}

void ExpectError(const Decoded& d, const std::string& fragment,
                 absl::StatusCode code = absl::StatusCode::kInvalidArgument) {
  EXPECT_EQ(d.status.code(), code) << d.status;
  EXPECT_THAT(std::string(d.status.message()), HasSubstr(fragment));
}

// ---- JSON inputs, one test per datatype family -------------------------------------------------

TEST(DecodeJson, EveryIntegerType) {
  auto d = Decode(Request(
      Input("b", "BOOL", "[2]", "[true,false]") + "," + Input("u8", "UINT8", "[2]", "[0,255]") +
      "," + Input("u16", "UINT16", "[1]", "[65535]") + "," +
      Input("u32", "UINT32", "[1]", "[4294967295]") + "," +
      Input("u64", "UINT64", "[1]", "[18446744073709551615]") + "," +
      Input("i8", "INT8", "[2]", "[-128,127]") + "," + Input("i16", "INT16", "[1]", "[-32768]") +
      "," + Input("i32", "INT32", "[2]", "[-2147483648,2147483647]") + "," +
      Input("i64", "INT64", "[1]", "[-9223372036854775808]")));
  ASSERT_TRUE(d.status.ok()) << d.status;
  const auto& in = d.request.inputs;
  ASSERT_EQ(in.size(), 9u);
  EXPECT_EQ(Values<bool>(in[0].data), (std::vector<bool>{true, false}));
  EXPECT_EQ(Values<uint8_t>(in[1].data), (std::vector<uint8_t>{0, 255}));
  EXPECT_EQ(Values<uint16_t>(in[2].data), (std::vector<uint16_t>{65535}));
  EXPECT_EQ(Values<uint32_t>(in[3].data), (std::vector<uint32_t>{4294967295u}));
  EXPECT_EQ(Values<uint64_t>(in[4].data),
            (std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()}));
  EXPECT_EQ(Values<int8_t>(in[5].data), (std::vector<int8_t>{-128, 127}));
  EXPECT_EQ(Values<int16_t>(in[6].data), (std::vector<int16_t>{-32768}));
  EXPECT_EQ(Values<int32_t>(in[7].data),
            (std::vector<int32_t>{std::numeric_limits<int32_t>::min(), 2147483647}));
  EXPECT_EQ(Values<int64_t>(in[8].data),
            (std::vector<int64_t>{std::numeric_limits<int64_t>::min()}));
  for (const auto& i : in) EXPECT_TRUE(i.data.owns_data());
}

TEST(DecodeJson, FloatsAndNestedData) {
  auto d = Decode(Request(Input("f", "FP32", "[2,2]", "[[1.5,-2],[3e-3,1e38]]") + "," +
                          Input("d", "FP64", "[3]", "[0.1,NaN,-Infinity]")));
  ASSERT_TRUE(d.status.ok()) << d.status;
  const Tensor& f = d.request.inputs[0].data;
  EXPECT_EQ(f.shape(), (Shape{2, 2}));
  EXPECT_EQ(Values<float>(f), (std::vector<float>{1.5f, -2.f, 3e-3f, 1e38f}));
  std::vector<double> v = Values<double>(d.request.inputs[1].data);
  EXPECT_EQ(v[0], 0.1);
  EXPECT_TRUE(std::isnan(v[1]));
  EXPECT_EQ(v[2], -std::numeric_limits<double>::infinity());
}

TEST(DecodeJson, NumbersAreExact) {
  std::string long_mantissa = "0." + std::string(400, '0') + "726691175";
  auto d = Decode(Request(
      Input("d", "FP64", "[5]",
            "[0.30000000000000004,2.2250738585072014e-308,1e-400,-5e-324," + long_mantissa + "]") +
      "," + Input("u", "UINT64", "[1]", "[18446744073709551615]")));
  ASSERT_TRUE(d.status.ok()) << d.status;
  std::vector<double> v = Values<double>(d.request.inputs[0].data);
  EXPECT_EQ(v[0], 0.30000000000000004);
  EXPECT_EQ(v[1], 2.2250738585072014e-308);
  EXPECT_EQ(v[2], 0.0);
  EXPECT_EQ(v[3], -5e-324);
  EXPECT_EQ(v[4], 0.0);
  ExpectError(Decode(Request(Input("d", "FP64", "[1]", "[1e400]"))), "Number too big");
}

TEST(DecodeJson, BytesAsStrings) {
  auto d =
      Decode(Request(Input("s", "BYTES", "[1,3]", "[\"a\",\"\\u00e9t\\u00e9\",\"x\\u0000y\"]")));
  ASSERT_TRUE(d.status.ok()) << d.status;
  const Tensor& t = d.request.inputs[0].data;
  ASSERT_EQ(t.dtype(), DataType::kBytes);
  EXPECT_EQ(t.strings(),
            (std::vector<std::string>{"a", "\xc3\xa9t\xc3\xa9", std::string("x\0y", 3)}));
}

TEST(DecodeJson, ScalarAndEmptyShapes) {
  auto d =
      Decode(Request(Input("s", "INT64", "[]", "[7]") + "," + Input("e", "FP32", "[0,4]", "[]")));
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.request.inputs[0].data.NumElements(), 1);
  EXPECT_EQ(d.request.inputs[0].data.data<int64_t>()[0], 7);
  EXPECT_EQ(d.request.inputs[1].data.shape(), (Shape{0, 4}));
}

TEST(DecodeJson, RequestFields) {
  auto d = Decode(Request(Input("x", "INT32", "[1]", "[1]"),
                          ",\"id\":\"req-7\",\"parameters\":{\"priority\":2,\"timeout\":1500,"
                          "\"sequence_id\":42,\"flag\":true,\"ratio\":0.5,\"tag\":\"t\"},"
                          "\"outputs\":[{\"name\":\"a\",\"parameters\":{\"binary_data\":true}},"
                          "{\"name\":\"b\"}]"));
  ASSERT_TRUE(d.status.ok()) << d.status;
  const auto& r = d.request;
  EXPECT_EQ(r.id, "req-7");
  EXPECT_EQ(r.priority, 2u);
  EXPECT_EQ(r.timeout_us, 1500u);
  // Known parameters are taken out; the rest pass through with their JSON types.
  EXPECT_EQ(r.parameters.count("priority"), 0u);
  EXPECT_EQ(std::get<int64_t>(r.parameters.at("sequence_id")), 42);
  EXPECT_EQ(std::get<bool>(r.parameters.at("flag")), true);
  EXPECT_EQ(std::get<double>(r.parameters.at("ratio")), 0.5);
  EXPECT_EQ(std::get<std::string>(r.parameters.at("tag")), "t");
  ASSERT_EQ(r.outputs.size(), 2u);
  EXPECT_TRUE(r.outputs[0].binary_data);
  EXPECT_TRUE(r.outputs[0].parameters.empty());
  EXPECT_FALSE(r.outputs[1].binary_data);
  EXPECT_FALSE(d.options.all_outputs_binary);
}

TEST(DecodeJson, BinaryDataOutput) {
  // With named outputs, binary_data_output is their default; an explicit false wins.
  auto named = Decode(Request(Input("x", "INT32", "[1]", "[1]"),
                              ",\"parameters\":{\"binary_data_output\":true},\"outputs\":["
                              "{\"name\":\"a\"},{\"name\":\"b\",\"parameters\":"
                              "{\"binary_data\":false}}]"));
  ASSERT_TRUE(named.status.ok()) << named.status;
  EXPECT_TRUE(named.request.outputs[0].binary_data);
  EXPECT_FALSE(named.request.outputs[1].binary_data);
  EXPECT_FALSE(named.options.all_outputs_binary);
  // Without named outputs, it applies to every output of the response.
  auto all = Decode(
      Request(Input("x", "INT32", "[1]", "[1]"), ",\"parameters\":{\"binary_data_output\":true}"));
  ASSERT_TRUE(all.status.ok()) << all.status;
  EXPECT_TRUE(all.options.all_outputs_binary);
  EXPECT_TRUE(all.request.parameters.empty());
}

// ---- Binary inputs ---------------------------------------------------------------------------

TEST(DecodeBinary, EveryFixedSizeTypeIsAViewOrAlignedCopy) {
  std::vector<float> f = {1.f, -2.5f, 3.f};
  std::vector<int64_t> i = {-1, 1LL << 40};
  std::vector<uint16_t> h = {0x3c00, 0xc000};  // FP16 1.0, -2.0
  std::vector<uint16_t> bf = {0x3f80};         // BF16 1.0
  std::vector<uint8_t> b = {1, 0, 1};
  std::string json =
      Request(BinaryInput("f", "FP32", "[3]", 12) + "," + BinaryInput("i", "INT64", "[2]", 16) +
              "," + BinaryInput("h", "FP16", "[2]", 4) + "," + BinaryInput("bf", "BF16", "[1]", 2) +
              "," + BinaryInput("b", "BOOL", "[3]", 3));
  auto d = Decode(json, Raw(f) + Raw(i) + Raw(h) + Raw(bf) + Raw(b));
  ASSERT_TRUE(d.status.ok()) << d.status;
  const auto& in = d.request.inputs;
  EXPECT_EQ(Values<float>(in[0].data), f);
  EXPECT_EQ(Values<int64_t>(in[1].data), i);
  EXPECT_EQ(Values<uint16_t>(in[2].data), h);
  EXPECT_EQ(in[2].data.dtype(), DataType::kFp16);
  EXPECT_EQ(Values<uint16_t>(in[3].data), bf);
  EXPECT_EQ(in[3].data.dtype(), DataType::kBf16);
  EXPECT_EQ(Values<uint8_t>(in[4].data), (std::vector<uint8_t>{1, 0, 1}));
  // The body is kept alive by the request; aligned inputs point into it.
  EXPECT_EQ(d.request.body.get(), d.body.get());
  for (const auto& input : in) {
    const char* p = static_cast<const char*>(input.data.raw_data());
    bool in_body = p >= d.body->data() && p < d.body->data() + d.body->size();
    bool aligned = reinterpret_cast<uintptr_t>(p) % DataTypeSize(input.data.dtype()) == 0;
    EXPECT_TRUE(aligned) << input.name;
    EXPECT_TRUE(in_body || input.data.owns_data()) << input.name;
  }
}

TEST(DecodeBinary, AlignedBinaryIsNotCopied) {
  // Pad the JSON with spaces so that the binary section starts 8-aligned within the string.
  std::string json = Request(BinaryInput("x", "FP64", "[2]", 16));
  auto body = std::make_shared<std::string>();
  body->reserve(256);
  size_t pad = (8 - (reinterpret_cast<uintptr_t>(body->data()) + json.size()) % 8) % 8;
  json += std::string(pad, ' ');
  std::vector<double> v = {0.25, -8};
  *body = json + Raw(v);
  serving::InferRequest r;
  InferEncodeOptions o;
  ASSERT_TRUE(DecodeInferRequest(body->data(), body->size(), json.size(), body, &r, &o).ok());
  EXPECT_EQ(r.inputs[0].data.raw_data(), body->data() + json.size());
  EXPECT_EQ(Values<double>(r.inputs[0].data), v);
}

TEST(DecodeBinary, BytesWithLengthPrefixes) {
  std::string bin = Le32(3) + "abc" + Le32(0) + Le32(2) + std::string("\xff\x00", 2);
  auto d = Decode(Request(BinaryInput("s", "BYTES", "[3]", bin.size())), bin);
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(d.request.inputs[0].data.strings(),
            (std::vector<std::string>{"abc", "", std::string("\xff\x00", 2)}));
}

TEST(DecodeBinary, MixedWithJsonInputsInOrder) {
  std::vector<int32_t> a = {1, 2}, c = {5};
  std::string json =
      Request(BinaryInput("a", "INT32", "[2]", 8) + "," + Input("b", "INT32", "[1]", "[9]") + "," +
              BinaryInput("c", "INT32", "[1]", 4));
  auto d = Decode(json, Raw(a) + Raw(c));
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(Values<int32_t>(d.request.inputs[0].data), a);
  EXPECT_EQ(Values<int32_t>(d.request.inputs[1].data), (std::vector<int32_t>{9}));
  EXPECT_EQ(Values<int32_t>(d.request.inputs[2].data), c);
}

TEST(DecodeBinary, HeaderLengthEqualToBodyMeansNoBinary) {
  auto d = Decode(Request(Input("x", "INT32", "[1]", "[3]")), "", /*with_header=*/true);
  ASSERT_TRUE(d.status.ok()) << d.status;
}

// ---- Errors ---------------------------------------------------------------------------------

TEST(DecodeErrors, MalformedJsonGivesTheOffset) {
  ExpectError(Decode("{\"inputs\": [1,}"), "malformed JSON at offset 14");
  ExpectError(Decode("{\"inputs\":[]} trailing"), "malformed JSON at offset 14");
  ExpectError(Decode(""), "no JSON");
  ExpectError(Decode("[1,2]"), "must be a JSON object, got an array");
  ExpectError(Decode(std::string(100000, '[')), "malformed JSON");
}

TEST(DecodeErrors, RequiredFields) {
  ExpectError(Decode("{}"), "needs an 'inputs' array");
  ExpectError(Decode("{\"inputs\":{}}"), "needs an 'inputs' array, got an object");
  ExpectError(Decode(Request("3")), "inputs[0] must be an object");
  ExpectError(Decode(Request("{\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}")),
              "inputs[0]: missing string 'name'");
  ExpectError(Decode(Request("{\"name\":\"x\",\"datatype\":\"FP32\",\"data\":[1]}")),
              "input 'x': missing 'shape'");
  ExpectError(Decode(Request("{\"name\":\"x\",\"shape\":[1],\"data\":[1]}")),
              "input 'x': missing string 'datatype'");
  ExpectError(Decode(Request("{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\"}")),
              "input 'x': has neither 'data' nor binary_data_size");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[1]"), ",\"id\":5")),
              "'id' must be a string");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[1]"), ",\"outputs\":{}")),
              "'outputs' must be an array");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[1]"), ",\"outputs\":[{}]")),
              "outputs[0]: missing string 'name'");
}

TEST(DecodeErrors, DatatypeAndShape) {
  ExpectError(Decode(Request(Input("x", "FLOAT", "[1]", "[1]"))),
              "input 'x': unknown datatype 'FLOAT'");
  ExpectError(Decode(Request(Input("x", "FP32", "[-1]", "[1]"))),
              "input 'x': 'shape' must hold non-negative integers, got -1");
  ExpectError(Decode(Request(Input("x", "FP32", "[1.5]", "[1]"))), "got 1.5");
  ExpectError(Decode(Request(Input("x", "FP32", "3", "[1]"))), "'shape' must be an array");
  ExpectError(Decode(Request(Input("x", "FP32", "[4294967296,4294967296]", "[1]"))),
              "too many elements");
  ExpectError(Decode(Request(Input("x", "FP32", "[9223372036854775807,2]", "[1]"))),
              "too many elements");
}

TEST(DecodeErrors, ElementCountAndTypes) {
  ExpectError(Decode(Request(Input("x", "FP32", "[2,2]", "[1,2,3]"))),
              "input 'x': 'data' has 3 elements but shape [2,2] needs 4");
  ExpectError(Decode(Request(Input("x", "INT32", "[2]", "[1,1.5]"))),
              "input 'x': element 1 of 'data' is 1.5, not a valid INT32 value");
  ExpectError(Decode(Request(Input("x", "INT8", "[1]", "[128]"))), "128, not a valid INT8");
  ExpectError(Decode(Request(Input("x", "UINT8", "[1]", "[-1]"))), "-1, not a valid UINT8");
  ExpectError(Decode(Request(Input("x", "UINT32", "[1]", "[4294967296]"))), "not a valid UINT32");
  ExpectError(Decode(Request(Input("x", "INT64", "[1]", "[9223372036854775808]"))),
              "not a valid INT64");
  ExpectError(Decode(Request(Input("x", "BOOL", "[1]", "[1]"))), "1, not a valid BOOL");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[\"1\"]"))), "\"1\", not a valid FP32");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[1e39]"))), "not a valid FP32");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[null]"))), "null, not a valid FP32");
  ExpectError(Decode(Request(Input("x", "BYTES", "[1]", "[3]"))), "3, not a valid BYTES");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[{}]"))), "an object, not a valid FP32");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "5"))), "'data' must be an array");
  ExpectError(Decode(Request(Input("x", "FP16", "[1]", "[1]"))),
              "FP16 data must be sent in binary");
  ExpectError(Decode(Request(Input("x", "BF16", "[1]", "[1]"))),
              "BF16 data must be sent in binary");
  std::string deep = std::string(40, '[') + "1" + std::string(40, ']');
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", deep))), "nested more than 32 levels");
  ExpectError(
      Decode(Request(Input("x", "FP32", "[1]", "[1]") + "," + Input("x", "FP32", "[1]", "[1]"))),
      "input 'x' appears more than once");
  // Past eight names the check moves to a hash set: a duplicate there is found too.
  std::string many;
  for (int i = 0; i < 12; ++i) {
    many += (i ? "," : "") + Input("in" + std::to_string(i), "FP32", "[1]", "[1]");
  }
  EXPECT_TRUE(Decode(Request(many)).status.ok());
  ExpectError(Decode(Request(many + "," + Input("in3", "FP32", "[1]", "[1]"))),
              "input 'in3' appears more than once");
  ExpectError(Decode(Request(many + "," + Input("in10", "FP32", "[1]", "[1]"))),
              "input 'in10' appears more than once");
}

TEST(DecodeErrors, Parameters) {
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[1]"), ",\"parameters\":[]")),
              "'parameters' must be a JSON object, got an array");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[1]"), ",\"parameters\":{\"a\":{}}")),
              "parameter 'a' must be a boolean, number or string, got an object");
  ExpectError(
      Decode(Request(Input("x", "FP32", "[1]", "[1]"), ",\"parameters\":{\"priority\":-1}")),
      "parameter 'priority' must be a non-negative integer");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[1]"),
                             ",\"parameters\":{\"priority\":4294967296}")),
              "above the UINT32 range");
  ExpectError(
      Decode(Request(Input("x", "FP32", "[1]", "[1]"), ",\"parameters\":{\"timeout\":\"1s\"}")),
      "parameter 'timeout' must be a non-negative integer");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[1]"),
                             ",\"parameters\":{\"binary_data_output\":1}")),
              "parameter 'binary_data_output' must be a boolean");
  ExpectError(
      Decode(Request(Input("x", "FP32", "[1]", "[1]"),
                     ",\"outputs\":[{\"name\":\"y\",\"parameters\":{\"classification\":3}}]")),
      "output 'y': the classification extension is not supported",
      absl::StatusCode::kUnimplemented);
  ExpectError(Decode(Request("{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"parameters\":"
                             "{\"shared_memory_region\":\"r\"}}")),
              "shared-memory extension is not supported", absl::StatusCode::kUnimplemented);
  ExpectError(
      Decode(Request(Input("x", "FP32", "[1]", "[1]"),
                     ",\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":\"yes\"}}]")),
      "output 'y': parameter 'binary_data' must be a boolean");
  ExpectError(Decode(Request(Input("x", "FP32", "[1]", "[1]"),
                             ",\"outputs\":[{\"name\":\"y\"},{\"name\":\"y\"}]")),
              "output 'y' is requested more than once");
}

TEST(DecodeErrors, BinarySection) {
  std::vector<float> f = {1, 2, 3};
  // Truncated: the section is shorter than binary_data_size says.
  ExpectError(Decode(Request(BinaryInput("x", "FP32", "[3]", 12)), Raw(f).substr(0, 10)),
              "input 'x': binary_data_size is 12 but only 10 bytes of binary data remain");
  // Size that does not match the shape.
  ExpectError(Decode(Request(BinaryInput("x", "FP32", "[2]", 12)), Raw(f)),
              "input 'x': binary_data_size is 12 but FP32 [2] needs 8 bytes");
  // Bytes left over.
  ExpectError(Decode(Request(BinaryInput("x", "FP32", "[3]", 12)), Raw(f) + "zz"),
              "2 bytes of binary data that no input's binary_data_size accounts for");
  // Binary sizes with no header length.
  ExpectError(Decode(Request(BinaryInput("x", "FP32", "[3]", 12))),
              "input 'x': has parameters.binary_data_size but the request has no "
              "Inference-Header-Content-Length header");
  // Both data and binary.
  ExpectError(Decode(Request("{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1],"
                             "\"parameters\":{\"binary_data_size\":4}}"),
                     Raw(std::vector<float>{1})),
              "has both 'data' and binary_data_size");
  ExpectError(Decode(Request("{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\","
                             "\"parameters\":{\"binary_data_size\":-4}}"),
                     "", true),
              "parameter 'binary_data_size' must be a non-negative integer");
  ExpectError(Decode(Request(BinaryInput("x", "BOOL", "[2]", 2)), std::string("\x01\x02", 2)),
              "BOOL element 1 is byte 2");
  // A header length beyond the body.
  auto body = std::make_shared<std::string>("{}");
  serving::InferRequest r;
  InferEncodeOptions o;
  absl::Status s = DecodeInferRequest(body->data(), body->size(), 10, body, &r, &o);
  EXPECT_THAT(std::string(s.message()), HasSubstr("is 10 but the body has only 2 bytes"));
}

TEST(DecodeErrors, BinaryBytes) {
  ExpectError(Decode(Request(BinaryInput("s", "BYTES", "[2]", 6)), Le32(1) + "a" + "b"),
              "is too small for the 2 BYTES elements");
  ExpectError(Decode(Request(BinaryInput("s", "BYTES", "[2]", 8)), Le32(1) + "a" + "bcd"),
              "BYTES element 1: its 4-byte length prefix is truncated");
  ExpectError(Decode(Request(BinaryInput("s", "BYTES", "[1]", 8)), Le32(9) + "abcd"),
              "BYTES element 0 claims 9 bytes but only 4 remain");
  ExpectError(Decode(Request(BinaryInput("s", "BYTES", "[1]", 7)), Le32(1) + "abc"),
              "2 bytes remain after the last of its 1 BYTES elements");
  // A huge shape with a tiny section is refused before allocating.
  ExpectError(Decode(Request(BinaryInput("s", "BYTES", "[1000000000]", 8)), Le32(1) + "abcd"),
              "too small for the 1000000000 BYTES elements");
}

TEST(HeaderLength, Parse) {
  EXPECT_EQ(*ParseInferHeaderLength("12", 20), 12u);
  EXPECT_EQ(*ParseInferHeaderLength(" 20 ", 20), 20u);
  EXPECT_THAT(std::string(ParseInferHeaderLength("21", 20).status().message()),
              HasSubstr("is 21 but the body has only 20 bytes"));
  for (const char* bad : {"", "-1", "+3", "abc", "1e3", "99999999999999999999999"}) {
    EXPECT_FALSE(ParseInferHeaderLength(bad, 100).ok()) << bad;
  }
}

// ---- Encoding -------------------------------------------------------------------------------

template <typename T>
Tensor Make(DataType dtype, Shape shape, std::vector<T> v) {
  Tensor t = Tensor::Allocate(dtype, shape);
  std::memcpy(t.raw_data(), v.data(), v.size() * sizeof(T));
  return t;
}

serving::InferResponse Response(std::vector<serving::InferOutput> outputs) {
  serving::InferResponse r;
  r.model_name = "m";
  r.model_version = "3";
  r.outputs = std::move(outputs);
  return r;
}

rapidjson::Document ParseJson(const std::string& s) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseNanAndInfFlag | rapidjson::kParseFullPrecisionFlag>(s.data(), s.size());
  EXPECT_FALSE(d.HasParseError()) << s;
  return d;
}

TEST(Encode, JsonEveryType) {
  Tensor strings = Tensor::Allocate(DataType::kBytes, Shape{2});
  strings.strings() = {"h\"i", std::string("\xc3\xa9\n", 3)};
  auto r = Response({
      {"b", Make<uint8_t>(DataType::kBool, {2}, {1, 0})},
      {"u8", Make<uint8_t>(DataType::kUint8, {1}, {200})},
      {"u16", Make<uint16_t>(DataType::kUint16, {1}, {65535})},
      {"u32", Make<uint32_t>(DataType::kUint32, {1}, {4000000000u})},
      {"u64", Make<uint64_t>(DataType::kUint64, {1}, {18446744073709551615ull})},
      {"i8", Make<int8_t>(DataType::kInt8, {2}, {-128, 5})},
      {"i16", Make<int16_t>(DataType::kInt16, {1}, {-300})},
      {"i32", Make<int32_t>(DataType::kInt32, {2, 1}, {-7, 7})},
      {"i64", Make<int64_t>(DataType::kInt64, {1}, {-9007199254740993LL})},
      {"f32", Make<float>(DataType::kFp32, {3}, {0.1f, -1e-30f, 16777216.f})},
      {"f64", Make<double>(DataType::kFp64, {2}, {0.1, 1.0 / 3})},
      {"s", strings},
  });
  r.id = "abc";
  r.parameters["sequence_end"] = true;
  auto e = EncodeInferResponse(r, {});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_FALSE(e->has_binary());
  EXPECT_THAT(e->json, HasSubstr("\"data\":[true,false]"));
  EXPECT_THAT(e->json, HasSubstr("\"data\":[-128,5]"));
  EXPECT_THAT(e->json, HasSubstr("\"data\":[200]"));
  EXPECT_THAT(e->json, HasSubstr("\"data\":[18446744073709551615]"));
  EXPECT_THAT(e->json, HasSubstr("\"data\":[-9007199254740993]"));
  // Shortest FP32 text that reads back as the same float.
  EXPECT_THAT(e->json, HasSubstr("\"data\":[0.1,-1e-30,16777216]"));
  rapidjson::Document d = ParseJson(e->json);
  EXPECT_STREQ(d["model_name"].GetString(), "m");
  EXPECT_STREQ(d["model_version"].GetString(), "3");
  EXPECT_STREQ(d["id"].GetString(), "abc");
  EXPECT_TRUE(d["parameters"]["sequence_end"].GetBool());
  const auto& outs = d["outputs"];
  ASSERT_EQ(outs.Size(), 12u);
  EXPECT_STREQ(outs[7]["datatype"].GetString(), "INT32");
  EXPECT_EQ(outs[7]["shape"][0].GetInt(), 2);
  EXPECT_EQ(outs[7]["shape"][1].GetInt(), 1);
  EXPECT_EQ(outs[10]["data"][1].GetDouble(), 1.0 / 3);
  EXPECT_EQ(static_cast<float>(outs[9]["data"][0].GetDouble()), 0.1f);
  EXPECT_EQ(std::string(outs[11]["data"][0].GetString()), "h\"i");
  EXPECT_EQ(std::string(outs[11]["data"][1].GetString()), "\xc3\xa9\n");
}

TEST(Encode, FloatsRoundTripAndSpecialValues) {
  std::vector<float> f = {3.14159274f,
                          1.17549435e-38f,
                          3.40282347e+38f,
                          1e-45f,
                          -0.f,
                          std::numeric_limits<float>::quiet_NaN(),
                          -std::numeric_limits<float>::infinity()};
  auto e = EncodeInferResponse(Response({{"f", Make<float>(DataType::kFp32, {7}, f)}}), {});
  ASSERT_TRUE(e.ok());
  rapidjson::Document d = ParseJson(e->json);
  const auto& data = d["outputs"][0]["data"];
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(static_cast<float>(data[i].GetDouble()), f[i]) << i;
  }
  EXPECT_TRUE(std::isnan(data[5].GetDouble()));
  EXPECT_EQ(data[6].GetDouble(), -std::numeric_limits<double>::infinity());
}

TEST(Encode, BinaryOutputsAreRawBytesInOrder) {
  std::vector<float> f = {1, 2};
  std::vector<int32_t> i = {7};
  Tensor s = Tensor::Allocate(DataType::kBytes, Shape{2});
  s.strings() = {"ab", ""};
  serving::InferOutput fo{"f", Make<float>(DataType::kFp32, {2}, f), /*binary_data=*/true};
  serving::InferOutput io{"i", Make<int32_t>(DataType::kInt32, {1}, i), false};
  serving::InferOutput so{"s", s, true};
  auto e = EncodeInferResponse(Response({fo, io, so}), {});
  ASSERT_TRUE(e.ok());
  ASSERT_TRUE(e->has_binary());
  EXPECT_EQ(e->binary_size, 8u + 10u);
  EXPECT_THAT(e->json, HasSubstr("{\"name\":\"f\",\"datatype\":\"FP32\",\"shape\":[2],"
                                 "\"parameters\":{\"binary_data_size\":8}}"));
  EXPECT_THAT(e->json,
              HasSubstr("\"name\":\"i\",\"datatype\":\"INT32\",\"shape\":[1],\"data\":[7]"));
  EXPECT_THAT(e->json, HasSubstr("\"parameters\":{\"binary_data_size\":10}"));
  std::string flat = e->Flatten();
  EXPECT_EQ(flat.substr(0, e->json.size()), e->json);
  EXPECT_EQ(flat.substr(e->json.size()), Raw(f) + Le32(2) + "ab" + Le32(0));
  // The tensor bytes are not copied: the chunk points into the output tensor.
  EXPECT_EQ(e->binary[0].data, fo.data.raw_data());
}

TEST(Encode, AllOutputsBinaryAndForcedBinary) {
  auto all = EncodeInferResponse(Response({{"i", Make<int32_t>(DataType::kInt32, {1}, {7})}}),
                                 {.all_outputs_binary = true});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->binary_size, 4u);
  // FP16/BF16 have no JSON form; invalid UTF-8 cannot be a JSON string: both go binary.
  Tensor s = Tensor::Allocate(DataType::kBytes, Shape{1});
  s.strings() = {"\xff\xfe"};
  auto forced =
      EncodeInferResponse(Response({{"h", Make<uint16_t>(DataType::kFp16, {1}, {0x3c00})},
                                    {"bf", Make<uint16_t>(DataType::kBf16, {1}, {0x3f80})},
                                    {"s", s}}),
                          {});
  ASSERT_TRUE(forced.ok());
  EXPECT_EQ(forced->binary.size(), 3u);
  EXPECT_EQ(forced->Flatten().substr(forced->json.size()),
            Raw(std::vector<uint16_t>{0x3c00, 0x3f80}) + Le32(2) + "\xff\xfe");
  EXPECT_THAT(forced->json, Not(HasSubstr("\"data\"")));
}

TEST(Encode, Utf8Validation) {
  for (const char* bad : {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"}) {
    Tensor s = Tensor::Allocate(DataType::kBytes, Shape{1});
    s.strings() = {bad};
    auto e = EncodeInferResponse(Response({{"s", s}}), {});
    ASSERT_TRUE(e.ok());
    EXPECT_TRUE(e->has_binary()) << bad;
  }
  Tensor good = Tensor::Allocate(DataType::kBytes, Shape{1});
  good.strings() = {"\xf0\x9f\x98\x80 \xe2\x82\xac"};
  auto e = EncodeInferResponse(Response({{"s", good}}), {});
  ASSERT_TRUE(e.ok());
  EXPECT_FALSE(e->has_binary());
}

TEST(Encode, EmptyOutputIsAnInternalError) {
  auto e = EncodeInferResponse(Response({{"x", Tensor()}}), {});
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInternal);
}

TEST(RoundTrip, EncodedBinaryResponseDecodesAsARequest) {
  // The response's binary layout is the request's: re-decoding it as inputs gives the same data.
  std::vector<double> v = {0.5, -1e300};
  auto e = EncodeInferResponse(Response({{"x", Make<double>(DataType::kFp64, {2}, v), true}}), {});
  ASSERT_TRUE(e.ok());
  std::string json = Request(BinaryInput("x", "FP64", "[2]", 16));
  auto d = Decode(json, e->Flatten().substr(e->json.size()));
  ASSERT_TRUE(d.status.ok()) << d.status;
  EXPECT_EQ(Values<double>(d.request.inputs[0].data), v);
}

}  // namespace
}  // namespace flywheel::api::http
