#include "engine/onnx_loader.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status.h"
#include "engine/kernels/registry.h"
#include "engine/onnx_shape_guard.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl.h"
#include "onnx/checker.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

namespace flywheel::engine {
namespace {

namespace fs = std::filesystem;

// Inline raw data of at least this many bytes is adopted by the tensor instead of copied; smaller
// tensors get a buffer of the engine's own alignment (the copy is cheap).
constexpr size_t kAdoptRawDataBytes = 4096;

// Opsets whose operator semantics the kernels implement.
constexpr int64_t kMinOpset = 11;
constexpr int64_t kMaxOpset = 18;

// The ai.onnx opset the model imports; 0 when it imports none.
int64_t OnnxOpset(const onnx::ModelProto& model) {
  int64_t opset = 0;
  for (const auto& op : model.opset_import()) {
    if (op.domain().empty() || op.domain() == "ai.onnx") opset = op.version();
  }
  return opset;
}

absl::StatusOr<DataType> FromOnnxType(int32_t t, absl::string_view what) {
  switch (t) {
    case onnx::TensorProto::FLOAT:
      return DataType::kFp32;
    case onnx::TensorProto::UINT8:
      return DataType::kUint8;
    case onnx::TensorProto::INT8:
      return DataType::kInt8;
    case onnx::TensorProto::UINT16:
      return DataType::kUint16;
    case onnx::TensorProto::INT16:
      return DataType::kInt16;
    case onnx::TensorProto::INT32:
      return DataType::kInt32;
    case onnx::TensorProto::INT64:
      return DataType::kInt64;
    case onnx::TensorProto::STRING:
      return DataType::kBytes;
    case onnx::TensorProto::BOOL:
      return DataType::kBool;
    case onnx::TensorProto::FLOAT16:
      return DataType::kFp16;
    case onnx::TensorProto::DOUBLE:
      return DataType::kFp64;
    case onnx::TensorProto::UINT32:
      return DataType::kUint32;
    case onnx::TensorProto::UINT64:
      return DataType::kUint64;
    case onnx::TensorProto::BFLOAT16:
      return DataType::kBf16;
    default:
      return absl::InvalidArgumentError(absl::StrCat(what, ": unsupported ONNX element type ", t));
  }
}

// Resolves an external-data location against the model's folder, refusing anything that leaves
// it: absolute paths, "..", and symlinks that point outside (the path is resolved before the
// check). Returns the resolved path of an existing regular file.
absl::StatusOr<std::string> ResolveExternalLocation(const std::string& location,
                                                    const std::string& dir,
                                                    absl::string_view what) {
  if (location.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": external data without a location"));
  }
  if (dir.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": external data '", location,
                     "' but the model was loaded from memory, without a folder to read it from"));
  }
  fs::path rel(location);
  // A NUL would cut the path short inside the system calls, so the checked and the opened paths
  // could differ.
  if (location.find('\0') != std::string::npos || rel.is_absolute()) {
    return absl::PermissionDeniedError(absl::StrCat(what, ": external data location '", location,
                                                    "' is outside the model's folder"));
  }
  std::error_code ec;
  fs::path base = fs::canonical(fs::path(dir), ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat(what, ": cannot resolve the model's folder '", dir, "': ", ec.message()));
  }
  fs::path full = fs::weakly_canonical(base / rel, ec);
  auto [base_end, full_it] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (ec || base_end != base.end() || full == base) {
    return absl::PermissionDeniedError(absl::StrCat(what, ": external data location '", location,
                                                    "' is outside the model's folder"));
  }
  fs::file_status st = fs::status(full, ec);
  if (ec || !fs::exists(st)) {
    return absl::NotFoundError(absl::StrCat(what, ": external data file '", location,
                                            "' does not exist in the model's folder"));
  }
  if (!fs::is_regular_file(st)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": external data location '", location, "' is not a regular file"));
  }
  return full.string();
}

