// Internal to the tensor-manipulation kernel family (tensor_ops.cc and the files it registers):
// per-file registration hooks and small helpers for dtype dispatch and attribute-or-input lists.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "core/data_type.h"
#include "engine/kernel.h"
#include "engine/kernels/kernel_util.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {

// One per file: gather.cc, concat.cc, reshape.cc, ...
void RegisterGatherKernels(KernelRegistry& registry);
void RegisterConcatKernels(KernelRegistry& registry);
void RegisterViewKernels(
    KernelRegistry& registry);  // Reshape Flatten Squeeze Unsqueeze Identity Dropout
void RegisterTransposeKernels(KernelRegistry& registry);
void RegisterSliceKernels(KernelRegistry& registry);
void RegisterSplitKernels(KernelRegistry& registry);
void RegisterShapeKernels(KernelRegistry& registry);  // Shape, ConstantOfShape
void RegisterRangeKernels(KernelRegistry& registry);
void RegisterExpandKernels(KernelRegistry& registry);
void RegisterTileKernels(KernelRegistry& registry);
void RegisterPadKernels(KernelRegistry& registry);
void RegisterTopKKernels(KernelRegistry& registry);
void RegisterReduceKernels(KernelRegistry& registry);
void RegisterArgMaxKernels(KernelRegistry& registry);

// Builds kernel K from (node, graph) when its constructor cannot fail, or from K::Create.
template <typename K>
absl::StatusOr<std::unique_ptr<Kernel>> MakeKernel(const Node& node, const Graph& graph) {
  return std::unique_ptr<Kernel>(new K(node, graph));
}

// Calls fn(T{}) with the C++ type of a numeric (non-bool, non-16-bit-float) dtype; returns false
// when the dtype has none.
template <typename F>
bool DispatchNumeric(DataType dtype, F&& fn) {
  switch (dtype) {
    case DataType::kFp32:
      fn(float{});
      return true;
    case DataType::kFp64:
      fn(double{});
      return true;
    case DataType::kInt8:
      fn(int8_t{});
      return true;
    case DataType::kInt16:
      fn(int16_t{});
      return true;
    case DataType::kInt32:
      fn(int32_t{});
      return true;
    case DataType::kInt64:
      fn(int64_t{});
      return true;
    case DataType::kUint8:
      fn(uint8_t{});
      return true;
    case DataType::kUint16:
      fn(uint16_t{});
      return true;
    case DataType::kUint32:
      fn(uint32_t{});
      return true;
    case DataType::kUint64:
      fn(uint64_t{});
      return true;
    default:
      return false;
  }
}

// Calls fn(U{}) with an unsigned integer type of the given element size (1, 2, 4 or 8 bytes):
// data movement copies elements by size, whatever their type. Returns false for other sizes.
template <typename F>
bool DispatchBySize(size_t elem_size, F&& fn) {
  switch (elem_size) {
    case 1:
      fn(uint8_t{});
      return true;
    case 2:
      fn(uint16_t{});
      return true;
    case 4:
      fn(uint32_t{});
      return true;
    case 8:
      fn(uint64_t{});
      return true;
    default:
      return false;
  }
}

// An integer list given by attribute `name` in older opsets and by input `input` in newer ones.
// Read at load time from whichever the node uses; Get() then returns the list at run time.
class IntsAttrOrInput {
 public:
  IntsAttrOrInput(const Node& node, absl::string_view name, int input);
  // True when the node gives the list in either form.
  bool present(const KernelContext& ctx) const {
    return attr_.has_value() || ctx.input(input_) != nullptr;
  }
  // The list, or an error when the input has the wrong type. Empty when absent.
  absl::StatusOr<IntList> Get(const KernelContext& ctx, absl::string_view what) const;

 private:
  std::optional<IntList> attr_;
  int input_;
};

// Rejects tensors whose elements cannot be copied by size (BYTES, INVALID).
absl::Status CheckCopyable(const KernelContext& ctx, const Tensor& t, absl::string_view what);

}  // namespace flywheel::engine
