// The engine's two uses of glibc's heap tuning during a model load: large buffers from their own
// mappings, and freed heap pages handed back to the system. Both are no-ops where glibc's malloc
// is not the heap (AddressSanitizer replaces it).
#pragma once

namespace flywheel::engine {

// Makes buffers of 128 KiB or more come from mmap, so that memory a load frees goes back to the
// system at once instead of staying in the heap. Process-wide; done once.
void UseMmapForLargeBuffers();

// Returns the heap's free pages to the system (malloc_trim): weights smaller than the mmap
// threshold that a load frees would otherwise stay resident beside their replacements.
void ReturnFreedHeap();

}  // namespace flywheel::engine
