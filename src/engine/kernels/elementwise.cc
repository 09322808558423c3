// Registers the elementwise operator family: unary math and activations, binary arithmetic,
// comparisons and logic with broadcasting, Where, Cast, Softmax/LogSoftmax and Gelu.
#include "engine/kernels/elementwise_util.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {

void RegisterElementwiseKernels(KernelRegistry& registry) {
  RegisterUnaryKernels(registry);
  RegisterBinaryKernels(registry);
  RegisterCastKernels(registry);
  RegisterSoftmaxKernels(registry);
}

}  // namespace flywheel::engine
