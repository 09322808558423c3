// Activation functions applied in place to a float buffer: the epilogue of fused MatMul/Gemm/Conv
// kernels, and the body of the standalone activation operators.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/graph.h"

namespace flywheel::engine {

enum class ActivationKind {
  kNone,
  kRelu,
  kLeakyRelu,
  kSigmoid,
  kTanh,
  kGelu,
  kClip,
  kHardSigmoid,
  kElu
};

struct Activation {
  ActivationKind kind = ActivationKind::kNone;
  // LeakyRelu/Elu: alpha. Clip: alpha = min, beta = max. HardSigmoid: alpha, beta.
  float alpha = 0;
  float beta = 0;
};

// Reads a fused node's epilogue from its attributes: "activation" (string: "Relu", "LeakyRelu",
// "Sigmoid", "Tanh", "Gelu", "Clip", "HardSigmoid", "Elu"; absent or "" for none) with
// "activation_alpha" and "activation_beta" (floats). Fails on an unknown name.
absl::StatusOr<Activation> ActivationFromNode(const Node& node);

// Applies `act` to data[0, n) in place. Single-threaded: callers parallelise over blocks.
void ApplyActivation(const Activation& act, float* data, int64_t n);
// The same on `rows` rows of n floats that start ld floats apart (a tile of an output matrix).
void ApplyActivationRows(const Activation& act, float* data, int64_t rows, int64_t n, int64_t ld);

}  // namespace flywheel::engine
