// Window geometry shared by Conv, ConvTranspose and the pooling operators: parsing of the ONNX
// attributes (kernel_shape, strides, dilations, pads, auto_pad, ceil_mode) and the output size
// and effective padding for a concrete input, validated so that no kernel reads out of bounds.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/graph.h"
#include "engine/kernel.h"
#include "engine/kernels/kernel_util.h"
#include "engine/kernels/registry.h"

namespace flywheel::engine {

enum class AutoPad { kNotSet, kSameUpper, kSameLower, kValid };

// The window attributes as written in the node. Empty lists mean "the default".
struct WindowAttrs {
  IntList kernel_shape, strides, dilations, pads;
  AutoPad auto_pad = AutoPad::kNotSet;
  bool ceil_mode = false;
};

// Reads and checks the attributes (positive kernel/strides/dilations, non-negative pads, known
// auto_pad, consistent lengths).
absl::StatusOr<WindowAttrs> ParseWindowAttrs(const Node& node);

// The geometry of one window operation over a concrete input.
struct WindowGeometry {
  int spatial = 0;
  IntList kernel, strides, dilations, pad_begin, pad_end, in, out;
};

// Computes output sizes and effective pads for a forward window (Conv, pools). `kernel` gives the
// window size per spatial axis (from the weights or kernel_shape). Fails, naming the node, when
// attribute lengths do not match `spatial` or the window does not fit the padded input.
absl::StatusOr<WindowGeometry> ComputeWindow(const Node& node, const WindowAttrs& attrs,
                                             int spatial, const int64_t* in_spatial,
                                             const int64_t* kernel);

// Registration of the operator families of this area, called from RegisterConvKernels.
void RegisterPoolKernels(KernelRegistry& registry);
void RegisterChannelsLastPoolKernels(KernelRegistry& registry);
void RegisterBatchNormKernels(KernelRegistry& registry);
void RegisterConvTransposeKernels(KernelRegistry& registry);

}  // namespace flywheel::engine
