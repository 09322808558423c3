#include "engine/kernels/registry.h"

namespace flywheel::engine {

void RegisterLinalgKernels(KernelRegistry& registry) {}

}  // namespace flywheel::engine
