#include "trees/json_reader.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status.h"

namespace flywheel::trees {
namespace {

// A strict JSON (RFC 8259) reader over a buffer it owns: strings are unescaped in place, numbers
// stay text spans. Own code rather than RapidJSON: RapidJSON 1.1's reader does pointer arithmetic
// on a null stack on its first push, which the sanitizers of the fuzz build reject.
class JsonParser {
 public:
  JsonParser(char* begin, size_t size) : begin_(begin), p_(begin), end_(begin + size) {}

  absl::StatusOr<Value> ParseRoot() {
    SkipSpace();
    FW_ASSIGN_OR_RETURN(Value root, ParseValue(0));
    SkipSpace();
    if (p_ != end_) return Error("unexpected text after the end of the document");
    return root;
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at byte ", p_ - begin_, ": ", what));
  }

  void SkipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  bool Consume(absl::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        absl::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  absl::StatusOr<Value> ParseValue(int depth) {
    if (p_ >= end_) return Error("the document ends where a value was expected");
    switch (*p_) {
      case '{':
        return ParseObject(depth + 1);
      case '[':
        return ParseArray(depth + 1);
      case '"': {
        FW_ASSIGN_OR_RETURN(absl::string_view s, ParseString());
        return Value::String(s);
      }
      case 't':
        if (Consume("true")) return Value::Bool(true);
        break;
      case 'f':
        if (Consume("false")) return Value::Bool(false);
        break;
      case 'n':
        if (Consume("null")) return Value::Null();
        break;
      default: {
        char* start = p_;
        if (ScanNumber()) {
          return Value::Number(
              NumberRef{NumEncoding::kText, start, static_cast<uint32_t>(p_ - start)});
        }
        p_ = start;
        break;
      }
    }
    if (static_cast<unsigned char>(*p_) < 0x20 || static_cast<unsigned char>(*p_) >= 0x7f) {
      return Error(absl::StrFormat("unexpected byte 0x%02x", static_cast<unsigned char>(*p_)));
    }
    return Error(absl::StrCat("unexpected character '", absl::string_view(p_, 1), "'"));
  }

  absl::Status CheckDepth(int depth) const {
    if (depth > kMaxDocDepth) {
      return Error(absl::StrCat("nesting deeper than ", kMaxDocDepth, " levels"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Value> ParseObject(int depth) {
    FW_RETURN_IF_ERROR(CheckDepth(depth));
    ++p_;  // '{'
    std::vector<Value::Member> members;
    SkipSpace();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
      return Value::Object(std::move(members));
    }
    while (true) {
      SkipSpace();
      if (p_ >= end_ || *p_ != '"') return Error("expected a string key in an object");
      FW_ASSIGN_OR_RETURN(absl::string_view key, ParseString());
      SkipSpace();
      if (p_ >= end_ || *p_ != ':') return Error("expected ':' after an object key");
      ++p_;
      SkipSpace();
      FW_ASSIGN_OR_RETURN(Value v, ParseValue(depth));
      members.emplace_back(key, std::move(v));
      SkipSpace();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ < end_ && *p_ == '}') {
        ++p_;
        return Value::Object(std::move(members));
      }
      return Error("expected ',' or '}' in an object");
    }
  }

  // Arrays holding only numbers are kept as spans: a forest's arrays cost 8 bytes a number.
  absl::StatusOr<Value> ParseArray(int depth) {
    FW_RETURN_IF_ERROR(CheckDepth(depth));
    ++p_;  // '['
    std::vector<std::pair<uint32_t, uint32_t>> spans;
    std::vector<Value> items;
    bool numbers_only = true;
    SkipSpace();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
      return Value::Array(std::move(items));
    }
    while (true) {
      SkipSpace();
      char* start = p_;
      if (numbers_only && ScanNumber()) {
        spans.emplace_back(static_cast<uint32_t>(start - begin_),
                           static_cast<uint32_t>(p_ - start));
      } else {
        p_ = start;
        if (numbers_only) {
          numbers_only = false;
          for (const auto& [offset, length] : spans) {
            items.push_back(Value::Number(NumberRef{NumEncoding::kText, begin_ + offset, length}));
          }
          spans.clear();
        }
        FW_ASSIGN_OR_RETURN(Value v, ParseValue(depth));
        items.push_back(std::move(v));
      }
      SkipSpace();
      if (p_ < end_ && *p_ == ',') {
        ++p_;
        continue;
      }
      if (p_ < end_ && *p_ == ']') {
        ++p_;
        if (numbers_only) return Value::TextNumbers(begin_, std::move(spans));
        return Value::Array(std::move(items));
      }
      return Error("expected ',' or ']' in an array");
    }
  }

  // A JSON number, or NaN / Infinity / -Infinity as XGBoost and Python write them. Advances past
  // it and returns true, or returns false (position unspecified).
  bool ScanNumber() {
    if (Consume("NaN") || Consume("Infinity") || Consume("-Infinity")) return true;
    auto digit = [&] { return p_ < end_ && *p_ >= '0' && *p_ <= '9'; };
    if (p_ < end_ && *p_ == '-') ++p_;
    if (!digit()) return false;
    if (*p_ == '0') {
      ++p_;
    } else {
      while (digit()) ++p_;
    }
    if (p_ < end_ && *p_ == '.') {
      ++p_;
      if (!digit()) return false;
      while (digit()) ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digit()) return false;
      while (digit()) ++p_;
    }
    return true;
  }

  int Hex4(const char* s) const {
    int v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s[i];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return -1;
      }
    }
    return v;
  }

