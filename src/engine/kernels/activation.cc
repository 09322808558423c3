#include "engine/kernels/activation.h"

#include "absl/strings/str_cat.h"
#include "engine/kernels/simd_math.h"

namespace flywheel::engine {

absl::StatusOr<Activation> ActivationFromNode(const Node& node) {
  Activation act;
  std::string name = node.GetString("activation", "");
  act.alpha = node.GetFloat("activation_alpha", 0);
  act.beta = node.GetFloat("activation_beta", 0);
  if (name.empty())
    act.kind = ActivationKind::kNone;
  else if (name == "Relu")
    act.kind = ActivationKind::kRelu;
  else if (name == "LeakyRelu")
    act.kind = ActivationKind::kLeakyRelu;
  else if (name == "Sigmoid")
    act.kind = ActivationKind::kSigmoid;
  else if (name == "Tanh")
    act.kind = ActivationKind::kTanh;
  else if (name == "Gelu")
    act.kind = ActivationKind::kGelu;
  else if (name == "Clip")
    act.kind = ActivationKind::kClip;
  else if (name == "HardSigmoid")
    act.kind = ActivationKind::kHardSigmoid;
  else if (name == "Elu")
    act.kind = ActivationKind::kElu;
  else {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Describe(), ": unknown fused activation '", name, "'"));
  }
  return act;
}

// Vectorised through simd_math (runtime-dispatched Highway code).
void ApplyActivation(const Activation& act, float* data, int64_t n) {
  ApplyActivationRows(act, data, 1, n, n);
}

void ApplyActivationRows(const Activation& act, float* data, int64_t rows, int64_t n, int64_t ld) {
  simd::UnaryOp op;
  switch (act.kind) {
    case ActivationKind::kNone:
      return;
    case ActivationKind::kRelu:
      op = simd::UnaryOp::kRelu;
      break;
    case ActivationKind::kLeakyRelu:
      op = simd::UnaryOp::kLeakyRelu;
      break;
    case ActivationKind::kSigmoid:
      op = simd::UnaryOp::kSigmoid;
      break;
    case ActivationKind::kTanh:
      op = simd::UnaryOp::kTanh;
      break;
    case ActivationKind::kGelu:
      op = simd::UnaryOp::kGelu;
      break;
    case ActivationKind::kClip:
      op = simd::UnaryOp::kClip;
      break;
    case ActivationKind::kHardSigmoid:
      op = simd::UnaryOp::kHardSigmoid;
      break;
    case ActivationKind::kElu:
      op = simd::UnaryOp::kElu;
      break;
    default:
      return;
  }
  simd::UnaryRows(op, data, rows, n, ld, act.alpha, act.beta);
}

}  // namespace flywheel::engine
