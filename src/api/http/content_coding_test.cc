#include "api/http/content_coding.h"

#include <zlib.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flywheel::api::http {
namespace {

using ::testing::HasSubstr;

// Compresses with zlib: window_bits 15 + 16 gzip, 15 zlib, -15 raw deflate.
std::string Compress(const std::string& in, int window_bits) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string Payload() {
  std::string s;
  for (int i = 0; i < 20000; ++i) s += std::to_string(i * 7919 % 1000) + ",";
  return s;
}

TEST(ContentCoding, Parse) {
  EXPECT_EQ(*ParseContentCoding(""), ContentCoding::kIdentity);
  EXPECT_EQ(*ParseContentCoding("identity"), ContentCoding::kIdentity);
  EXPECT_EQ(*ParseContentCoding("GZIP"), ContentCoding::kGzip);
  EXPECT_EQ(*ParseContentCoding("x-gzip"), ContentCoding::kGzip);
  EXPECT_EQ(*ParseContentCoding(" deflate "), ContentCoding::kDeflate);
  auto br = ParseContentCoding("br");
  EXPECT_EQ(br.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(br.status().message()), HasSubstr("'br' is not supported"));
}

TEST(ContentCoding, InflatesGzipZlibAndRawDeflate) {
  std::string text = Payload();
  auto gz = Inflate(Compress(text, 15 + 16), ContentCoding::kGzip, 1 << 20, 0);
  ASSERT_TRUE(gz.ok()) << gz.status();
  EXPECT_EQ((*gz)->view(), text);
  auto zl = Inflate(Compress(text, 15), ContentCoding::kDeflate, 1 << 20, 0);
  ASSERT_TRUE(zl.ok()) << zl.status();
  EXPECT_EQ((*zl)->view(), text);
  auto raw = Inflate(Compress(text, -15), ContentCoding::kDeflate, 1 << 20, 0);
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ((*raw)->view(), text);
  // The binary section after a 10-byte header lands on 64 bytes.
  auto aligned = Inflate(Compress(text, 15 + 16), ContentCoding::kGzip, 1 << 20, 10);
  ASSERT_TRUE(aligned.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*aligned)->data() + 10) % 64, 0u);
}

TEST(ContentCoding, RefusesBombsCorruptionAndTruncation) {
  std::string zeros(10 << 20, '\0');
  std::string bomb = Compress(zeros, 15 + 16);
  ASSERT_LT(bomb.size(), 20000u);
  auto big = Inflate(bomb, ContentCoding::kGzip, 1 << 20, 0);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("limit of 1048576 bytes"));
  std::string gz = Compress(Payload(), 15 + 16);
  auto truncated = Inflate(gz.substr(0, gz.size() / 2), ContentCoding::kGzip, 1 << 20, 0);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(truncated.status().message()), HasSubstr("corrupt or truncated"));
  EXPECT_FALSE(Inflate("not compressed at all", ContentCoding::kGzip, 1 << 20, 0).ok());
  EXPECT_FALSE(Inflate("not compressed at all", ContentCoding::kDeflate, 1 << 20, 0).ok());
  auto trailing = Inflate(gz + "junk", ContentCoding::kGzip, 1 << 20, 0);
  EXPECT_THAT(std::string(trailing.status().message()), HasSubstr("4 bytes follow the end"));
}

}  // namespace
}  // namespace flywheel::api::http
