#include "engine/kernels/registry.h"

namespace flywheel::engine {

void RegisterTensorKernels(KernelRegistry& registry) {}

}  // namespace flywheel::engine
