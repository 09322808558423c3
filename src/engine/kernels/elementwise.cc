#include "engine/kernels/registry.h"

namespace flywheel::engine {

void RegisterElementwiseKernels(KernelRegistry& registry) {}

}  // namespace flywheel::engine
