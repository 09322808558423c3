// libFuzzer target for the .npy parser (flywheel::ParseNpy): any byte string must give a tensor
// or an error, never a crash, an out-of-bounds read or a huge allocation.
#include <cstddef>
#include <cstdint>

#include "core/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto tensor = flywheel::ParseNpy(bytes, "fuzz.npy");
  if (tensor.ok() && !tensor->empty() && tensor->dtype() != flywheel::DataType::kBytes) {
    // Touch every byte so that ASan checks the tensor really owns what its shape claims.
    const uint8_t* p = static_cast<const uint8_t*>(tensor->raw_data());
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < tensor->ByteSize(); ++i) sink = sink ^ p[i];
  }
  return 0;
}