// Resolves the external-data location of every tensor of `graph` (initializers and tensor
// attributes, subgraphs included) and rewrites it to the resolved absolute path. Runs before the
// ONNX checker, which (1.12) opens locations relative to the working directory, not the model's.
absl::Status ResolveExternalData(onnx::GraphProto& graph, const std::string& dir,
                                 absl::string_view what);

absl::Status ResolveTensorLocation(onnx::TensorProto& tensor, const std::string& dir,
                                   absl::string_view what) {
  if (tensor.data_location() != onnx::TensorProto::EXTERNAL) return absl::OkStatus();
  std::string tensor_what = absl::StrCat(what, ": tensor '", tensor.name(), "'");
  onnx::StringStringEntryProto* location = nullptr;
  for (auto& kv : *tensor.mutable_external_data()) {
    if (kv.key() == "location") location = &kv;
  }
  if (location == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(tensor_what, ": external data without a location"));
  }
  FW_ASSIGN_OR_RETURN(std::string full,
                      ResolveExternalLocation(location->value(), dir, tensor_what));
  location->set_value(full);
  return absl::OkStatus();
}

absl::Status ResolveExternalData(onnx::GraphProto& graph, const std::string& dir,
                                 absl::string_view what) {
  for (onnx::TensorProto& t : *graph.mutable_initializer()) {
    FW_RETURN_IF_ERROR(ResolveTensorLocation(t, dir, what));
  }
  for (onnx::NodeProto& node : *graph.mutable_node()) {
    for (onnx::AttributeProto& a : *node.mutable_attribute()) {
      if (a.has_t()) FW_RETURN_IF_ERROR(ResolveTensorLocation(*a.mutable_t(), dir, what));
      for (onnx::TensorProto& t : *a.mutable_tensors()) {
        FW_RETURN_IF_ERROR(ResolveTensorLocation(t, dir, what));
      }
      if (a.has_g()) FW_RETURN_IF_ERROR(ResolveExternalData(*a.mutable_g(), dir, what));
      for (onnx::GraphProto& g : *a.mutable_graphs()) {
        FW_RETURN_IF_ERROR(ResolveExternalData(g, dir, what));
      }
    }
  }
  return absl::OkStatus();
}

// Reads a tensor's bytes from its external-data file; with `dst` null, only checks that the file
// holds them. REQUIRES: ResolveExternalData has replaced the location with the resolved, confined
// path.
absl::Status ReadExternalData(const onnx::TensorProto& proto, absl::string_view what, void* dst,
                              size_t expected) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : proto.external_data()) {
    if (kv.key() == "location")
      location = kv.value();
    else if (kv.key() == "offset" && !absl::SimpleAtoi(kv.value(), &offset))
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": bad external data offset '", kv.value(), "'"));
    else if (kv.key() == "length" && !absl::SimpleAtoi(kv.value(), &length))
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": bad external data length '", kv.value(), "'"));
  }
  if (location.empty() || !fs::path(location).is_absolute()) {
    return absl::InternalError(absl::StrCat(what, ": external data location was not resolved"));
  }
  if (offset < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": negative external data offset ", offset));
  }
  if (length >= 0 && static_cast<uint64_t>(length) != expected) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": external data length ", length,
                                                   " does not match the tensor's ", expected,
                                                   " bytes"));
  }
  std::error_code ec;
  uint64_t file_size = fs::file_size(location, ec);
  if (ec) {
    return absl::NotFoundError(
        absl::StrCat(what, ": cannot read external data file '", location, "': ", ec.message()));
  }
  if (static_cast<uint64_t>(offset) > file_size || file_size - offset < expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": external data file '", fs::path(location).filename().string(), "' has ", file_size,
        " bytes, shorter than offset ", offset, " + ", expected, " bytes"));
  }
  if (dst == nullptr) return absl::OkStatus();
  std::ifstream in(location, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat(what, ": cannot open external data file '", location, "'"));
  }
  in.seekg(offset);
  in.read(static_cast<char*>(dst), static_cast<std::streamsize>(expected));
  if (!in || static_cast<size_t>(in.gcount()) != expected) {
    return absl::DataLossError(absl::StrCat(what, ": reading ", expected,
                                            " bytes of external data file '", location,
                                            "' at offset ", offset, " failed"));
  }
  return absl::OkStatus();
}

