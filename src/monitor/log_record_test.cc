#include "monitor/log_record.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "monitor/log_files.h"
#include "monitor/log_sampler.h"
#include "monitor/log_test_util.h"
#include "rapidjson/document.h"

namespace flywheel::monitor {
namespace {

using testing_util::Fp32;

template <typename T>
Tensor Make(DataType dtype, std::initializer_list<T> values) {
  Tensor t = Tensor::Allocate(dtype, Shape{static_cast<int64_t>(values.size())});
  std::memcpy(t.raw_data(), values.begin(), values.size() * sizeof(T));
  return t;
}

TEST(LogRecordTest, ExactLineForASimpleRecord) {
  PredictionRecord r;
  r.request_id = "r\"1\n";
  r.time = absl::FromUnixNanos(1714564800123456789);
  r.model = "rank";
  r.version = 3;
  Tensor x = Tensor::Allocate(DataType::kFp32, Shape{1, 2});
  x.data<float>()[0] = 0.5f;
  x.data<float>()[1] = 0.1f;
  r.inputs.emplace_back("x", x);
  r.outputs.emplace_back("y", Make<int64_t>(DataType::kInt64, {-7}));
  r.parameters["k"] = std::string("v");
  r.parameters["n"] = int64_t{2};
  std::string line;
  AppendRecordJson(r, TensorDataFormat::kArray, &line);
  EXPECT_EQ(line,
            "{\"id\":\"r\\\"1\\n\",\"time\":\"2024-05-01T12:00:00.123456789Z\",\"model\":\"rank\","
            "\"version\":3,\"inputs\":{\"x\":{\"datatype\":\"FP32\",\"shape\":[1,2],\"data\":[0.5,"
            "0.1]}},\"outputs\":{\"y\":{\"datatype\":\"INT64\",\"shape\":[1],\"data\":[-7]}},"
            "\"parameters\":{\"k\":\"v\",\"n\":2}}\n");
  line.clear();
  AppendRecordJson(r, TensorDataFormat::kBase64, &line);
  // 0.5f = 00 00 00 3f, 0.1f = cd cc cc 3d; -7 as eight little-endian bytes.
  EXPECT_NE(
      line.find("\"x\":{\"datatype\":\"FP32\",\"shape\":[1,2],\"data_b64\":\"AAAAP83MzD0=\"}"),
      std::string::npos)
      << line;
  EXPECT_NE(line.find("\"y\":{\"datatype\":\"INT64\",\"shape\":[1],\"data_b64\":\"+f////////8=\"}"),
            std::string::npos)
      << line;
}

TEST(LogRecordTest, EveryDatatypeRoundTripsThroughJson) {
  PredictionRecord r;
  r.model = "m";
  r.inputs.emplace_back("bool", Make<bool>(DataType::kBool, {true, false}));
  r.inputs.emplace_back("u8", Make<uint8_t>(DataType::kUint8, {0, 255}));
  r.inputs.emplace_back("u16", Make<uint16_t>(DataType::kUint16, {65535}));
  r.inputs.emplace_back("u32", Make<uint32_t>(DataType::kUint32, {4294967295u}));
  r.inputs.emplace_back("u64",
                        Make<uint64_t>(DataType::kUint64, {std::numeric_limits<uint64_t>::max()}));
  r.inputs.emplace_back("i8", Make<int8_t>(DataType::kInt8, {-128, 127}));
  r.inputs.emplace_back("i16", Make<int16_t>(DataType::kInt16, {-32768}));
  r.inputs.emplace_back("i32", Make<int32_t>(DataType::kInt32, {-2147483647 - 1}));
  r.inputs.emplace_back("i64",
                        Make<int64_t>(DataType::kInt64, {std::numeric_limits<int64_t>::min()}));
  // 1.0, -2.0, 65504 (largest half), 2^-24 (smallest subnormal).
  r.inputs.emplace_back("f16", Make<uint16_t>(DataType::kFp16, {0x3c00, 0xc000, 0x7bff, 0x0001}));
  r.inputs.emplace_back("bf16", Make<uint16_t>(DataType::kBf16, {0x3f80, 0xc0a0}));  // 1, -5
  r.outputs.emplace_back("f32", Fp32({0.1f, -1e30f, 3.4028235e38f, 1e-45f}));
  r.outputs.emplace_back("f64", Make<double>(DataType::kFp64, {0.1, -1e300, 5e-324}));
  r.outputs.emplace_back("nonfinite", Fp32({std::nanf(""), std::numeric_limits<float>::infinity(),
                                            -std::numeric_limits<float>::infinity()}));
  Tensor bytes = Tensor::Allocate(DataType::kBytes, Shape{4});
  bytes.strings() = {"hello", "quote\" back\\ nl\n", std::string("\xff\x00\x01", 3), "caf\xc3\xa9"};
  r.outputs.emplace_back("bytes", bytes);
  std::string line;
  AppendRecordJson(r, TensorDataFormat::kArray, &line);
  ASSERT_EQ(line.back(), '\n');

  rapidjson::Document d;
  d.Parse(line.data(), line.size() - 1);
  ASSERT_FALSE(d.HasParseError()) << line;
  const auto& in = d["inputs"];
  const auto& out = d["outputs"];
  auto data = [](const rapidjson::Value& section, const char* name) -> const rapidjson::Value& {
    return section[name]["data"];
  };
  EXPECT_STREQ(in["bool"]["datatype"].GetString(), "BOOL");
  EXPECT_TRUE(data(in, "bool")[0].GetBool());
  EXPECT_FALSE(data(in, "bool")[1].GetBool());
  EXPECT_EQ(data(in, "u8")[1].GetUint(), 255u);
  EXPECT_EQ(data(in, "u16")[0].GetUint(), 65535u);
  EXPECT_EQ(data(in, "u32")[0].GetUint(), 4294967295u);
  EXPECT_EQ(data(in, "u64")[0].GetUint64(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(data(in, "i8")[0].GetInt(), -128);
  EXPECT_EQ(data(in, "i16")[0].GetInt(), -32768);
  EXPECT_EQ(data(in, "i32")[0].GetInt(), -2147483647 - 1);
  EXPECT_EQ(data(in, "i64")[0].GetInt64(), std::numeric_limits<int64_t>::min());
  EXPECT_STREQ(in["f16"]["datatype"].GetString(), "FP16");
  EXPECT_EQ(data(in, "f16")[0].GetDouble(), 1.0);
  EXPECT_EQ(data(in, "f16")[1].GetDouble(), -2.0);
  EXPECT_EQ(data(in, "f16")[2].GetDouble(), 65504.0);
  // Shortest float text ("6e-08"): exact as a float, not as a double.
  EXPECT_EQ(static_cast<float>(data(in, "f16")[3].GetDouble()), std::ldexp(1.0f, -24));
  EXPECT_EQ(data(in, "bf16")[0].GetDouble(), 1.0);
  EXPECT_EQ(data(in, "bf16")[1].GetDouble(), -5.0);
  const float f32[] = {0.1f, -1e30f, 3.4028235e38f, 1e-45f};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(static_cast<float>(data(out, "f32")[i].GetDouble()), f32[i]) << i;
  }
  EXPECT_EQ(data(out, "f64")[0].GetDouble(), 0.1);
  EXPECT_EQ(data(out, "f64")[1].GetDouble(), -1e300);
  EXPECT_EQ(data(out, "f64")[2].GetDouble(), 5e-324);
  EXPECT_STREQ(data(out, "nonfinite")[0].GetString(), "NaN");
  EXPECT_STREQ(data(out, "nonfinite")[1].GetString(), "Infinity");
  EXPECT_STREQ(data(out, "nonfinite")[2].GetString(), "-Infinity");
  const auto& b = data(out, "bytes");
  EXPECT_STREQ(b[0].GetString(), "hello");
  EXPECT_EQ(std::string(b[1].GetString(), b[1].GetStringLength()), "quote\" back\\ nl\n");
  EXPECT_STREQ(b[2]["b64"].GetString(), "/wAB");
  EXPECT_STREQ(b[3].GetString(), "caf\xc3\xa9");
  EXPECT_EQ(out["bytes"]["shape"][0].GetInt(), 4);
}

// A record holding every datatype, with edge values.
PredictionRecord EveryDatatype() {
  PredictionRecord r;
  r.request_id = std::string("id\xff", 3);
  r.time = absl::FromUnixNanos(1714564800123456789);
  r.model = "m";
  r.version = 7;
  r.inputs.emplace_back("bool", Make<bool>(DataType::kBool, {true, false}));
  r.inputs.emplace_back("u8", Make<uint8_t>(DataType::kUint8, {0, 255}));
  r.inputs.emplace_back("u16", Make<uint16_t>(DataType::kUint16, {65535}));
  r.inputs.emplace_back("u32", Make<uint32_t>(DataType::kUint32, {4294967295u}));
  r.inputs.emplace_back("u64",
                        Make<uint64_t>(DataType::kUint64, {std::numeric_limits<uint64_t>::max()}));
  r.inputs.emplace_back("i8", Make<int8_t>(DataType::kInt8, {-128, 127}));
  r.inputs.emplace_back("i16", Make<int16_t>(DataType::kInt16, {-32768}));
  r.inputs.emplace_back("i32", Make<int32_t>(DataType::kInt32, {-2147483647 - 1}));
  r.inputs.emplace_back("i64",
                        Make<int64_t>(DataType::kInt64, {std::numeric_limits<int64_t>::min()}));
  // 1, -2, 65504, 2^-24, -0, +inf, NaN, 0.1 (nearest half)
  r.inputs.emplace_back("f16", Make<uint16_t>(DataType::kFp16, {0x3c00, 0xc000, 0x7bff, 0x0001,
                                                                0x8000, 0x7c00, 0x7e00, 0x2e66}));
  r.inputs.emplace_back("bf16", Make<uint16_t>(DataType::kBf16, {0x3f80, 0xc0a0, 0x3dcd, 0x7fc0}));
  r.outputs.emplace_back("f32", Fp32({0.1f, -1e30f, 3.4028235e38f, 1e-45f, -0.0f, std::nanf(""),
                                      -std::numeric_limits<float>::infinity()}));
  r.outputs.emplace_back("f64", Make<double>(DataType::kFp64, {0.1, -1e300, 5e-324, 1.0 / 3}));
  r.outputs.emplace_back("empty", Tensor::Allocate(DataType::kFp32, Shape{0, 3}));
  Tensor bytes = Tensor::Allocate(DataType::kBytes, Shape{2, 2});
  bytes.strings() = {"hello", "quote\" \\ \n", std::string("\xff\x00\x01", 3), ""};
  r.outputs.emplace_back("bytes", bytes);
  r.features.emplace_back("age", Make<int64_t>(DataType::kInt64, {31}));
  r.parameters["flag"] = true;
  r.parameters["count"] = int64_t{-3};
  r.parameters["ratio"] = 2.0;
  r.parameters["name"] = std::string("two\nlines");
  r.parameters["raw"] = std::string("\xfe", 1);
  return r;
}

void ExpectSameTensors(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(a[i].first);
    EXPECT_EQ(a[i].first, b[i].first);
    const Tensor& x = a[i].second;
    const Tensor& y = b[i].second;
    ASSERT_EQ(x.dtype(), y.dtype());
    ASSERT_EQ(x.shape(), y.shape());
    if (x.dtype() == DataType::kBytes) {
      EXPECT_EQ(x.strings(), y.strings());
    } else if (x.ByteSize() > 0) {
      EXPECT_EQ(std::memcmp(x.raw_data(), y.raw_data(), x.ByteSize()), 0);  // bit for bit
    }
  }
}

TEST(LogRecordTest, ParseGivesBackEveryValueInBothFormats) {
  const PredictionRecord r = EveryDatatype();
  for (TensorDataFormat format : {TensorDataFormat::kBase64, TensorDataFormat::kArray}) {
    SCOPED_TRACE(format == TensorDataFormat::kBase64 ? "base64" : "array");
    std::string line;
    AppendRecordJson(r, format, &line);
    auto back = ParseRecordJson(line);
    ASSERT_TRUE(back.ok()) << back.status() << "\n" << line;
    EXPECT_EQ(back->request_id, r.request_id);
    EXPECT_EQ(back->time, r.time);
    EXPECT_EQ(back->model, r.model);
    EXPECT_EQ(back->version, r.version);
    ExpectSameTensors(back->inputs, r.inputs);
    ExpectSameTensors(back->outputs, r.outputs);
    ExpectSameTensors(back->features, r.features);
    EXPECT_EQ(back->parameters, r.parameters);
    // Written again, the line is the same.
    std::string again;
    AppendRecordJson(*back, format, &again);
    EXPECT_EQ(again, line);
  }
}

// Base64 of UINT8 data of every length around the encoder's 6-byte steps, against a plain
// one-character-at-a-time reference (RFC 4648 with padding), and back through the parser.
TEST(LogRecordTest, Base64OfEveryLengthMatchesTheReference) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint32_t seed = 12345;
  for (int64_t n = 1; n <= 64; ++n) {
    SCOPED_TRACE(n);
    Tensor t = Tensor::Allocate(DataType::kUint8, Shape{n});
    std::string bits;
    for (int64_t i = 0; i < n; ++i) {
      seed = seed * 1664525u + 1013904223u;
      t.data<uint8_t>()[i] = static_cast<uint8_t>(seed >> 24);
      for (int b = 7; b >= 0; --b) bits.push_back(((seed >> 24) >> b) & 1 ? '1' : '0');
    }
    std::string expected;
    for (size_t i = 0; i < bits.size(); i += 6) {
      std::string six = bits.substr(i, 6);
      six.resize(6, '0');
      expected.push_back(kAlphabet[std::stoi(six, nullptr, 2)]);
    }
    while (expected.size() % 4 != 0) expected.push_back('=');
    PredictionRecord r;
    r.model = "m";
    r.version = 1;
    r.inputs.emplace_back("x", std::move(t));
    std::string line;
    AppendRecordJson(r, TensorDataFormat::kBase64, &line);
    EXPECT_NE(line.find("\"data_b64\":\"" + expected + "\""), std::string::npos) << line;
    auto back = ParseRecordJson(line);
    ASSERT_TRUE(back.ok()) << back.status();
    ExpectSameTensors(back->inputs, r.inputs);
  }
}

TEST(LogRecordTest, ArrayTextRoundsToHalfAndBfloat) {
  PredictionRecord r;
  r.model = "m";
  r.inputs.emplace_back("x", Fp32({0}));
  std::string line;
  AppendRecordJson(r, TensorDataFormat::kArray, &line);
  // 0.1 is not a half: it reads back as the nearest half (0x2e66) and bfloat (0x3dcd).
  for (auto [dtype, expected] : {std::pair{"FP16", 0x2e66}, std::pair{"BF16", 0x3dcd}}) {
    std::string text = line;
    text.replace(text.find("FP32"), 4, dtype);
    text.replace(text.find("[0]"), 3, "[0.1]");
    auto back = ParseRecordJson(text);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->inputs[0].second.data<uint16_t>()[0], expected) << dtype;
  }
}

