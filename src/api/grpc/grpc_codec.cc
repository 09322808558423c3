#include "api/grpc/grpc_codec.h"

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status.h"
#include "core/tensor.h"

namespace flywheel::api {
namespace {

using inference::InferParameter;
using inference::InferTensorContents;
using inference::ModelInferRequest;
using serving::ParameterValue;

// The InferTensorContents fields, in proto order; kNone for types that travel only raw.
enum class ContentsField {
  kBool,
  kInt,
  kInt64,
  kUint,
  kUint64,
  kFp32,
  kFp64,
  kBytes,
  kNone,
};
constexpr int kNumContentsFields = 8;

constexpr absl::string_view kContentsFieldNames[kNumContentsFields] = {
    "bool_contents",   "int_contents",  "int64_contents", "uint_contents",
    "uint64_contents", "fp32_contents", "fp64_contents",  "bytes_contents"};

ContentsField FieldFor(DataType type) {
  switch (type) {
    case DataType::kBool:
      return ContentsField::kBool;
    case DataType::kInt8:
    case DataType::kInt16:
    case DataType::kInt32:
      return ContentsField::kInt;
    case DataType::kInt64:
      return ContentsField::kInt64;
    case DataType::kUint8:
    case DataType::kUint16:
    case DataType::kUint32:
      return ContentsField::kUint;
    case DataType::kUint64:
      return ContentsField::kUint64;
    case DataType::kFp32:
      return ContentsField::kFp32;
    case DataType::kFp64:
      return ContentsField::kFp64;
    case DataType::kBytes:
      return ContentsField::kBytes;
    default:
      return ContentsField::kNone;
  }
}

int FieldSize(const InferTensorContents& c, int field) {
  switch (static_cast<ContentsField>(field)) {
    case ContentsField::kBool:
      return c.bool_contents_size();
    case ContentsField::kInt:
      return c.int_contents_size();
    case ContentsField::kInt64:
      return c.int64_contents_size();
    case ContentsField::kUint:
      return c.uint_contents_size();
    case ContentsField::kUint64:
      return c.uint64_contents_size();
    case ContentsField::kFp32:
      return c.fp32_contents_size();
    case ContentsField::kFp64:
      return c.fp64_contents_size();
    case ContentsField::kBytes:
      return c.bytes_contents_size();
    case ContentsField::kNone:
      break;
  }
  return 0;
}

bool HasAnyContents(const InferTensorContents& c) {
  for (int f = 0; f < kNumContentsFields; ++f) {
    if (FieldSize(c, f) > 0) return true;
  }
  return false;
}

absl::StatusOr<ParameterValue> FromProto(const InferParameter& p, absl::string_view what) {
  switch (p.parameter_choice_case()) {
    case InferParameter::kBoolParam:
      return ParameterValue(p.bool_param());
    case InferParameter::kInt64Param:
      return ParameterValue(static_cast<int64_t>(p.int64_param()));
    case InferParameter::kStringParam:
      return ParameterValue(p.string_param());
    case InferParameter::kDoubleParam:
      return ParameterValue(p.double_param());
    case InferParameter::kUint64Param:
      if (p.uint64_param() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": uint64 value ", p.uint64_param(), " is out of range"));
      }
      return ParameterValue(static_cast<int64_t>(p.uint64_param()));
    case InferParameter::PARAMETER_CHOICE_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(what, " has no value"));
}

absl::Status ParametersFromProto(const google::protobuf::Map<std::string, InferParameter>& in,
                                 absl::string_view what, serving::Parameters* out) {
  for (const auto& [key, value] : in) {
    FW_ASSIGN_OR_RETURN(ParameterValue v,
                        FromProto(value, absl::StrCat(what, " parameter '", key, "'")));
    out->emplace(key, std::move(v));
  }
  return absl::OkStatus();
}

void ParametersToProto(const serving::Parameters& in,
                       google::protobuf::Map<std::string, InferParameter>* out) {
  for (const auto& [key, value] : in) {
    InferParameter& p = (*out)[key];
    std::visit(
        [&p](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) {
            p.set_bool_param(v);
          } else if constexpr (std::is_same_v<T, int64_t>) {
            p.set_int64_param(v);
          } else if constexpr (std::is_same_v<T, double>) {
            p.set_double_param(v);
          } else {
            p.set_string_param(v);
          }
        },
        value);
  }
}

