// Private to serving/: one execution's inputs built from several requests (concatenated along the
// batch dimension into buffers reused from one execution to the next), and its outputs cut back
// into per-request tensors that share the execution's output buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/tensor.h"
#include "serving/infer.h"

namespace flywheel::serving {

// Whether two requests to a batching model may execute in one batch: the same inputs, in the same
// order, with the same dtypes and the same dimensions after the batch dimension.
bool BatchCompatible(const InferRequest& a, const InferRequest& b);

// The batch rows a request to a batching model carries: the first dimension of its inputs (1 for
// a model without inputs). An error names `model` when an input has no batch dimension, the
// inputs disagree, or the count is outside [1, max_batch_size].
absl::StatusOr<int64_t> BatchRowsOf(const InferRequest& request, const std::string& model,
                                    int64_t max_batch_size);

// The concatenation buffers of one backend instance. Not thread-safe: one per instance thread.
class BatchAssembler {
 public:
  BatchAssembler();
  ~BatchAssembler();
  BatchAssembler(const BatchAssembler&) = delete;
  BatchAssembler& operator=(const BatchAssembler&) = delete;

  // Appends to *inputs, input by input, the concatenation along dimension 0 of every request's
  // input. A buffer is reused unless something (a response aliasing it) still holds it.
  // REQUIRES: requests pairwise BatchCompatible; `total_rows` the sum of their batch rows.
  absl::Status Concat(absl::Span<const InferRequest* const> requests, int64_t total_rows,
                      std::vector<Tensor>* inputs);

 private:
  struct Storage;
  std::vector<std::shared_ptr<Storage>> buffers_;
};

// Takes `output` out of a backend's output vector for a response: the response shares an owning
// buffer (the engine does not reuse a buffer someone else holds), gets a copy of a view on the
// backend's memory, and takes BYTES tensors over (leaving an empty tensor behind).
Tensor DetachOutput(Tensor& output);

// An error naming the output of `model` when a batched execution's output does not carry
// `total_rows` rows in its first dimension.
absl::Status CheckBatchedOutput(const Tensor& output, int64_t total_rows, absl::string_view model,
                                absl::string_view output_name);

// Rows [offset, offset + rows) of a batched output (after DetachOutput), which every slice holds:
// a view sharing its buffer, or for BYTES a copy of the strings.
Tensor SliceRows(const std::shared_ptr<const Tensor>& held, int64_t offset, int64_t rows);

}  // namespace flywheel::serving
