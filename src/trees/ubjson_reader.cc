#include "trees/ubjson_reader.h"

#include <cctype>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status.h"

namespace flywheel::trees {
namespace {

// The binary number a marker introduces; kText for anything else.
NumEncoding BinaryEncoding(char marker) {
  switch (marker) {
    case 'i':
      return NumEncoding::kInt8;
    case 'U':
      return NumEncoding::kUInt8;
    case 'I':
      return NumEncoding::kInt16;
    case 'l':
      return NumEncoding::kInt32;
    case 'L':
      return NumEncoding::kInt64;
    case 'd':
      return NumEncoding::kFloat32;
    case 'D':
      return NumEncoding::kFloat64;
    default:
      return NumEncoding::kText;
  }
}

std::string MarkerName(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (std::isprint(u)) return absl::StrFormat("'%c'", c);
  return absl::StrFormat("0x%02x", u);
}

class UbjsonParser {
 public:
  UbjsonParser(const char* begin, const char* end) : begin_(begin), p_(begin), end_(end) {}

  absl::StatusOr<Value> ParseRoot() {
    FW_ASSIGN_OR_RETURN(Value root, ParseValue(0));
    while (p_ < end_ && *p_ == 'N') ++p_;
    if (p_ != end_) return Error("unexpected bytes after the end of the document");
    return root;
  }

 private:
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid UBJSON at byte ", p_ - begin_, ": ", what));
  }
  size_t Left() const { return static_cast<size_t>(end_ - p_); }

  absl::StatusOr<char> Next(absl::string_view what) {
    if (p_ >= end_) return Error(absl::StrCat("file ends where ", what, " was expected"));
    return *p_++;
  }

  // A value introduced by its own marker; no-op markers before it are skipped.
  absl::StatusOr<Value> ParseValue(int depth) {
    char marker;
    do {
      FW_ASSIGN_OR_RETURN(marker, Next("a value"));
    } while (marker == 'N');
    return ParseTyped(marker, depth);
  }

  absl::StatusOr<Value> ParseTyped(char marker, int depth) {
    const NumEncoding enc = BinaryEncoding(marker);
    if (enc != NumEncoding::kText) {
      const size_t size = NumEncodingSize(enc);
      if (Left() < size)
        return Error(absl::StrCat("file ends inside a ", MarkerName(marker), " number"));
      NumberRef n{enc, p_, static_cast<uint32_t>(size)};
      p_ += size;
      return Value::Number(n);
    }
    switch (marker) {
      case 'Z':
        return Value::Null();
      case 'T':
        return Value::Bool(true);
      case 'F':
        return Value::Bool(false);
      case 'C': {
        if (Left() < 1) return Error("file ends inside a char");
        return Value::String(absl::string_view(p_++, 1));
      }
      case 'S':
      case 'H': {
        FW_ASSIGN_OR_RETURN(absl::string_view s, ReadSized(marker == 'S' ? "string" : "number"));
        if (marker == 'S') return Value::String(s);
        if (s.size() >= (size_t{1} << 32)) return Error("high-precision number too long");
        return Value::Number(
            NumberRef{NumEncoding::kText, s.data(), static_cast<uint32_t>(s.size())});
      }
      case '[':
        return ParseArray(depth + 1);
      case '{':
        return ParseObject(depth + 1);
      default:
        p_--;
        return Error(absl::StrCat("unknown type marker ", MarkerName(marker)));
    }
  }

  // A length: an integer with its own marker, never negative.
  absl::StatusOr<int64_t> ReadLength(absl::string_view what) {
    FW_ASSIGN_OR_RETURN(char marker, Next(absl::StrCat("the length of a ", what)));
    const NumEncoding enc = BinaryEncoding(marker);
    if (enc == NumEncoding::kText || enc == NumEncoding::kFloat32 || enc == NumEncoding::kFloat64) {
      p_--;
      return Error(absl::StrCat("the length of a ", what, " must be an integer, got marker ",
                                MarkerName(marker)));
    }
    const size_t size = NumEncodingSize(enc);
    if (Left() < size) return Error(absl::StrCat("file ends inside the length of a ", what));
    auto n = NumberRef{enc, p_, static_cast<uint32_t>(size)}.ToInt64();
    p_ += size;
    if (!n.ok() || *n < 0) return Error(absl::StrCat("negative length for a ", what));
    return *n;
  }

  absl::StatusOr<absl::string_view> ReadSized(absl::string_view what) {
    FW_ASSIGN_OR_RETURN(int64_t n, ReadLength(what));
    if (static_cast<uint64_t>(n) > Left()) {
      return Error(absl::StrCat("a ", what, " of ", n, " bytes runs past the end of the file (",
                                Left(), " bytes left)"));
    }
    absl::string_view s(p_, static_cast<size_t>(n));
    p_ += n;
    return s;
  }