TEST(LogRecordTest, ParseErrorsNameTheField) {
  const std::string ok =
      "{\"id\":\"a\",\"time\":\"2024-05-01T12:00:00.000000000Z\",\"model\":\"m\",\"version\":1,"
      "\"inputs\":{\"x\":{\"datatype\":\"UINT8\",\"shape\":[2],\"data\":[1,2]}},\"outputs\":{}}";
  ASSERT_TRUE(ParseRecordJson(ok).ok()) << ParseRecordJson(ok).status();
  auto error = [&](const std::string& from, const std::string& to) {
    std::string bad = ok;
    bad.replace(bad.find(from), from.size(), to);
    auto r = ParseRecordJson(bad);
    EXPECT_FALSE(r.ok()) << bad;
    return std::string(r.status().message());
  };
  EXPECT_NE(error("[1,2]", "[1,300]").find("inputs.x"), std::string::npos);
  EXPECT_NE(error("[1,2]", "[1]").find("needs 2"), std::string::npos);
  EXPECT_NE(error("\"data\":[1,2]", "\"data_b64\":\"AQ==\"").find("needs 2"), std::string::npos);
  EXPECT_NE(error("UINT8", "UINT9").find("inputs.x"), std::string::npos);
  EXPECT_NE(error("\"time\"", "\"tim\"").find("time"), std::string::npos);
  EXPECT_NE(error("[2]", "[-2]").find("inputs.x"), std::string::npos);
  EXPECT_NE(error("\"version\":1", "\"version\":\"1\"").find("version"), std::string::npos);
  EXPECT_NE(error("}}", "}").find("not JSON"), std::string::npos);
}

