// The engine's public surface: load an ONNX model into a Session and run it. A Session is
// immutable after Load and safe to Run from several threads at once.
//
//   FW_ASSIGN_OR_RETURN(auto session, Session::Load("model.onnx", {}));
//   FW_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, session->Run({x}));
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor.h"

namespace flywheel::engine {

struct SessionOptions {
  // Threads that one Run may use for a single operator (the calling thread included).
  int intra_op_threads = 1;
  // Run the graph optimisation passes (constant folding, fusions...). Off only for debugging and
  // for tests that compare optimised and plain execution.
  bool optimize = true;
  // Largest tensor one run may create; a model or input that asks for more fails that run with
  // RESOURCE_EXHAUSTED instead of taking the process's memory.
  size_t max_tensor_bytes = size_t{16} << 30;
};

// A declared model input or output.
struct TensorInfo {
  std::string name;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> dims;  // -1 for a dimension fixed only at run time
  // For integer inputs that index embedding tables (Gather): the smallest table size, so that
  // callers generating test data stay in range. 0 when the input indexes nothing.
  int64_t index_bound = 0;
};

class ExecPlan;
class Graph;

class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Loads and prepares a model. External-data files are read from the model's folder; a location
  // that leaves the folder is refused.
  static absl::StatusOr<std::unique_ptr<Session>> Load(const std::string& path,
                                                       const SessionOptions& options);
  // Loads a model from memory; `model_dir` resolves external data ("" forbids external data).
  static absl::StatusOr<std::unique_ptr<Session>> LoadFromMemory(absl::string_view bytes,
                                                                 const std::string& model_dir,
                                                                 const SessionOptions& options);

  const std::vector<TensorInfo>& inputs() const { return inputs_; }
  const std::vector<TensorInfo>& outputs() const { return outputs_; }

  // Runs the model on inputs given in the order of inputs(). Outputs are written into *outputs,
  // reusing its tensors' buffers when their type and shape still fit and no one else holds them:
  // a run with the same shapes as the previous one on the same thread allocates nothing.
  absl::Status Run(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) const;
  // Convenience form that returns fresh outputs.
  absl::StatusOr<std::vector<Tensor>> Run(absl::Span<const Tensor> inputs) const;

  // Operator counts of the graph as it runs (after optimisation), keyed by op_type; for tests and
  // `flywheel bench --verbose`.
  std::map<std::string, int> OpCounts() const;
  // Bytes of the model's constants (initializers and Constant nodes) as loaded, before any
  // optimisation: the model's weight size.
  size_t WeightBytes() const;

 private:
  Session();
  absl::Status Init(Graph graph, const SessionOptions& options);

  std::vector<TensorInfo> inputs_;
  std::vector<TensorInfo> outputs_;
  std::unique_ptr<ExecPlan> plan_;
  size_t weight_bytes_ = 0;
};

}  // namespace flywheel::engine
