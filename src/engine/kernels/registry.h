// Maps (domain, op_type) to the factory that builds a Kernel for a node. Every operator family
// registers itself from one Register*Kernels function, called once by KernelRegistry::Global().
#pragma once

#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/kernel.h"

namespace flywheel::engine {

// Builds the kernel for `node`; fails with a message naming the node when its attributes or
// constant inputs are invalid. `graph` gives access to constant inputs and known value types.
using KernelFactory = absl::StatusOr<std::unique_ptr<Kernel>> (*)(const Node& node,
                                                                  const Graph& graph);

class KernelRegistry {
 public:
  static const KernelRegistry& Global();

  void Register(absl::string_view domain, absl::string_view op_type, KernelFactory factory);
  // nullptr when no kernel implements the operator.
  KernelFactory Find(absl::string_view domain, absl::string_view op_type) const;

 private:
  absl::flat_hash_map<std::string, KernelFactory> factories_;  // key: domain + ":" + op_type
};

// Operator families, each defined in its own file under kernels/.
void RegisterElementwiseKernels(KernelRegistry& registry);  // elementwise.cc and friends
void RegisterTensorKernels(KernelRegistry& registry);       // tensor_ops.cc and friends
void RegisterLinalgKernels(
    KernelRegistry& registry);                       // MatMul, Gemm, fused GEMMs, attention, norms
void RegisterConvKernels(KernelRegistry& registry);  // Conv, ConvTranspose, pools, BatchNorm

}  // namespace flywheel::engine
