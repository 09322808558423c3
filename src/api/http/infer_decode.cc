// Decoding of KServe v2 inference requests (JSON + binary tensor extension); see infer_codec.h.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "api/http/infer_codec.h"
#include "api/http/json_tensor.h"
#include "core/status.h"
#include "rapidjson/document.h"

namespace flywheel::api::http {
namespace {

namespace rj = rapidjson;
using Json = rj::Value;

template <typename... Args>
absl::Status Invalid(const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(args...));
}

absl::string_view StringOf(const Json& v) { return {v.GetString(), v.GetStringLength()}; }

absl::StatusOr<serving::ParameterValue> ParameterFromJson(const Json& v, absl::string_view where,
                                                          absl::string_view key) {
  if (v.IsBool()) return serving::ParameterValue(v.GetBool());
  if (v.IsInt64()) return serving::ParameterValue(v.GetInt64());
  if (v.IsUint64()) {
    return Invalid(where, "parameter '", key, "' is ", v.GetUint64(), ", above the INT64 range");
  }
  if (v.IsNumber()) return serving::ParameterValue(v.GetDouble());
  if (v.IsString()) return serving::ParameterValue(std::string(StringOf(v)));
  return Invalid(where, "parameter '", key, "' must be a boolean, number or string, got ",
                 JsonTypeName(v));
}

absl::Status DecodeParameters(const Json& v, absl::string_view where, serving::Parameters* out) {
  if (!v.IsObject()) {
    return Invalid(where, "'parameters' must be a JSON object, got ", JsonTypeName(v));
  }
  for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
    absl::string_view key = StringOf(it->name);
    FW_ASSIGN_OR_RETURN(serving::ParameterValue value, ParameterFromJson(it->value, where, key));
    (*out)[std::string(key)] = std::move(value);
  }
  return absl::OkStatus();
}

// Removes `key` from `params` and returns it as a non-negative integer, if present.
absl::StatusOr<std::optional<uint64_t>> TakeUnsigned(serving::Parameters& params,
                                                     const std::string& key,
                                                     absl::string_view where) {
  auto it = params.find(key);
  if (it == params.end()) return std::optional<uint64_t>();
  const int64_t* value = std::get_if<int64_t>(&it->second);
  if (value == nullptr || *value < 0) {
    return Invalid(where, "parameter '", key, "' must be a non-negative integer");
  }
  uint64_t result = static_cast<uint64_t>(*value);
  params.erase(it);
  return std::optional<uint64_t>(result);
}

absl::StatusOr<std::optional<bool>> TakeBool(serving::Parameters& params, const std::string& key,
                                             absl::string_view where) {
  auto it = params.find(key);
  if (it == params.end()) return std::optional<bool>();
  const bool* value = std::get_if<bool>(&it->second);
  if (value == nullptr) return Invalid(where, "parameter '", key, "' must be a boolean");
  bool result = *value;
  params.erase(it);
  return std::optional<bool>(result);
}

absl::Status RefuseSharedMemory(const serving::Parameters& params, absl::string_view where) {
  for (const char* key :
       {"shared_memory_region", "shared_memory_byte_size", "shared_memory_offset"}) {
    if (params.count(key)) {
      return absl::UnimplementedError(absl::StrCat(
          where, "parameter '", key,
          "': the shared-memory extension is not supported; send the data in the body"));
    }
  }
  return absl::OkStatus();
}

uint32_t LoadLe32(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
}

