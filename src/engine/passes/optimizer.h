// Graph optimisation passes, run by Session::Load between loading and execution: constant
// folding, shape-op folding, dead-node elimination, and fusions into single kernels.
#pragma once

#include "absl/status/status.h"
#include "engine/graph.h"

namespace flywheel::engine {

// Rewrites `graph` in place into an equivalent, faster graph. The result is topologically sorted.
// Order: dead nodes, shape and constant folding to a fixed point, BatchNorm folding, subgraph
// fusions (LayerNorm, GELU, attention), bias/activation fusions, channels-last convolution
// chains, a last fold and DCE.
absl::Status OptimizeGraph(Graph& graph);

// Individual passes, exposed for tests. Each leaves the graph valid and sorted, and adds the
// number of rewrites it made to *changes when given.

// Removes nodes that no graph output depends on, releases constants nothing reads, and removes
// Identity and (inference) Dropout nodes by rewiring their readers.
absl::Status EliminateDeadNodes(Graph& graph, int* changes = nullptr);

// Evaluates nodes whose inputs are all constants (deterministic ops only; outputs much larger
// than their inputs and over ~1M elements stay computed at run time) into constants.
absl::Status FoldConstants(Graph& graph, int* changes = nullptr);

// Turns Shape of a statically shaped value into a constant, and Shape -> Gather / Shape -> Slice
// into constants when the selected dims are static. Dynamic (-1) dims are never folded.
absl::Status FoldShapeOps(Graph& graph, int* changes = nullptr);

// Fills in the shapes (often just the rank) of values ONNX shape inference left unknown, e.g.
// after torch's dynamic Reshape, by propagating through common ops. Never changes a known shape.
absl::Status PropagateShapes(Graph& graph, int* changes = nullptr);

// Folds an inference BatchNormalization into the preceding Conv, Gemm or 2-D MatMul with
// constant weights.
absl::Status FoldBatchNorm(Graph& graph, int* changes = nullptr);

// ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add (torch's LayerNorm before opset 17) into
// LayerNormalization.
absl::Status FuseLayerNorm(Graph& graph, int* changes = nullptr);

// x * 0.5 * (1 + erf(x / sqrt 2)) in its exported variants into com.flywheel Gelu.
absl::Status FuseGelu(Graph& graph, int* changes = nullptr);

// MatMul(Q, K^T) -> scale -> [Add mask] -> Softmax -> MatMul(., V) into com.flywheel Attention.
absl::Status FuseAttention(Graph& graph, int* changes = nullptr);

// Gemm [+ activation] into FusedGemm, MatMul [+ bias Add] [+ activation] into FusedMatMul, Conv
// [+ residual Add] [+ activation] into FusedConv (all com.flywheel).
absl::Status FuseActivations(Graph& graph, int* changes = nullptr);

// Runs chains of 2-D Conv / FusedConv / MaxPool / GlobalAveragePool in channels-last (NHWC)
// layout, with a Transpose only where a chain starts and where NCHW readers remain.
absl::Status ConvertToChannelsLast(Graph& graph, int* changes = nullptr);

}  // namespace flywheel::engine