// Copies a repeated field into the tensor, converting element by element.
template <typename Src, typename Dst>
absl::Status CopyTyped(const google::protobuf::RepeatedField<Src>& src, Tensor& t,
                       absl::string_view what) {
  if (static_cast<int64_t>(src.size()) != t.NumElements()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": has ", src.size(),
                                                   " values, its shape ", t.shape().ToString(),
                                                   " needs ", t.NumElements()));
  }
  Dst* dst = t.data<Dst>();
  for (int i = 0; i < src.size(); ++i) dst[i] = static_cast<Dst>(src[i]);
  return absl::OkStatus();
}

// Checks that a tensor's data (inline or external) has exactly the size its shape needs. Runs
// before anything is allocated, so that a model of a few bytes cannot make the loader allocate
// gigabytes for a shape its data does not back.
absl::Status CheckDataSize(const onnx::TensorProto& proto, DataType dtype, const Shape& shape,
                           absl::string_view what) {
  const int64_t n = shape.NumElements();
  if (dtype == DataType::kBytes) {
    if (proto.string_data_size() != n) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": string tensor has ", proto.string_data_size(), " values, needs ", n));
    }
    return absl::OkStatus();
  }
  const size_t bytes = static_cast<size_t>(n) * DataTypeSize(dtype);
  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    return ReadExternalData(proto, what, nullptr, bytes);
  }
  if (proto.has_raw_data()) {
    if (proto.raw_data().size() != bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": raw data has ", proto.raw_data().size(), " bytes, shape ",
                       shape.ToString(), " of ", DataTypeName(dtype), " needs ", bytes));
    }
    return absl::OkStatus();
  }
  int64_t count;
  switch (dtype) {
    case DataType::kFp32:
      count = proto.float_data_size();
      break;
    case DataType::kFp64:
      count = proto.double_data_size();
      break;
    case DataType::kInt64:
      count = proto.int64_data_size();
      break;
    case DataType::kUint64:
    case DataType::kUint32:
      count = proto.uint64_data_size();
      break;
    default:
      count = proto.int32_data_size();
      break;
  }
  if (count != n) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": has ", count, " values, its shape ", shape.ToString(), " needs ", n));
  }
  return absl::OkStatus();
}

