#include "trees/json_reader.h"

#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rapidjson/error/en.h"
#include "rapidjson/reader.h"

namespace flywheel::trees {
namespace {

// Builds Values from SAX events with an explicit stack of open containers.
class DocBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, DocBuilder> {
 public:
  explicit DocBuilder(const char* base) : base_(base) {}

  bool Null() { return Add(Value::Null()); }
  bool Bool(bool b) { return Add(Value::Bool(b)); }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool /*copy*/) {
    // In-situ parsing hands out pointers into the file bytes, which the doc keeps.
    if (!stack_.empty() && !stack_.back().is_object && stack_.back().numbers_only) {
      stack_.back().spans.emplace_back(static_cast<uint32_t>(str - base_), length);
      return true;
    }
    return Add(Value::Number(NumberRef{NumEncoding::kText, str, length}));
  }
  bool String(const char* str, rapidjson::SizeType length, bool /*copy*/) {
    return Add(Value::String(absl::string_view(str, length)));
  }
  bool Key(const char* str, rapidjson::SizeType length, bool /*copy*/) {
    stack_.back().key = absl::string_view(str, length);
    return true;
  }
  bool StartObject() { return Open(true); }
  bool StartArray() { return Open(false); }
  bool EndObject(rapidjson::SizeType /*count*/) {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    return Add(Value::Object(std::move(f.members)));
  }
  bool EndArray(rapidjson::SizeType /*count*/) {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.numbers_only && !f.spans.empty())
      return Add(Value::TextNumbers(base_, std::move(f.spans)));
    return Add(Value::Array(std::move(f.items)));
  }

  const std::string& error() const { return error_; }
  Value TakeRoot() { return std::move(root_); }

 private:
  struct Frame {
    bool is_object = false;
    bool numbers_only = true;  // arrays: every element so far was a number (kept as spans)
    absl::string_view key;
    std::vector<std::pair<uint32_t, uint32_t>> spans;
    std::vector<Value> items;
    std::vector<Value::Member> members;
  };

  bool Open(bool is_object) {
    if (stack_.size() >= static_cast<size_t>(kMaxDocDepth)) {
      error_ = absl::StrCat("nesting deeper than ", kMaxDocDepth, " levels");
      return false;
    }
    stack_.emplace_back();
    stack_.back().is_object = is_object;
    return true;
  }

  bool Add(Value v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return true;
    }
    Frame& top = stack_.back();
    if (top.is_object) {
      top.members.emplace_back(top.key, std::move(v));
      return true;
    }
    if (top.numbers_only) {
      // A non-number joins the array: the numbers so far become ordinary items.
      top.numbers_only = false;
      for (const auto& [offset, length] : top.spans) {
        top.items.push_back(Value::Number(NumberRef{NumEncoding::kText, base_ + offset, length}));
      }
      top.spans.clear();
    }
    top.items.push_back(std::move(v));
    return true;
  }

  const char* base_;
  std::vector<Frame> stack_;
  Value root_;
  std::string error_;
};

}  // namespace

absl::StatusOr<ModelDoc> ParseJsonDoc(std::string bytes) {
  if (bytes.size() >= (size_t{1} << 32)) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON model is ", bytes.size(), " bytes; at most 4 GiB is supported"));
  }
  auto owned = std::make_unique<std::string>(std::move(bytes));
  char* base = owned->data();
  DocBuilder builder(base);
  rapidjson::InsituStringStream stream(base);
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseIterativeFlag |
                              rapidjson::kParseNumbersAsStringsFlag |
                              rapidjson::kParseNanAndInfFlag |
                              rapidjson::kParseValidateEncodingFlag;
  rapidjson::ParseResult result = reader.Parse<kFlags>(stream, builder);
  if (!result) {
    const std::string what =
        builder.error().empty() ? rapidjson::GetParseError_En(result.Code()) : builder.error();
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at byte ", result.Offset(), ": ", what));
  }
  // The in-situ stream stops at a NUL byte; anything after it was never read.
  if (stream.Tell() != owned->size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON at byte ", stream.Tell(), ": unexpected NUL byte"));
  }
  Value root = builder.TakeRoot();
  return ModelDoc(std::move(owned), std::move(root));
}

}  // namespace flywheel::trees