// A non-negative integer parameter (priority, timeout).
absl::StatusOr<uint64_t> UnsignedParameter(const InferParameter& p, absl::string_view what) {
  if (p.parameter_choice_case() == InferParameter::kUint64Param) return p.uint64_param();
  if (p.parameter_choice_case() == InferParameter::kInt64Param && p.int64_param() >= 0) {
    return static_cast<uint64_t>(p.int64_param());
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, " must be a non-negative integer (int64_param or uint64_param)"));
}

absl::Status RequestParameters(const ModelInferRequest& m, absl::string_view what,
                               serving::InferRequest* req) {
  for (const auto& [key, value] : m.parameters()) {
    const std::string param_what = absl::StrCat(what, " parameter '", key, "'");
    if (key == "priority") {
      FW_ASSIGN_OR_RETURN(uint64_t priority, UnsignedParameter(value, param_what));
      if (priority > std::numeric_limits<uint32_t>::max()) {
        return absl::InvalidArgumentError(
            absl::StrCat(param_what, ": ", priority, " is out of range"));
      }
      req->priority = static_cast<uint32_t>(priority);
    } else if (key == "timeout") {
      FW_ASSIGN_OR_RETURN(req->timeout_us, UnsignedParameter(value, param_what));
    } else if (key == "binary_data" || key == "binary_data_output") {
      // HTTP's binary tensor extension: gRPC outputs are always raw bytes.
    } else {
      FW_ASSIGN_OR_RETURN(ParameterValue v, FromProto(value, param_what));
      req->parameters.emplace(key, std::move(v));
    }
  }
  return absl::OkStatus();
}

std::string Describe(DataType type, const Shape& shape) {
  return absl::StrCat(DataTypeName(type), " ", shape.ToString());
}

// BYTES in raw form: each element is a 4-byte little-endian length and then the bytes.
absl::StatusOr<Tensor> DecodeRawBytes(const std::string& raw, const Shape& shape,
                                      absl::string_view what) {
  const int64_t expected = shape.NumElements();
  // Each element takes at least its 4-byte length: refuse before allocating that many strings.
  if (expected > static_cast<int64_t>(raw.size() / 4)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: raw_input_contents has %d bytes, too few for %d length-prefixed BYTES elements of "
        "shape %s",
        what, raw.size(), expected, shape.ToString()));
  }
  Tensor t = Tensor::Allocate(DataType::kBytes, shape);
  std::vector<std::string>& strings = t.strings();
  size_t pos = 0;
  for (int64_t i = 0; i < expected; ++i) {
    if (pos == raw.size()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: raw_input_contents holds only %d of the %d BYTES elements of shape %s", what, i,
          expected, shape.ToString()));
    }
    if (raw.size() - pos < 4) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: raw_input_contents ends inside the length of BYTES element %d of %d",
                          what, i, expected));
    }
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data() + pos);
    const uint32_t len = static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
    pos += 4;
    if (raw.size() - pos < len) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: BYTES element %d declares %d bytes but only %d remain in raw_input_contents", what,
          i, len, raw.size() - pos));
    }
    strings[i].assign(raw.data() + pos, len);
    pos += len;
  }
  if (pos != raw.size()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: raw_input_contents has %d bytes after the %d BYTES elements of shape %s", what,
        raw.size() - pos, expected, shape.ToString()));
  }
  return t;
}

absl::StatusOr<Tensor> DecodeRaw(const std::shared_ptr<const ModelInferRequest>& message,
                                 const std::string& raw, DataType type, const Shape& shape,
                                 absl::string_view what) {
  if (type == DataType::kBytes) return DecodeRawBytes(raw, shape, what);
  const size_t elem = DataTypeSize(type);
  const auto expected = static_cast<uint64_t>(shape.NumElements());
  if (raw.size() % elem != 0 || raw.size() / elem != expected) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: raw_input_contents has %d bytes, expected %d elements of %d bytes for %s", what,
        raw.size(), expected, elem, Describe(type, shape)));
  }
  if (type == DataType::kBool) {
    for (char c : raw) {
      if (static_cast<unsigned char>(c) > 1) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, ": BOOL raw_input_contents holds a byte other than 0 or 1"));
      }
    }
  }
  if (expected == 0) return Tensor::Allocate(type, shape);
  // Protobuf strings are heap blocks, so this holds; copy rather than hand kernels a misaligned
  // view if a future allocator breaks it.
  if (reinterpret_cast<uintptr_t>(raw.data()) % elem != 0) {
    Tensor t = Tensor::Allocate(type, shape);
    std::memcpy(t.raw_data(), raw.data(), raw.size());
    return t;
  }
  // The engine never writes its inputs; the view is const in spirit.
  return Tensor::Shared(type, shape, message, const_cast<char*>(raw.data()));
}