// Converts a TensorProto to a Tensor, taking over or releasing the proto's copy of the data so
// that a large model is never held twice in memory.
absl::StatusOr<Tensor> ConvertTensor(onnx::TensorProto& proto, absl::string_view what) {
  FW_ASSIGN_OR_RETURN(DataType dtype, FromOnnxType(proto.data_type(), what));
  std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
  FW_ASSIGN_OR_RETURN(Shape shape, Shape::Checked(dims, what));
  FW_RETURN_IF_ERROR(CheckDataSize(proto, dtype, shape, what));
  if (dtype != DataType::kBytes && proto.data_location() != onnx::TensorProto::EXTERNAL &&
      proto.has_raw_data() && proto.raw_data().size() >= kAdoptRawDataBytes) {
    // The parsed bytes become the tensor's own (the string's buffer moves, nothing is copied), so
    // a model's weights are in memory once, not twice, while it loads.
    auto owner = std::make_shared<std::string>(std::move(*proto.mutable_raw_data()));
    proto.clear_raw_data();
    void* data = owner->data();
    if (reinterpret_cast<uintptr_t>(data) % alignof(std::max_align_t) == 0) {
      return Tensor::Shared(dtype, std::move(shape), std::move(owner), data);
    }
    FW_ASSIGN_OR_RETURN(Tensor t, Tensor::SafeAllocate(dtype, shape, what));
    std::memcpy(t.raw_data(), data, t.ByteSize());
    return t;
  }
  FW_ASSIGN_OR_RETURN(Tensor t, Tensor::SafeAllocate(dtype, shape, what));
  if (dtype == DataType::kBytes) {
    if (proto.string_data_size() != t.NumElements()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": string tensor has ",
                                                     proto.string_data_size(), " values, needs ",
                                                     t.NumElements()));
    }
    for (int i = 0; i < proto.string_data_size(); ++i) t.strings()[i] = proto.string_data(i);
    return t;
  }
  const size_t bytes = t.ByteSize();
  if (proto.data_location() == onnx::TensorProto::EXTERNAL) {
    FW_RETURN_IF_ERROR(ReadExternalData(proto, what, t.raw_data(), bytes));
    return t;
  }
  if (proto.has_raw_data()) {
    if (proto.raw_data().size() != bytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": raw data has ", proto.raw_data().size(), " bytes, shape ",
                       shape.ToString(), " of ", DataTypeName(dtype), " needs ", bytes));
    }
    if (bytes > 0) std::memcpy(t.raw_data(), proto.raw_data().data(), bytes);
    std::string().swap(*proto.mutable_raw_data());
    return t;
  }
  switch (dtype) {
    case DataType::kFp32:
      FW_RETURN_IF_ERROR((CopyTyped<float, float>(proto.float_data(), t, what)));
      break;
    case DataType::kFp64:
      FW_RETURN_IF_ERROR((CopyTyped<double, double>(proto.double_data(), t, what)));
      break;
    case DataType::kInt64:
      FW_RETURN_IF_ERROR((CopyTyped<int64_t, int64_t>(proto.int64_data(), t, what)));
      break;
    case DataType::kUint64:
    case DataType::kUint32: {
      if (dtype == DataType::kUint64) {
        FW_RETURN_IF_ERROR((CopyTyped<uint64_t, uint64_t>(proto.uint64_data(), t, what)));
      } else {
        FW_RETURN_IF_ERROR((CopyTyped<uint64_t, uint32_t>(proto.uint64_data(), t, what)));
      }
      break;
    }
    case DataType::kInt32:
      FW_RETURN_IF_ERROR((CopyTyped<int32_t, int32_t>(proto.int32_data(), t, what)));
      break;
    case DataType::kInt16:
      FW_RETURN_IF_ERROR((CopyTyped<int32_t, int16_t>(proto.int32_data(), t, what)));
      break;
    case DataType::kInt8:
      FW_RETURN_IF_ERROR((CopyTyped<int32_t, int8_t>(proto.int32_data(), t, what)));
      break;
    case DataType::kUint16:
    case DataType::kFp16:
    case DataType::kBf16:
      FW_RETURN_IF_ERROR((CopyTyped<int32_t, uint16_t>(proto.int32_data(), t, what)));
      break;
    case DataType::kUint8:
      FW_RETURN_IF_ERROR((CopyTyped<int32_t, uint8_t>(proto.int32_data(), t, what)));
      break;
    case DataType::kBool:
      FW_RETURN_IF_ERROR((CopyTyped<int32_t, bool>(proto.int32_data(), t, what)));
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(what, ": unsupported tensor type"));
  }
  proto.clear_float_data();
  proto.clear_int64_data();
  proto.clear_int32_data();
  proto.clear_double_data();
  return t;
}

