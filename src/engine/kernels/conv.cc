#include "engine/kernels/registry.h"

namespace flywheel::engine {

void RegisterConvKernels(KernelRegistry& registry) {}

}  // namespace flywheel::engine
