// Reading and writing tensors as NumPy .npy files (format versions 1-3, C order), the exchange
// format of `flywheel infer` and of the test fixtures.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "core/tensor.h"

namespace flywheel {

absl::StatusOr<Tensor> ReadNpy(const std::string& path);
// Parses an in-memory .npy image; `what` names it in errors.
absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes, absl::string_view what);
absl::Status WriteNpy(const std::string& path, const Tensor& tensor);

}  // namespace flywheel