absl::StatusOr<Attribute> ConvertAttribute(onnx::AttributeProto& a, absl::string_view node_desc) {
  Attribute out;
  std::string what = absl::StrCat(node_desc, " attribute '", a.name(), "'");
  switch (a.type()) {
    case onnx::AttributeProto::INT:
      out.kind = Attribute::Kind::kInt;
      out.i = a.i();
      break;
    case onnx::AttributeProto::FLOAT:
      out.kind = Attribute::Kind::kFloat;
      out.f = a.f();
      break;
    case onnx::AttributeProto::STRING:
      out.kind = Attribute::Kind::kString;
      out.s = a.s();
      break;
    case onnx::AttributeProto::INTS:
      out.kind = Attribute::Kind::kInts;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::FLOATS:
      out.kind = Attribute::Kind::kFloats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto::STRINGS:
      out.kind = Attribute::Kind::kStrings;
      out.strings.assign(a.strings().begin(), a.strings().end());
      break;
    case onnx::AttributeProto::TENSOR: {
      out.kind = Attribute::Kind::kTensor;
      FW_ASSIGN_OR_RETURN(out.t, ConvertTensor(*a.mutable_t(), what));
      break;
    }
    default:
      return absl::UnimplementedError(absl::StrCat(what, ": attribute type ", a.type(),
                                                   " (subgraphs, sparse tensors, types) "
                                                   "is not supported"));
  }
  return out;
}

// Value type and shape from a ValueInfoProto, when it has them.
void ApplyValueInfo(const onnx::ValueInfoProto& info, Value& value) {
  if (!info.type().has_tensor_type()) return;
  const auto& tt = info.type().tensor_type();
  auto dtype = FromOnnxType(tt.elem_type(), "");
  if (dtype.ok()) value.dtype = *dtype;
  if (!tt.has_shape()) return;
  Shape shape;
  for (const auto& d : tt.shape().dim()) {
    shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
  }
  value.shape = shape;
}

// The Constant operator becomes a constant value at load time.
absl::StatusOr<Tensor> ConstantValue(const Node& node) {
  auto it = node.attributes.find("value");
  if (it != node.attributes.end() && it->second.kind == Attribute::Kind::kTensor) {
    return it->second.t;
  }
  if (node.HasAttr("value_float")) {
    Tensor t = Tensor::Allocate(DataType::kFp32, Shape{});
    *t.data<float>() = node.GetFloat("value_float", 0);
    return t;
  }
  if (node.HasAttr("value_int")) {
    Tensor t = Tensor::Allocate(DataType::kInt64, Shape{});
    *t.data<int64_t>() = node.GetInt("value_int", 0);
    return t;
  }
  if (node.HasAttr("value_floats")) {
    std::vector<float> v = node.GetFloats("value_floats");
    Tensor t = Tensor::Allocate(DataType::kFp32, Shape{static_cast<int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.data<float>());
    return t;
  }
  if (node.HasAttr("value_ints")) {
    std::vector<int64_t> v = node.GetInts("value_ints");
    Tensor t = Tensor::Allocate(DataType::kInt64, Shape{static_cast<int64_t>(v.size())});
    std::copy(v.begin(), v.end(), t.data<int64_t>());
    return t;
  }
  return absl::UnimplementedError(
      absl::StrCat(node.Describe(), ": only tensor, float(s) and int(s) constants are supported"));
}

absl::StatusOr<Graph> ConvertModel(onnx::ModelProto& model, absl::string_view what) {
  Graph graph;
  graph.opset = OnnxOpset(model);
  onnx::GraphProto& g = *model.mutable_graph();
  auto value_id = [&](const std::string& name) {
    int id = graph.FindValue(name);
    if (id < 0) id = graph.AddValue(Value{.name = name});
    return id;
  };

  // Initializers first, so that graph inputs shadowed by an initializer become constants.
  for (onnx::TensorProto& init : *g.mutable_initializer()) {
    std::string init_what = absl::StrCat(what, ": initializer '", init.name(), "'");
    FW_ASSIGN_OR_RETURN(Tensor t, ConvertTensor(init, init_what));
    int id = value_id(init.name());
    graph.values[id].dtype = t.dtype();
    graph.values[id].shape = t.shape();
    graph.values[id].constant = std::move(t);
  }
  g.clear_initializer();
  for (const auto& in : g.input()) {
    int id = value_id(in.name());
    if (graph.values[id].constant.has_value()) continue;
    ApplyValueInfo(in, graph.values[id]);
    const auto& dims = in.type().tensor_type().shape().dim();
    for (const auto& d : dims) {
      if (d.has_dim_value() && d.dim_value() < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": input '", in.name(), "' declares negative dimension ", d.dim_value()));
      }
    }
    graph.inputs.push_back(id);
  }
  for (const auto& info : g.value_info()) ApplyValueInfo(info, graph.values[value_id(info.name())]);
  for (const auto& out : g.output()) {
    int id = value_id(out.name());
    if (!graph.values[id].constant.has_value()) ApplyValueInfo(out, graph.values[id]);
    graph.outputs.push_back(id);
  }

  int index = 0;
  for (onnx::NodeProto& np : *g.mutable_node()) {
    Node node;
    node.op_type = np.op_type();
    node.domain = np.domain() == "ai.onnx" ? "" : np.domain();
    node.name = np.name().empty() ? absl::StrCat(np.op_type(), "_", index) : np.name();
    ++index;
    for (const std::string& in : np.input()) node.inputs.push_back(in.empty() ? -1 : value_id(in));
    for (const std::string& out : np.output()) {
      node.outputs.push_back(out.empty() ? -1 : value_id(out));
    }
    std::string desc = node.Describe();
    for (onnx::AttributeProto& a : *np.mutable_attribute()) {
      // Subgraphs (Loop, If, Scan) and type attributes have no kernel that reads them: skip them,
      // so that CheckOperatorsSupported reports those operators together with the others.
      if (a.type() == onnx::AttributeProto::GRAPH || a.type() == onnx::AttributeProto::GRAPHS ||
          a.type() == onnx::AttributeProto::TYPE_PROTO ||
          a.type() == onnx::AttributeProto::TYPE_PROTOS) {
        continue;
      }
      FW_ASSIGN_OR_RETURN(Attribute attr, ConvertAttribute(a, desc));
      node.attributes[a.name()] = std::move(attr);
    }
    if (node.op_type == "Constant" && node.domain.empty()) {
      FW_ASSIGN_OR_RETURN(Tensor t, ConstantValue(node));
      if (node.outputs.size() != 1 || node.outputs[0] < 0) {
        return absl::InvalidArgumentError(absl::StrCat(desc, ": needs exactly one output"));
      }
      Value& v = graph.values[node.outputs[0]];
      v.dtype = t.dtype();
      v.shape = t.shape();
      v.constant = std::move(t);
      continue;
    }
    graph.nodes.push_back(std::move(node));
  }
  absl::Status sorted = graph.TopologicalSort();
  if (!sorted.ok()) return absl::Status(sorted.code(), absl::StrCat(what, ": ", sorted.message()));
  return graph;
}

