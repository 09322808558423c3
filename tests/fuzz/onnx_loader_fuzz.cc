// libFuzzer target for the ONNX loader and session: any byte string must load or fail with an
// error; a model that loads runs once on zero-filled inputs (dynamic dims = 1) and must return
// outputs or an error, never crash, leak or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/session.h"

namespace {

// Inputs above this many bytes in total are not run: the fuzzer is after loader and kernel bugs,
// not the time it takes to fill a huge tensor.
constexpr size_t kMaxInputBytes = size_t{1} << 22;

void RunOnce(const flywheel::engine::Session& session) {
  std::vector<flywheel::Tensor> inputs;
  size_t total = 0;
  for (const auto& info : session.inputs()) {
    flywheel::Shape shape;
    int64_t elements = 1;
    for (int64_t d : info.dims) {
      int64_t dim = d < 0 ? 1 : d;
      if (dim > 0 && elements > static_cast<int64_t>(kMaxInputBytes) / dim) return;
      elements *= dim;
      shape.push_back(dim);
    }
    flywheel::DataType dtype =
        info.dtype == flywheel::DataType::kInvalid ? flywheel::DataType::kFp32 : info.dtype;
    if (dtype == flywheel::DataType::kBytes) return;  // zero-filled strings would not test much
    total += static_cast<size_t>(elements) * flywheel::DataTypeSize(dtype);
    if (total > kMaxInputBytes) return;
    inputs.push_back(flywheel::Tensor::Allocate(dtype, shape, /*zero=*/true));
  }
  std::vector<flywheel::Tensor> outputs;
  (void)session.Run(inputs, &outputs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  // A model may legitimately ask for huge tensors at run time; cap them far below the fuzzer's
  // memory limit so such a model fails cleanly (RESOURCE_EXHAUSTED) instead of exhausting memory.
  flywheel::engine::SessionOptions options;
  options.max_tensor_bytes = size_t{64} << 20;
  auto session = flywheel::engine::Session::LoadFromMemory(bytes, "", options);
  if (session.ok()) RunOnce(**session);
  return 0;
}
