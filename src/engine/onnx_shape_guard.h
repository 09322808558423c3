// A schema registry for ONNX shape inference that skips the inference functions of ONNX 1.12 that
// read past the inputs they are given (e.g. ConvTranspose indexing a rank-1 weight's dims) when
// a node's input ranks or attribute lengths are inconsistent. Private to the ONNX loader.
#pragma once

#include "onnx/defs/schema.h"

namespace flywheel::engine {

// The registry to pass to onnx::shape_inference::InferShapes instead of OpSchemaRegistry.
const onnx::ISchemaRegistry* GuardedSchemaRegistry();

}  // namespace flywheel::engine
