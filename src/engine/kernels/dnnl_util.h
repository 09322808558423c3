// Shared oneDNN plumbing for the convolution kernels: the CPU engine, a stream per calling thread,
// the OpenMP thread count (Debian's oneDNN uses OpenMP), and plain row-major memory descriptors.
#pragma once

#include <cstdint>

#include <oneapi/dnnl/dnnl.hpp>

#include "absl/status/status.h"
#include "engine/graph.h"

namespace flywheel::engine {

// The process-wide CPU engine.
const dnnl::engine& DnnlEngine();
// A stream for the calling thread (oneDNN streams must not be shared between threads).
dnnl::stream& DnnlStream();
// Sets the OpenMP thread count of the calling thread for the oneDNN calls that follow. Cheap when
// the count does not change.
void SetDnnlThreads(int n);
// A dense row-major f32 descriptor of the given dims.
dnnl::memory::desc PlainDesc(const int64_t* dims, int rank);
// Converts a oneDNN exception into an error naming the node.
absl::Status DnnlError(const Node& node, const char* what, const dnnl::error& e);

}  // namespace flywheel::engine
