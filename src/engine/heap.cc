#include "engine/heap.h"

// Any C library header defines __GLIBC__ where the C library is glibc.
#include <cstdlib>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

// glibc's heap tuning (mallopt, malloc_trim) applies only where glibc's malloc is the heap: not
// under AddressSanitizer, whose allocator replaces it (there, calling them from a load thread
// initialises glibc's unused arenas on that thread and trips glibc's arena accounting when the
// thread exits).
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FLYWHEEL_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FLYWHEEL_ASAN 1
#endif
#if defined(__GLIBC__) && !defined(FLYWHEEL_ASAN)
#define FLYWHEEL_GLIBC_HEAP 1
#else
#define FLYWHEEL_GLIBC_HEAP 0
#endif

namespace flywheel::engine {

void UseMmapForLargeBuffers() {
#if FLYWHEEL_GLIBC_HEAP
  static const bool done = [] { return mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1; }();
  (void)done;
#endif
}

void ReturnFreedHeap() {
#if FLYWHEEL_GLIBC_HEAP
  malloc_trim(0);
#endif
}

}  // namespace flywheel::engine