// BYTES in the binary extension: per element, a 4-byte little-endian length and the bytes.
absl::StatusOr<Tensor> StringsFromBinary(const char* p, size_t size, const Shape& shape,
                                         absl::string_view what) {
  int64_t n = shape.NumElements();
  // Every element takes at least its 4-byte length; checking first bounds the allocation.
  if (static_cast<uint64_t>(n) > size / 4) {
    return Invalid(what, ": binary_data_size ", size, " is too small for the ", n,
                   " BYTES elements of shape ", shape.ToString(),
                   " (each needs a 4-byte length prefix)");
  }
  Tensor t = Tensor::Allocate(DataType::kBytes, shape);
  std::vector<std::string>& strings = t.strings();
  size_t left = size;
  for (int64_t i = 0; i < n; ++i) {
    if (left < 4) {
      return Invalid(what, ": BYTES element ", i, ": its 4-byte length prefix is truncated");
    }
    uint32_t len = LoadLe32(p);
    p += 4;
    left -= 4;
    if (len > left) {
      return Invalid(what, ": BYTES element ", i, " claims ", len, " bytes but only ", left,
                     " remain in its binary data");
    }
    strings[i].assign(p, len);
    p += len;
    left -= len;
  }
  if (left != 0) {
    return Invalid(what, ": ", left, " bytes remain after the last of its ", n,
                   " BYTES elements (binary_data_size is ", size, ")");
  }
  return t;
}

// The binary section, consumed in input order.
struct BinaryCursor {
  const char* next;
  size_t left;
  bool has_header;  // whether Inference-Header-Content-Length was given
};

absl::StatusOr<Tensor> TensorFromBinary(BinaryCursor& cursor, uint64_t size, DataType dtype,
                                        const Shape& shape,
                                        const std::shared_ptr<const void>& owner,
                                        absl::string_view what) {
  if (!cursor.has_header) {
    return Invalid(what, ": has parameters.binary_data_size but the request has no ",
                   kInferHeaderLengthHeader, " header");
  }
  if (size > cursor.left) {
    return Invalid(what, ": binary_data_size is ", size, " but only ", cursor.left,
                   " bytes of binary data remain (truncated body?)");
  }
  const char* p = cursor.next;
  cursor.next += size;
  cursor.left -= size;
  if (dtype == DataType::kBytes) return StringsFromBinary(p, size, shape, what);
  size_t expected = static_cast<size_t>(shape.NumElements()) * DataTypeSize(dtype);
  if (size != expected) {
    return Invalid(what, ": binary_data_size is ", size, " but ", DataTypeName(dtype), " ",
                   shape.ToString(), " needs ", expected, " bytes");
  }
  if (dtype == DataType::kBool) {
    for (size_t i = 0; i < size; ++i) {
      if (static_cast<unsigned char>(p[i]) > 1) {
        return Invalid(what, ": BOOL element ", i, " is byte ",
                       static_cast<unsigned>(static_cast<unsigned char>(p[i])),
                       "; BOOL elements must be 0 or 1");
      }
    }
  }
  // A view needs the element type's alignment; otherwise copy (one memcpy, no per-element work).
  if (reinterpret_cast<uintptr_t>(p) % DataTypeSize(dtype) == 0) {
    return Tensor::Shared(dtype, shape, owner, const_cast<char*>(p));
  }
  FW_ASSIGN_OR_RETURN(Tensor t, Tensor::SafeAllocate(dtype, shape, what));
  if (size > 0) std::memcpy(t.raw_data(), p, size);
  return t;
}

absl::StatusOr<Shape> ShapeFromJson(const Json* v, absl::string_view what) {
  if (v == nullptr) return Invalid(what, ": missing 'shape'");
  if (!v->IsArray()) return Invalid(what, ": 'shape' must be an array, got ", JsonTypeName(*v));
  Shape::Dims dims;
  for (const Json& d : v->GetArray()) {
    if (!d.IsInt64() || d.GetInt64() < 0) {
      return Invalid(what, ": 'shape' must hold non-negative integers, got ", JsonPreview(d));
    }
    dims.push_back(d.GetInt64());
  }
  return Shape::Checked(dims, what);
}

