// The engine's intermediate representation: a dataflow graph of nodes over values, converted from
// an ONNX model by the loader and rewritten by the optimisation passes before a session runs it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/shape.h"
#include "core/tensor.h"

namespace flywheel::engine {

// Domain of the operators the passes create (fused kernels); "" is the standard ONNX domain.
inline constexpr absl::string_view kFlywheelDomain = "com.flywheel";

// A node attribute, converted from onnx::AttributeProto.
struct Attribute {
  enum class Kind { kInt, kFloat, kString, kInts, kFloats, kStrings, kTensor };
  Kind kind = Kind::kInt;
  int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::vector<std::string> strings;
  Tensor t;
};

struct Node {
  std::string name;          // ONNX node name, or "<op_type>_<index>" when the model left it empty
  std::string op_type;       // "MatMul", "Gelu", ...
  std::string domain;        // "" (ai.onnx) or kFlywheelDomain
  std::vector<int> inputs;   // value ids; -1 for an omitted optional input
  std::vector<int> outputs;  // value ids; -1 for an omitted optional output
  absl::flat_hash_map<std::string, Attribute> attributes;
  bool dead = false;  // removed by a pass; dropped by Graph::Compact()

  bool HasAttr(absl::string_view name) const { return attributes.contains(name); }
  int64_t GetInt(absl::string_view name, int64_t def) const;
  float GetFloat(absl::string_view name, float def) const;
  std::string GetString(absl::string_view name, absl::string_view def) const;
  std::vector<int64_t> GetInts(absl::string_view name) const;  // empty when absent
  std::vector<float> GetFloats(absl::string_view name) const;
  const Tensor* GetTensor(absl::string_view name) const;  // nullptr when absent

  // Input i, or -1 when i is past the end or the input was omitted.
  int input(int i) const { return i < static_cast<int>(inputs.size()) ? inputs[i] : -1; }
  // "node 'MatMul_3' (MatMul)", the prefix of every error about this node.
  std::string Describe() const;
};

struct Value {
  std::string name;
  // Known element type and shape (from the model or ONNX shape inference); kInvalid / nullopt
  // when unknown. Dims may be -1 when only the rank is known.
  DataType dtype = DataType::kInvalid;
  std::optional<Shape> shape;
  // Set for initializers and folded constants.
  std::optional<Tensor> constant;
  int producer = -1;  // index of the node that writes it; -1 for graph inputs and constants
};

class Graph {
 public:
  std::vector<Value> values;
  std::vector<Node> nodes;   // topologically sorted after the loader and after every pass
  std::vector<int> inputs;   // value ids of the graph inputs that are not initializers
  std::vector<int> outputs;  // value ids of the graph outputs
  int64_t opset = 0;         // ai.onnx opset the model imports

  // Adds a value and returns its id; names must be unique.
  int AddValue(Value value);
  // Returns a value id by name, or -1.
  int FindValue(absl::string_view name) const;
  // A fresh value name starting with `prefix`.
  std::string UniqueName(absl::string_view prefix);
  bool IsConstant(int value) const { return value >= 0 && values[value].constant.has_value(); }
  const Tensor* ConstantOf(int value) const {
    return IsConstant(value) ? &*values[value].constant : nullptr;
  }
  bool IsGraphOutput(int value) const;

  // For each value, the indices of the (live) nodes that read it.
  std::vector<std::vector<int>> Consumers() const;
  // Drops dead nodes, re-sorts topologically and recomputes producers. Fails on a cycle, naming
  // the nodes on it.
  absl::Status Compact();
  // Re-sorts the nodes topologically, recomputing producers; fails on a cycle or on an input
  // that nothing defines.
  absl::Status TopologicalSort();

 private:
  absl::flat_hash_map<std::string, int> index_;
  int64_t next_unique_ = 0;
};

}  // namespace flywheel::engine
