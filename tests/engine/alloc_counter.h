// Counts operator new calls in the integration test binary, so tests can assert that a code path
// allocates nothing. The replacement operators live in alloc_counter.cc.
#pragma once

#include <cstdint>

namespace flywheel::engine::testing {

// operator new calls (all forms) since the process started.
int64_t NewCallCount();

}  // namespace flywheel::engine::testing