TEST(LogRecordTest, NonUtf8IdIsBase64AndNamesStayStrings) {
  PredictionRecord r;
  r.request_id = "\xc0\xaf";  // an overlong '/', not UTF-8
  r.model = "m\xff";
  r.inputs.emplace_back("x\xfe", Fp32({1}));
  std::string line;
  AppendRecordJson(r, TensorDataFormat::kBase64, &line);
  rapidjson::Document d;
  d.Parse(line.data(), line.size());
  ASSERT_FALSE(d.HasParseError()) << line;
  EXPECT_STREQ(d["id"]["b64"].GetString(), "wK8=");
  EXPECT_STREQ(d["model"].GetString(), "m?");
  EXPECT_TRUE(d["inputs"].HasMember("x?"));
}

TEST(LogRecordTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac \xf0\x9f\x98\x80"));  // euro sign, emoji
  EXPECT_FALSE(IsValidUtf8("\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // cut short
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // a UTF-16 surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
}

TEST(LogRecordTest, TimesFormatAndParse) {
  const absl::Time t = absl::FromUnixNanos(1714564800123456789);
  EXPECT_EQ(FormatLogTime(t), "2024-05-01T12:00:00.123456789Z");
  EXPECT_EQ(FormatLogTime(absl::FromUnixNanos(-1)), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(FormatLogTime(absl::FromUnixSeconds(951782400)), "2000-02-29T00:00:00.000000000Z");
  for (int64_t ns : {int64_t{0}, int64_t{-1}, int64_t{951782400} * 1000000000 + 5,
                     int64_t{4102444799} * 1000000000 + 999999999}) {
    const absl::Time u = absl::FromUnixNanos(ns);
    auto parsed = ParseLogTime(FormatLogTime(u));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, u) << FormatLogTime(u);
  }
  auto offset = ParseLogTime("2024-05-01T14:00:00.5+02:00");
  ASSERT_TRUE(offset.ok()) << offset.status();
  EXPECT_EQ(*offset, absl::FromUnixSeconds(1714564800) + absl::Milliseconds(500));
  EXPECT_FALSE(ParseLogTime("2023-02-29T00:00:00.000000000Z").ok());
  EXPECT_FALSE(ParseLogTime("2024-13-01T00:00:00.000000000Z").ok());
  EXPECT_FALSE(ParseLogTime("yesterday").ok());
}

TEST(LogFilesTest, ModelFolderNamesAreSafeAndReversible) {
  EXPECT_EQ(EscapeModelDir("rank_v2-a.b"), "rank_v2-a.b");
  EXPECT_EQ(EscapeModelDir("../x"), "%2E.%2Fx");
  EXPECT_EQ(EscapeModelDir("a b"), "a%20b");
  const std::string odd("..\x00/\xff%", 6);
  EXPECT_EQ(UnescapeModelDir(EscapeModelDir(odd)), odd);
  EXPECT_EQ(UnescapeModelDir("rank"), "rank");
  EXPECT_FALSE(UnescapeModelDir("a b").has_value());
  EXPECT_FALSE(UnescapeModelDir("..").has_value());
  EXPECT_FALSE(UnescapeModelDir("%2").has_value());
  EXPECT_FALSE(UnescapeModelDir("").has_value());
}

TEST(LogFilesTest, FileNamesRoundTripAndSortByTime) {
  const absl::Time t = absl::FromUnixNanos(1714564800123456789);
  EXPECT_EQ(LogFileName(t, 3), "20240501T120000.123456789Z-000003.jsonl.zst");
  auto info = ParseLogFileName(LogFileName(t, 3));
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->start, t);
  EXPECT_EQ(info->seq, 3);
  EXPECT_LT(LogFileName(t, 9), LogFileName(t, 10));
  EXPECT_LT(LogFileName(t, 999), LogFileName(t + absl::Nanoseconds(1), 0));
  EXPECT_FALSE(ParseLogFileName("20240501T120000.123456789Z-000003.jsonl").has_value());
  EXPECT_FALSE(ParseLogFileName("notes.txt").has_value());
  EXPECT_FALSE(ParseLogFileName("20240501T120000.123456789Z-00x003.jsonl.zst").has_value());
}

TEST(LogSamplerTest, RatesZeroAndOneAndClamping) {
  LogSampler none(0), all(1), below(-3), above(7), nan(std::nan(""));
  for (int i = 0; i < 100; ++i) {
    const std::string id = "id" + std::to_string(i);
    EXPECT_FALSE(none.Sample(id));
    EXPECT_FALSE(none.Sample(""));
    EXPECT_TRUE(all.Sample(id));
    EXPECT_TRUE(all.Sample(""));
    EXPECT_FALSE(below.Sample(id));
    EXPECT_TRUE(above.Sample(""));
    EXPECT_FALSE(nan.Sample(""));
  }
  EXPECT_EQ(above.rate(), 1.0);
}

TEST(LogSamplerTest, RequestsWithoutIdKeepExactlyTheRate) {
  LogSampler quarter(0.25);
  int kept = 0;
  for (int i = 0; i < 1000; ++i) kept += quarter.Sample("") ? 1 : 0;
  EXPECT_EQ(kept, 250);
}

TEST(LogSamplerTest, IdsDecideTheSameEverywhere) {
  LogSampler a(0.1), b(0.1);
  int kept = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string id = "request-" + std::to_string(i);
    const bool keep = a.Sample(id);
    EXPECT_EQ(keep, b.Sample(id));
    EXPECT_EQ(keep, a.Sample(id));  // asking again changes nothing
    kept += keep ? 1 : 0;
  }
  // A fixed hash over fixed ids: this count never changes; it is near 10% as a hash should be.
  EXPECT_GT(kept, 1800);
  EXPECT_LT(kept, 2200);
  // A lower rate keeps a subset of what a higher rate keeps.
  LogSampler half(0.5);
  for (int i = 0; i < 1000; ++i) {
    const std::string id = "request-" + std::to_string(i);
    if (a.Sample(id)) {
      EXPECT_TRUE(half.Sample(id)) << id;
    }
  }
}

}  // namespace
}  // namespace flywheel::monitor
