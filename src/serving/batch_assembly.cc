#include "serving/batch_assembly.h"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"

namespace flywheel::serving {
namespace {

size_t RowBytes(const Tensor& t) {
  return static_cast<size_t>(t.shape().Product(1, t.rank())) * DataTypeSize(t.dtype());
}

}  // namespace

bool BatchCompatible(const InferRequest& a, const InferRequest& b) {
  if (a.inputs.size() != b.inputs.size()) return false;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const Tensor& x = a.inputs[i].data;
    const Tensor& y = b.inputs[i].data;
    if (x.dtype() != y.dtype() || x.rank() != y.rank()) return false;
    for (int d = 1; d < x.rank(); ++d) {
      if (x.dim(d) != y.dim(d)) return false;
    }
    if (a.inputs[i].name != b.inputs[i].name) return false;
  }
  return true;
}

absl::StatusOr<int64_t> BatchRowsOf(const InferRequest& request, const std::string& model,
                                    int64_t max_batch_size) {
  if (request.inputs.empty()) return 1;
  const InferInput& first = request.inputs[0];
  int64_t rows = 0;
  for (const InferInput& input : request.inputs) {
    if (input.data.empty() || input.data.rank() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", model, "' input '", input.name, "': the model batches (max_batch_size ",
          max_batch_size, ") so the first dimension is the batch size, but the input has shape ",
          input.data.empty() ? "(none)" : input.data.shape().ToString()));
    }
    if (&input == &first) {
      rows = input.data.dim(0);
    } else if (input.data.dim(0) != rows) {
      return absl::InvalidArgumentError(absl::StrCat(
          "model '", model, "' input '", input.name, "': batch size ", input.data.dim(0),
          " differs from input '", first.name, "' batch size ", rows));
    }
  }
  if (rows < 1 || rows > max_batch_size) {
    return absl::InvalidArgumentError(absl::StrCat("model '", model, "' input '", first.name,
                                                   "': batch size ", rows, " is outside [1, ",
                                                   max_batch_size, "] (max_batch_size)"));
  }
  return rows;
}

struct BatchAssembler::Storage {
  explicit Storage(size_t n) : data(AlignedAlloc(n)), bytes(n) {}
  ~Storage() { AlignedFree(data); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data;
  size_t bytes;
};

BatchAssembler::BatchAssembler() = default;
BatchAssembler::~BatchAssembler() = default;

absl::Status BatchAssembler::Concat(absl::Span<const InferRequest* const> requests,
                                    int64_t total_rows, std::vector<Tensor>* inputs) {
  const InferRequest& first = *requests[0];
  const size_t n = first.inputs.size();
  if (buffers_.size() < n) buffers_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const Tensor& head = first.inputs[i].data;
    Shape shape = head.shape();
    shape.set_dim(0, total_rows);
    if (head.dtype() == DataType::kBytes) {
      Tensor out = Tensor::Allocate(DataType::kBytes, std::move(shape));
      auto dst = out.strings().begin();
      for (const InferRequest* r : requests) {
        const Tensor& t = r->inputs[i].data;
        const std::vector<std::string>& src = t.strings();
        if (static_cast<int64_t>(src.size()) != t.NumElements()) {
          return absl::InvalidArgumentError(absl::StrCat("input '", first.inputs[i].name,
                                                         "': BYTES tensor ", t.DebugString(),
                                                         " holds ", src.size(), " strings"));
        }
        dst = std::copy(src.begin(), src.end(), dst);
      }
      inputs->push_back(std::move(out));
      continue;
    }
    const size_t row_bytes = RowBytes(head);
    const size_t bytes = row_bytes * static_cast<size_t>(total_rows);
    std::shared_ptr<Storage>& buffer = buffers_[i];
    // A buffer still referenced elsewhere (an output aliasing its input, kept by a response) must
    // not be overwritten; it is left to its holders and replaced.
    if (buffer == nullptr || buffer.use_count() != 1 || buffer->bytes < bytes) {
      const size_t capacity = std::max(bytes, buffer != nullptr ? buffer->bytes : size_t{0});
      try {
        buffer = std::make_shared<Storage>(capacity);
      } catch (const std::bad_alloc&) {
        buffer.reset();
        return absl::ResourceExhaustedError(
            absl::StrCat("input '", first.inputs[i].name, "': out of memory concatenating ",
                         total_rows, " batch rows (", bytes, " bytes)"));
      }
    }
    auto* dst = static_cast<char*>(buffer->data);
    for (const InferRequest* r : requests) {
      const Tensor& src = r->inputs[i].data;
      const size_t size = src.ByteSize();
      if (size > 0) std::memcpy(dst, src.raw_data(), size);
      dst += size;
    }
    inputs->push_back(Tensor::Shared(head.dtype(), std::move(shape), buffer, buffer->data));
  }
  return absl::OkStatus();
}

Tensor DetachOutput(Tensor& output) {
  if (output.dtype() == DataType::kBytes) {
    Tensor out = std::move(output);
    output = Tensor();
    return out;
  }
  if (!output.owns_data() && output.ByteSize() > 0) return output.Clone();
  return output;
}

absl::Status CheckBatchedOutput(const Tensor& output, int64_t total_rows, absl::string_view model,
                                absl::string_view output_name) {
  if (!output.empty() && output.rank() > 0 && output.dim(0) == total_rows) {
    return absl::OkStatus();
  }
  return absl::InternalError(absl::StrCat(
      "model '", model, "' output '", output_name, "': the backend returned ",
      output.empty() ? std::string("no tensor") : output.DebugString(), " for a batch of ",
      total_rows, " rows (the first dimension must be the batch)"));
}

Tensor SliceRows(const std::shared_ptr<const Tensor>& held, int64_t offset, int64_t rows) {
  const Tensor& all = *held;
  Shape shape = all.shape();
  shape.set_dim(0, rows);
  if (all.dtype() == DataType::kBytes) {
    const int64_t per_row = shape.Product(1, shape.rank());
    Tensor out = Tensor::Allocate(DataType::kBytes, std::move(shape));
    const auto begin = all.strings().begin() + offset * per_row;
    std::copy(begin, begin + rows * per_row, out.strings().begin());
    return out;
  }
  // The slice only reads the buffer; Tensor has no const view type.
  char* base = const_cast<char*>(static_cast<const char*>(all.raw_data()));
  return Tensor::Shared(all.dtype(), std::move(shape), held,
                        base + static_cast<size_t>(offset) * RowBytes(all));
}

}  // namespace flywheel::serving
