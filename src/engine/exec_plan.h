// Runs an optimised Graph: one kernel per node, executed in topological order, with tensors
// placed in a per-run arena by a memory plan. Private to the engine; Session is the public face.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "engine/graph.h"
#include "engine/kernel.h"
#include "engine/session.h"

namespace flywheel::engine {

class ExecPlan {
 public:
  // Builds a kernel for every node. REQUIRES: graph is topologically sorted.
  static absl::StatusOr<std::unique_ptr<ExecPlan>> Create(Graph graph,
                                                          const SessionOptions& options);
  ~ExecPlan();

  absl::Status Run(absl::Span<const Tensor> inputs, std::vector<Tensor>* outputs) const;
  const Graph& graph() const { return graph_; }
  ThreadPool& pool() const { return *pool_; }

 private:
  friend class ExecState;
  friend class KernelContext;
  ExecPlan() = default;
  absl::Status CheckInputs(absl::Span<const Tensor> inputs) const;
  std::unique_ptr<ExecState> AcquireState() const;
  void ReleaseState(std::unique_ptr<ExecState> state) const;

  Graph graph_;
  std::vector<std::unique_ptr<Kernel>> kernels_;
  std::vector<int> last_use_;                    // per value: last node index reading it
  std::vector<std::vector<int>> release_after_;  // per node: values to drop after it
  std::vector<int> output_slot_;                 // per value: first index in graph outputs, or -1
  std::unique_ptr<ThreadPool> pool_;
  size_t max_tensor_bytes_ = 0;
  mutable std::mutex states_mu_;
  mutable std::vector<std::unique_ptr<ExecState>> free_states_;
};

// Evaluates a single node on the given inputs with fresh buffers (no memory plan): the constant
// folding pass uses it to run kernels at load time. `inputs` has one tensor per node input (empty
// for omitted ones); the result has one per node output (empty for omitted ones).
absl::StatusOr<std::vector<Tensor>> EvaluateNode(const Node& node, const Graph& graph,
                                                 absl::Span<const Tensor> inputs);

}  // namespace flywheel::engine
