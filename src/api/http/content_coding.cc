#include "api/http/content_coding.h"

#include <zlib.h>

#include <algorithm>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace flywheel::api::http {

absl::StatusOr<ContentCoding> ParseContentCoding(absl::string_view value) {
  absl::string_view v = absl::StripAsciiWhitespace(value);
  if (v.empty() || absl::EqualsIgnoreCase(v, "identity")) return ContentCoding::kIdentity;
  if (absl::EqualsIgnoreCase(v, "gzip") || absl::EqualsIgnoreCase(v, "x-gzip")) {
    return ContentCoding::kGzip;
  }
  if (absl::EqualsIgnoreCase(v, "deflate")) return ContentCoding::kDeflate;
  return absl::UnimplementedError(
      absl::StrCat("Content-Encoding '", value, "' is not supported (use gzip, deflate or none)"));
}

absl::StatusOr<std::shared_ptr<BodyBytes>> Inflate(absl::string_view compressed,
                                                   ContentCoding coding, size_t limit,
                                                   size_t aligned_at) {
  z_stream z{};
  // 15 + 16: gzip wrapper; 15 + 32: detect zlib or gzip. HTTP's "deflate" is zlib-wrapped, but
  // some clients send raw deflate: that is retried below with -15.
  int window = coding == ContentCoding::kGzip ? 15 + 16 : 15 + 32;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (inflateInit2(&z, window) != Z_OK) return absl::InternalError("zlib inflateInit failed");
    // Start from a guess and grow; each step is bounded by the limit.
    auto out = std::make_shared<BodyBytes>(
        std::min(limit, std::max<size_t>(compressed.size() * 4, 4096)), aligned_at);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
    z.avail_in = static_cast<uInt>(compressed.size());
    char chunk[64 << 10];
    int rc;
    for (;;) {
      z.next_out = reinterpret_cast<Bytef*>(chunk);
      z.avail_out = sizeof(chunk);
      rc = inflate(&z, Z_NO_FLUSH);
      size_t produced = sizeof(chunk) - z.avail_out;
      if (out->size() + produced > limit) {
        inflateEnd(&z);
        return absl::ResourceExhaustedError(
            absl::StrCat("the decompressed request body exceeds the limit of ", limit, " bytes"));
      }
      out->Append(chunk, produced);
      // Z_OK: more to come. Anything else ends: the stream's end, a truncated input
      // (Z_BUF_ERROR), corrupt data.
      if (rc != Z_OK) break;
    }
    std::string why = z.msg != nullptr ? absl::StrCat(" (", z.msg, ")") : "";
    size_t trailing = z.avail_in;
    inflateEnd(&z);
    if (rc == Z_STREAM_END && trailing == 0) return out;
    if (rc == Z_STREAM_END) {
      return absl::InvalidArgumentError(
          absl::StrCat(trailing, " bytes follow the end of the compressed body"));
    }
    if (coding == ContentCoding::kDeflate && attempt == 0 && rc == Z_DATA_ERROR) {
      window = -15;
      z = z_stream{};
      continue;
    }
    return absl::InvalidArgumentError(
        absl::StrCat("the ", coding == ContentCoding::kGzip ? "gzip" : "deflate",
                     " request body is corrupt or truncated", why));
  }
  return absl::InvalidArgumentError("the deflate request body is corrupt");
}

}  // namespace flywheel::api::http