  // The optional '$' type and '#' count after '[' or '{'. count is -1 when absent.
  absl::Status ReadContainerHeader(absl::string_view what, char* type, int64_t* count) {
    *type = 0;
    *count = -1;
    if (p_ < end_ && *p_ == '$') {
      ++p_;
      FW_ASSIGN_OR_RETURN(*type, Next(absl::StrCat("the element type of an ", what)));
      if (p_ >= end_ || *p_ != '#') {
        return Error(absl::StrCat("a typed ", what, " must give a count ('#')"));
      }
    }
    if (p_ < end_ && *p_ == '#') {
      ++p_;
      FW_ASSIGN_OR_RETURN(*count, ReadLength(absl::StrCat(what, " count")));
    }
    if (*type != 0) {
      // Elements of these types take no bytes, so a count would be unbounded by the file size.
      if (*type == 'Z' || *type == 'T' || *type == 'F' || *type == 'N') {
        return Error(
            absl::StrCat("typed ", what, " of ", MarkerName(*type), " elements is not supported"));
      }
      const int size = NumEncodingSize(BinaryEncoding(*type));
      const uint64_t min_bytes = static_cast<uint64_t>(*count) * (size > 0 ? size : 1);
      if (static_cast<uint64_t>(*count) > Left() || min_bytes > Left()) {
        return Error(absl::StrCat("an ", what, " of ", *count, " ", MarkerName(*type),
                                  " elements runs past the end of the file"));
      }
    } else if (*count > static_cast<int64_t>(Left())) {
      return Error(
          absl::StrCat("an ", what, " of ", *count, " elements runs past the end of the file"));
    }
    return absl::OkStatus();
  }

  absl::Status CheckDepth(int depth) const {
    if (depth > kMaxDocDepth) {
      return Error(absl::StrCat("nesting deeper than ", kMaxDocDepth, " levels"));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Value> ParseArray(int depth) {
    FW_RETURN_IF_ERROR(CheckDepth(depth));
    char type;
    int64_t count;
    FW_RETURN_IF_ERROR(ReadContainerHeader("array", &type, &count));
    const NumEncoding enc = BinaryEncoding(type);
    if (type != 0 && enc != NumEncoding::kText) {
      const char* data = p_;
      p_ += count * NumEncodingSize(enc);
      return Value::PackedNumbers(enc, data, static_cast<size_t>(count));
    }
    std::vector<Value> items;
    if (count >= 0) {
      items.reserve(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        if (type != 0) {
          FW_ASSIGN_OR_RETURN(Value v, ParseTyped(type, depth));
          items.push_back(std::move(v));
        } else {
          FW_ASSIGN_OR_RETURN(Value v, ParseValue(depth));
          items.push_back(std::move(v));
        }
      }
      return Value::Array(std::move(items));
    }
    while (true) {
      if (p_ >= end_) return Error("file ends inside an array (no ']')");
      if (*p_ == ']') {
        ++p_;
        return Value::Array(std::move(items));
      }
      if (*p_ == 'N') {
        ++p_;
        continue;
      }
      FW_ASSIGN_OR_RETURN(Value v, ParseValue(depth));
      items.push_back(std::move(v));
    }
  }

  absl::StatusOr<Value> ParseObject(int depth) {
    FW_RETURN_IF_ERROR(CheckDepth(depth));
    char type;
    int64_t count;
    FW_RETURN_IF_ERROR(ReadContainerHeader("object", &type, &count));
    std::vector<Value::Member> members;
    for (int64_t i = 0; count < 0 || i < count; ++i) {
      if (count < 0) {
        while (p_ < end_ && *p_ == 'N') ++p_;
        if (p_ >= end_) return Error("file ends inside an object (no '}')");
        if (*p_ == '}') {
          ++p_;
          break;
        }
      }
      FW_ASSIGN_OR_RETURN(absl::string_view key, ReadSized("key"));
      Value v;
      if (type != 0) {
        FW_ASSIGN_OR_RETURN(v, ParseTyped(type, depth));
      } else {
        FW_ASSIGN_OR_RETURN(v, ParseValue(depth));
      }
      members.emplace_back(key, std::move(v));
    }
    return Value::Object(std::move(members));
  }

  const char* begin_;
  const char* p_;
  const char* end_;
};

}  // namespace

absl::StatusOr<ModelDoc> ParseUbjsonDoc(std::string bytes) {
  auto owned = std::make_unique<std::string>(std::move(bytes));
  UbjsonParser parser(owned->data(), owned->data() + owned->size());
  FW_ASSIGN_OR_RETURN(Value root, parser.ParseRoot());
  return ModelDoc(std::move(owned), std::move(root));
}

}  // namespace flywheel::trees