const Json* Member(const Json& object, const char* key) {
  auto it = object.FindMember(key);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

// Names seen so far, to refuse duplicates. A request has a few inputs and outputs: those are
// compared in place, and only a long list pays for a hash set (one allocation per request less).
class NameSet {
 public:
  // False when the name was already there.
  bool Insert(absl::string_view name) {
    if (!set_.empty() || few_.size() == kFew) {
      if (set_.empty()) set_.insert(few_.begin(), few_.end());
      return set_.insert(name).second;
    }
    if (std::find(few_.begin(), few_.end(), name) != few_.end()) return false;
    few_.push_back(name);
    return true;
  }

 private:
  static constexpr size_t kFew = 8;
  absl::InlinedVector<absl::string_view, kFew> few_;
  absl::flat_hash_set<absl::string_view> set_;
};

absl::Status DecodeInput(const Json& in, size_t index, BinaryCursor& cursor,
                         const std::shared_ptr<const void>& owner, serving::InferInput* out) {
  if (!in.IsObject()) return Invalid("inputs[", index, "] must be an object");
  const Json* name = Member(in, "name");
  if (name == nullptr || !name->IsString()) {
    return Invalid("inputs[", index, "]: missing string 'name'");
  }
  out->name.assign(name->GetString(), name->GetStringLength());
  std::string what = absl::StrCat("input '", out->name, "'");
  FW_ASSIGN_OR_RETURN(Shape shape, ShapeFromJson(Member(in, "shape"), what));
  const Json* datatype = Member(in, "datatype");
  if (datatype == nullptr || !datatype->IsString()) {
    return Invalid(what, ": missing string 'datatype'");
  }
  auto dtype = DataTypeFromName(StringOf(*datatype));
  if (!dtype.ok()) return Invalid(what, ": ", dtype.status().message());
  std::optional<uint64_t> binary_size;
  if (const Json* params = Member(in, "parameters")) {
    const std::string where = what + ": ";
    FW_RETURN_IF_ERROR(DecodeParameters(*params, where, &out->parameters));
    FW_RETURN_IF_ERROR(RefuseSharedMemory(out->parameters, where));
    FW_ASSIGN_OR_RETURN(binary_size, TakeUnsigned(out->parameters, "binary_data_size", where));
  }
  const Json* data = Member(in, "data");
  if (binary_size.has_value()) {
    if (data != nullptr) return Invalid(what, ": has both 'data' and binary_data_size");
    FW_ASSIGN_OR_RETURN(out->data,
                        TensorFromBinary(cursor, *binary_size, *dtype, shape, owner, what));
    return absl::OkStatus();
  }
  if (data == nullptr) return Invalid(what, ": has neither 'data' nor binary_data_size");
  FW_ASSIGN_OR_RETURN(out->data, TensorFromJson(*data, *dtype, shape, what));
  return absl::OkStatus();
}

absl::Status DecodeOutput(const Json& o, size_t index, bool binary_default,
                          serving::RequestedOutput* out) {
  if (!o.IsObject()) return Invalid("outputs[", index, "] must be an object");
  const Json* name = Member(o, "name");
  if (name == nullptr || !name->IsString()) {
    return Invalid("outputs[", index, "]: missing string 'name'");
  }
  out->name.assign(name->GetString(), name->GetStringLength());
  std::string where = absl::StrCat("output '", out->name, "': ");
  out->binary_data = binary_default;
  if (const Json* params = Member(o, "parameters")) {
    FW_RETURN_IF_ERROR(DecodeParameters(*params, where, &out->parameters));
    FW_RETURN_IF_ERROR(RefuseSharedMemory(out->parameters, where));
    if (out->parameters.count("classification")) {
      return absl::UnimplementedError(absl::StrCat(
          where, "the classification extension is not supported; request the raw output"));
    }
    FW_ASSIGN_OR_RETURN(std::optional<bool> binary,
                        TakeBool(out->parameters, "binary_data", where));
    if (binary.has_value()) out->binary_data = *binary;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<size_t> ParseInferHeaderLength(absl::string_view value, size_t body_size) {
  uint64_t n = 0;
  absl::string_view trimmed = absl::StripAsciiWhitespace(value);
  if (trimmed.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(trimmed[0])) ||
      !absl::SimpleAtoi(trimmed, &n)) {
    return Invalid(kInferHeaderLengthHeader, " must be a non-negative integer, got '", value, "'");
  }
  if (n > body_size) {
    return Invalid(kInferHeaderLengthHeader, " is ", n, " but the body has only ", body_size,
                   " bytes");
  }
  return static_cast<size_t>(n);
}

absl::Status DecodeInferRequest(const char* body, size_t body_size, std::optional<size_t> json_size,
                                std::shared_ptr<const void> owner, serving::InferRequest* request,
                                InferEncodeOptions* options) {
  size_t header_size = json_size.value_or(body_size);
  if (header_size > body_size) {
    return Invalid(kInferHeaderLengthHeader, " is ", header_size, " but the body has only ",
                   body_size, " bytes");
  }
  if (header_size == 0) return Invalid("the request body has no JSON");
  // The parsed values live in a per-thread buffer (the document dies before this returns); a
  // request larger than it spills into heap chunks that the pool frees.
  thread_local char value_buffer[16 << 10];
  rj::MemoryPoolAllocator<> values(value_buffer, sizeof(value_buffer));
  rj::Document doc(&values);
  FW_RETURN_IF_ERROR(ParseJson(body, header_size, &doc));
  if (!doc.IsObject()) {
    return Invalid("the request body must be a JSON object, got ", JsonTypeName(doc));
  }
  if (const Json* id = Member(doc, "id")) {
    if (!id->IsString()) return Invalid("'id' must be a string, got ", JsonTypeName(*id));
    request->id.assign(id->GetString(), id->GetStringLength());
  }
  bool binary_output = false;
  if (const Json* params = Member(doc, "parameters")) {
    FW_RETURN_IF_ERROR(DecodeParameters(*params, "", &request->parameters));
    FW_ASSIGN_OR_RETURN(std::optional<uint64_t> priority,
                        TakeUnsigned(request->parameters, "priority", ""));
    if (priority.has_value()) {
      if (*priority > std::numeric_limits<uint32_t>::max()) {
        return Invalid("parameter 'priority' is ", *priority, ", above the UINT32 range");
      }
      request->priority = static_cast<uint32_t>(*priority);
    }
    FW_ASSIGN_OR_RETURN(std::optional<uint64_t> timeout,
                        TakeUnsigned(request->parameters, "timeout", ""));
    if (timeout.has_value()) request->timeout_us = *timeout;
    FW_ASSIGN_OR_RETURN(std::optional<bool> binary,
                        TakeBool(request->parameters, "binary_data_output", ""));
    binary_output = binary.value_or(false);
  }
  const Json* inputs = Member(doc, "inputs");
  if (inputs == nullptr || !inputs->IsArray()) {
    return Invalid("the request needs an 'inputs' array",
                   inputs == nullptr ? "" : absl::StrCat(", got ", JsonTypeName(*inputs)));
  }
  BinaryCursor cursor{body + header_size, body_size - header_size, json_size.has_value()};
  request->inputs.resize(inputs->Size());
  NameSet seen;
  for (rj::SizeType i = 0; i < inputs->Size(); ++i) {
    FW_RETURN_IF_ERROR(DecodeInput((*inputs)[i], i, cursor, owner, &request->inputs[i]));
    if (!seen.Insert(request->inputs[i].name)) {
      return Invalid("input '", request->inputs[i].name, "' appears more than once");
    }
  }
  if (cursor.left != 0) {
    return Invalid("the body has ", cursor.left,
                   " bytes of binary data that no input's binary_data_size accounts for");
  }
  if (const Json* outputs = Member(doc, "outputs")) {
    if (!outputs->IsArray()) {
      return Invalid("'outputs' must be an array, got ", JsonTypeName(*outputs));
    }
    request->outputs.resize(outputs->Size());
    NameSet seen_outputs;
    for (rj::SizeType i = 0; i < outputs->Size(); ++i) {
      FW_RETURN_IF_ERROR(DecodeOutput((*outputs)[i], i, binary_output, &request->outputs[i]));
      if (!seen_outputs.Insert(request->outputs[i].name)) {
        return Invalid("output '", request->outputs[i].name, "' is requested more than once");
      }
    }
  }
  options->all_outputs_binary = binary_output && request->outputs.empty();
  request->body = std::move(owner);
  return absl::OkStatus();
}

}  // namespace flywheel::api::http