template <typename To, typename From>
absl::StatusOr<Tensor> NarrowCopy(const google::protobuf::RepeatedField<From>& values,
                                  DataType type, const Shape& shape, absl::string_view what) {
  Tensor t = Tensor::Allocate(type, shape);
  To* out = t.data<To>();
  for (int i = 0; i < values.size(); ++i) {
    const From v = values.Get(i);
    bool in_range = v <= static_cast<From>(std::numeric_limits<To>::max());
    if constexpr (std::is_signed_v<From>) {
      in_range = in_range && v >= static_cast<From>(std::numeric_limits<To>::min());
    }
    if (!in_range) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": value ", v, " at index ", i,
                                                     " is out of range for ", DataTypeName(type)));
    }
    out[i] = static_cast<To>(v);
  }
  return t;
}

template <typename T>
Tensor ViewField(const std::shared_ptr<const ModelInferRequest>& message,
                 const google::protobuf::RepeatedField<T>& values, DataType type,
                 const Shape& shape) {
  if (values.empty()) return Tensor::Allocate(type, shape);
  return Tensor::Shared(type, shape, message, const_cast<T*>(values.data()));
}

absl::StatusOr<Tensor> DecodeTyped(const std::shared_ptr<const ModelInferRequest>& message,
                                   const InferTensorContents& c, DataType type, const Shape& shape,
                                   absl::string_view what) {
  const ContentsField field = FieldFor(type);
  if (field == ContentsField::kNone) {
    if (shape.NumElements() == 0 && !HasAnyContents(c)) return Tensor::Allocate(type, shape);
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", DataTypeName(type),
                     " has no typed contents field; send the tensor in raw_input_contents"));
  }
  const int index = static_cast<int>(field);
  for (int f = 0; f < kNumContentsFields; ++f) {
    if (f != index && FieldSize(c, f) > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": datatype ", DataTypeName(type), " takes its values in ",
          kContentsFieldNames[index], ", but the request sets ", kContentsFieldNames[f]));
    }
  }
  const int64_t count = FieldSize(c, index);
  if (count != shape.NumElements()) {
    if (count == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": no data; expected ", shape.NumElements(), " values for ", Describe(type, shape),
          " in ", kContentsFieldNames[index], " or raw_input_contents"));
    }
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", kContentsFieldNames[index], " has ",
                                                   count, " values, expected ", shape.NumElements(),
                                                   " for ", Describe(type, shape)));
  }
  switch (type) {
    case DataType::kBool:
      return ViewField(message, c.bool_contents(), type, shape);
    case DataType::kInt8:
      return NarrowCopy<int8_t>(c.int_contents(), type, shape, what);
    case DataType::kInt16:
      return NarrowCopy<int16_t>(c.int_contents(), type, shape, what);
    case DataType::kInt32:
      return ViewField(message, c.int_contents(), type, shape);
    case DataType::kInt64:
      return ViewField(message, c.int64_contents(), type, shape);
    case DataType::kUint8:
      return NarrowCopy<uint8_t>(c.uint_contents(), type, shape, what);
    case DataType::kUint16:
      return NarrowCopy<uint16_t>(c.uint_contents(), type, shape, what);
    case DataType::kUint32:
      return ViewField(message, c.uint_contents(), type, shape);
    case DataType::kUint64:
      return ViewField(message, c.uint64_contents(), type, shape);
    case DataType::kFp32:
      return ViewField(message, c.fp32_contents(), type, shape);
    case DataType::kFp64:
      return ViewField(message, c.fp64_contents(), type, shape);
    case DataType::kBytes: {
      Tensor t = Tensor::Allocate(type, shape);
      std::vector<std::string>& strings = t.strings();
      for (int i = 0; i < c.bytes_contents_size(); ++i) strings[i] = c.bytes_contents(i);
      return t;
    }
    default:
      break;
  }
  return absl::InternalError(absl::StrCat(what, ": unhandled datatype ", DataTypeName(type)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<serving::InferRequest>> DecodeInferRequest(
    std::shared_ptr<const ModelInferRequest> message) {
  const ModelInferRequest& m = *message;
  const std::string model_what = absl::StrCat("model '", m.model_name(), "'");
  auto req = std::make_unique<serving::InferRequest>();
  req->model_name = m.model_name();
  req->model_version = m.model_version();
  req->id = m.id();
  FW_RETURN_IF_ERROR(RequestParameters(m, model_what, req.get()));

  const bool raw = m.raw_input_contents_size() > 0;
  if (raw && m.raw_input_contents_size() != m.inputs_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_what, ": the request has ", m.raw_input_contents_size(), " raw_input_contents for ",
        m.inputs_size(), " inputs; send exactly one per input, in the order of inputs"));
  }
  req->inputs.reserve(m.inputs_size());
  for (int i = 0; i < m.inputs_size(); ++i) {
    const ModelInferRequest::InferInputTensor& in = m.inputs(i);
    if (in.name().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(model_what, ": input #", i, " has no name"));
    }
    const std::string what = absl::StrCat(model_what, " input '", in.name(), "'");
    absl::StatusOr<DataType> type = DataTypeFromName(in.datatype());
    if (!type.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": unknown datatype '", in.datatype(), "'"));
    }
    FW_ASSIGN_OR_RETURN(Shape shape, Shape::Checked(in.shape(), what));

    serving::InferInput& input = req->inputs.emplace_back();
    input.name = in.name();
    FW_RETURN_IF_ERROR(ParametersFromProto(in.parameters(), what, &input.parameters));
    if (raw) {
      if (HasAnyContents(in.contents())) {
        return absl::InvalidArgumentError(absl::StrCat(
            what,
            ": sets contents while the request uses raw_input_contents; use one or the "
            "other for all inputs"));
      }
      FW_ASSIGN_OR_RETURN(input.data,
                          DecodeRaw(message, m.raw_input_contents(i), *type, shape, what));
    } else {
      FW_ASSIGN_OR_RETURN(input.data, DecodeTyped(message, in.contents(), *type, shape, what));
    }
  }

  req->outputs.reserve(m.outputs_size());
  for (const ModelInferRequest::InferRequestedOutputTensor& out : m.outputs()) {
    serving::RequestedOutput& o = req->outputs.emplace_back();
    o.name = out.name();
    const std::string what = absl::StrCat(model_what, " output '", out.name(), "'");
    for (const auto& [key, value] : out.parameters()) {
      if (key == "binary_data") continue;  // HTTP only
      FW_ASSIGN_OR_RETURN(ParameterValue v,
                          FromProto(value, absl::StrCat(what, " parameter '", key, "'")));
      o.parameters.emplace(key, std::move(v));
    }
  }
  req->body = std::move(message);
  return req;
}

