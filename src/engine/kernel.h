// The interface every operator implementation follows. A Kernel is created once per node when a
// session loads (validating attributes and pre-packing constant weights) and is then shared by all
// threads that run the session, so Run is const and keeps its per-run state in the context.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "core/status.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "engine/graph.h"

namespace flywheel::engine {

class ExecState;

// What a kernel sees while it runs: its inputs, a way to get output buffers (from the session's
// memory plan), scratch memory and the intra-op thread pool.
class KernelContext {
 public:
  KernelContext(ExecState* state, const Node* node) : state_(state), node_(node) {}

  const Node& node() const { return *node_; }
  int num_inputs() const { return static_cast<int>(node_->inputs.size()); }
  int num_outputs() const { return static_cast<int>(node_->outputs.size()); }
  // Input i, or nullptr when it is omitted (optional) or past the end.
  const Tensor* input(int i) const;
  // Input i, or an error naming the node when it is missing.
  absl::StatusOr<const Tensor*> RequiredInput(int i) const;

  // Allocates output i with the given type and shape. The buffer comes from the run's arena and
  // is uninitialised; it stays valid until the run ends.
  absl::StatusOr<Tensor*> AllocateOutput(int i, DataType dtype, const Shape& shape);
  // Makes output i a view of input j with a new shape of the same element count (Reshape,
  // Squeeze, Identity...): no copy. Falls back to a copy when input j must not be aliased.
  absl::Status ForwardInput(int i, int j, const Shape& shape);
  // Temporary memory for this node only, 64-byte aligned; planned like outputs.
  void* Scratch(size_t bytes);

  ThreadPool& pool() const;
  int num_threads() const { return pool().num_threads(); }

  // An InvalidArgument error prefixed with the node's description.
  template <typename... Args>
  absl::Status Error(const Args&... args) const {
    return absl::InvalidArgumentError(absl::StrCat(node_->Describe(), ": ", args...));
  }

 private:
  ExecState* state_;
  const Node* node_;
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  // Computes the node's outputs. Must not keep pointers into the context after returning.
  virtual absl::Status Run(KernelContext& ctx) const = 0;
  // False when the kernel copied (pre-packed) constant input i at load and never reads it at run
  // time: once no kernel reads a constant, the session frees it, so weights are not held twice.
  virtual bool ReadsConstantInput(int i) const { return true; }
};

}  // namespace flywheel::engine