  static char* PutUtf8(uint32_t cp, char* out) {
    if (cp < 0x80) {
      *out++ = static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out++ = static_cast<char>(0xc0 | (cp >> 6));
      *out++ = static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      *out++ = static_cast<char>(0xe0 | (cp >> 12));
      *out++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out++ = static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *out++ = static_cast<char>(0xf0 | (cp >> 18));
      *out++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      *out++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out++ = static_cast<char>(0x80 | (cp & 0x3f));
    }
    return out;
  }

  // Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0.
  static int Utf8Length(const unsigned char* s, size_t n) {
    const unsigned char c = s[0];
    int len;
    uint32_t min;
    if (c < 0x80) return 1;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      min = 0x10000;
    } else {
      return 0;
    }
    if (n < static_cast<size_t>(len)) return 0;
    uint32_t cp = c & (0x7f >> len);
    for (int i = 1; i < len; ++i) {
      if ((s[i] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
  }

  // A string starting at '"', unescaped in place (the result never grows).
  absl::StatusOr<absl::string_view> ParseString() {
    ++p_;  // '"'
    char* out = p_;
    char* const start = p_;
    while (true) {
      if (p_ >= end_) return Error("the document ends inside a string");
      const unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return absl::string_view(start, static_cast<size_t>(out - start));
      }
      if (c < 0x20) return Error("control character inside a string");
      if (c != '\\') {
        const int len =
            Utf8Length(reinterpret_cast<const unsigned char*>(p_), static_cast<size_t>(end_ - p_));
        if (len == 0) return Error("invalid UTF-8 inside a string");
        for (int i = 0; i < len; ++i) *out++ = *p_++;
        continue;
      }
      if (end_ - p_ < 2) return Error("the document ends inside an escape");
      const char e = p_[1];
      p_ += 2;
      switch (e) {
        case '"':
        case '\\':
        case '/':
          *out++ = e;
          break;
        case 'b':
          *out++ = '\b';
          break;
        case 'f':
          *out++ = '\f';
          break;
        case 'n':
          *out++ = '\n';
          break;
        case 'r':
          *out++ = '\r';
          break;
        case 't':
          *out++ = '\t';
          break;
        case 'u': {
          int cp = end_ - p_ >= 4 ? Hex4(p_) : -1;
          if (cp < 0) return Error("invalid \\u escape");
          p_ += 4;
          if (cp >= 0xd800 && cp <= 0xdbff) {
            // A high surrogate needs its low half: \uDC00-\uDFFF.
            const int lo = end_ - p_ >= 6 && p_[0] == '\\' && p_[1] == 'u' ? Hex4(p_ + 2) : -1;
            if (lo < 0xdc00 || lo > 0xdfff) return Error("unpaired surrogate in a \\u escape");
            p_ += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            return Error("unpaired surrogate in a \\u escape");
          }
          // At most 4 bytes out for at least 6 in: the output never passes the input.
          out = PutUtf8(static_cast<uint32_t>(cp), out);
          break;
        }
        default:
          return Error("invalid escape in a string");
      }
    }
  }

  char* const begin_;
  char* p_;
  char* const end_;
};

}  // namespace

absl::StatusOr<ModelDoc> ParseJsonDoc(std::string bytes) {
  if (bytes.size() >= (size_t{1} << 32)) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON model is ", bytes.size(), " bytes; at most 4 GiB is supported"));
  }
  auto owned = std::make_unique<std::string>(std::move(bytes));
  JsonParser parser(owned->data(), owned->size());
  FW_ASSIGN_OR_RETURN(Value root, parser.ParseRoot());
  return ModelDoc(std::move(owned), std::move(root));
}

}  // namespace flywheel::trees