absl::Status EncodeInferResponse(const serving::InferResponse& response,
                                 inference::ModelInferResponse* out) {
  out->set_model_name(response.model_name);
  out->set_model_version(response.model_version);
  out->set_id(response.id);
  ParametersToProto(response.parameters, out->mutable_parameters());
  out->mutable_outputs()->Reserve(static_cast<int>(response.outputs.size()));
  out->mutable_raw_output_contents()->Reserve(static_cast<int>(response.outputs.size()));
  for (const serving::InferOutput& output : response.outputs) {
    const Tensor& t = output.data;
    if (t.empty()) {
      return absl::InternalError(absl::StrCat("model '", response.model_name, "' output '",
                                              output.name, "' has no tensor"));
    }
    auto* o = out->add_outputs();
    o->set_name(output.name);
    o->set_datatype(std::string(DataTypeName(t.dtype())));
    for (int64_t d : t.shape().dims()) o->add_shape(d);
    std::string* raw = out->add_raw_output_contents();
    if (t.dtype() != DataType::kBytes) {
      raw->assign(static_cast<const char*>(t.raw_data()), t.ByteSize());
      continue;
    }
    size_t total = 0;
    for (const std::string& s : t.strings()) total += 4 + s.size();
    raw->resize(total);
    char* p = raw->data();
    for (const std::string& s : t.strings()) {
      if (s.size() > std::numeric_limits<uint32_t>::max()) {
        return absl::InternalError(absl::StrCat("model '", response.model_name, "' output '",
                                                output.name, "' has a BYTES element over 4 GiB"));
      }
      const auto len = static_cast<uint32_t>(s.size());
      p[0] = static_cast<char>(len & 0xff);
      p[1] = static_cast<char>((len >> 8) & 0xff);
      p[2] = static_cast<char>((len >> 16) & 0xff);
      p[3] = static_cast<char>((len >> 24) & 0xff);
      std::memcpy(p + 4, s.data(), s.size());
      p += 4 + s.size();
    }
  }
  return absl::OkStatus();
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace flywheel::api