// ONNX's messages embed multi-line node dumps; an error message is one line.
std::string OneLine(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(c);
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

// ONNX shape inference reads constant data (Slice's starts, Reshape's shape...) trusting that
// it matches its dims, so every initializer and tensor attribute of the graph is size-checked
// (CheckDataSize, as ConvertTensor does later) before inference runs.
absl::Status CheckConstantSizes(const onnx::GraphProto& g, absl::string_view what) {
  auto check = [&](const onnx::TensorProto& proto, const std::string& tensor_what) {
    FW_ASSIGN_OR_RETURN(DataType dtype, FromOnnxType(proto.data_type(), tensor_what));
    std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
    FW_ASSIGN_OR_RETURN(Shape shape, Shape::Checked(dims, tensor_what));
    return CheckDataSize(proto, dtype, shape, tensor_what);
  };
  for (const onnx::TensorProto& init : g.initializer()) {
    FW_RETURN_IF_ERROR(check(init, absl::StrCat(what, ": initializer '", init.name(), "'")));
  }
  for (const onnx::NodeProto& node : g.node()) {
    for (const onnx::AttributeProto& a : node.attribute()) {
      if (a.type() != onnx::AttributeProto::TENSOR) continue;
      FW_RETURN_IF_ERROR(
          check(a.t(), absl::StrCat(what, ": node '", node.name(), "' (", node.op_type(),
                                    ") attribute '", a.name(), "'")));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Graph> ParsedToGraph(onnx::ModelProto& model, const std::string& dir,
                                    absl::string_view what) {
  if (!model.has_graph()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": not an ONNX model (no graph)"));
  }
  // Checked before the ONNX checker, whose complaints about an old model's operators would hide
  // the real reason.
  const int64_t opset = OnnxOpset(model);
  if (opset < kMinOpset || opset > kMaxOpset) {
    return absl::UnimplementedError(absl::StrCat(what, ": ONNX opset ", opset,
                                                 " is not supported (supported: ", kMinOpset,
                                                 " to ", kMaxOpset, ")"));
  }
  FW_RETURN_IF_ERROR(ResolveExternalData(*model.mutable_graph(), dir, what));
  FW_RETURN_IF_ERROR(CheckConstantSizes(model.graph(), what));
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": the ONNX checker rejected the model: ", OneLine(e.what())));
  } catch (...) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": the ONNX checker rejected the model"));
  }
  try {
    onnx::shape_inference::InferShapes(model, GuardedSchemaRegistry());
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ONNX shape inference failed: ", OneLine(e.what())));
  } catch (...) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ONNX shape inference failed"));
  }
  return ConvertModel(model, what);
}

}  // namespace

absl::StatusOr<Graph> LoadOnnxBytes(absl::string_view bytes, const std::string& model_dir,
                                    absl::string_view what) {
  onnx::ModelProto model;
  google::protobuf::io::CodedInputStream stream(reinterpret_cast<const uint8_t*>(bytes.data()),
                                                static_cast<int>(bytes.size()));
  stream.SetRecursionLimit(64);
  if (!model.ParseFromCodedStream(&stream) || !stream.ConsumedEntireMessage()) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        ": not a valid ONNX model (the protobuf could not be parsed; truncated or not an "
        ".onnx file?)"));
  }
  return ParsedToGraph(model, model_dir, what);
}

absl::StatusOr<Graph> LoadOnnxFile(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "' is a folder, not a model file"));
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::NotFoundError(absl::StrCat("cannot open model '", path, "': ", strerror(errno)));
  }
  onnx::ModelProto model;
  bool parsed;
  {
    // Streamed from the file: the serialized bytes are never held in memory as a whole.
    google::protobuf::io::FileInputStream file(fd);
    file.SetCloseOnDelete(true);
    google::protobuf::io::CodedInputStream stream(&file);
    stream.SetRecursionLimit(64);
    parsed = model.ParseFromCodedStream(&stream) && stream.ConsumedEntireMessage();
  }
  if (!parsed) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path,
                     "': not a valid ONNX model (the protobuf could not be parsed; truncated or "
                     "not an .onnx file?)"));
  }
  std::string dir = fs::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  return ParsedToGraph(model, dir, absl::StrCat("'", path, "'"));
}

absl::Status CheckOperatorsSupported(const Graph& graph) {
  const KernelRegistry& registry = KernelRegistry::Global();
  std::map<std::string, std::vector<std::string>> missing;
  for (const Node& node : graph.nodes) {
    if (registry.Find(node.domain, node.op_type) == nullptr) {
      std::string op =
          node.domain.empty() ? node.op_type : absl::StrCat(node.domain, ".", node.op_type);
      missing[op].push_back(absl::StrCat("'", node.name, "'"));
    }
  }
  if (missing.empty()) return absl::OkStatus();
  std::vector<std::string> parts;
  for (auto& [op, nodes] : missing) {
    if (nodes.size() > 10) {
      size_t more = nodes.size() - 10;
      nodes.resize(10);
      nodes.push_back(absl::StrCat("and ", more, " more"));
    }
    parts.push_back(absl::StrCat(op, " (", absl::StrJoin(nodes, ", "), ")"));
  }
  return absl::UnimplementedError(absl::StrCat(
      "the model uses ", missing.size(), " unsupported operator(s): ", absl::StrJoin(parts, "; ")));
}

}  // namespace flywheel::engine
