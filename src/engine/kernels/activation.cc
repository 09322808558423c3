#include "engine/kernels/activation.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

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

// Scalar reference implementation; the elementwise kernels provide the vectorised one.
void ApplyActivation(const Activation& act, float* data, int64_t n) {
  switch (act.kind) {
    case ActivationKind::kNone:
      return;
    case ActivationKind::kRelu:
      for (int64_t i = 0; i < n; ++i) data[i] = std::max(data[i], 0.0f);
      return;
    case ActivationKind::kLeakyRelu:
      for (int64_t i = 0; i < n; ++i) data[i] = data[i] >= 0 ? data[i] : act.alpha * data[i];
      return;
    case ActivationKind::kSigmoid:
      for (int64_t i = 0; i < n; ++i) data[i] = 1.0f / (1.0f + std::exp(-data[i]));
      return;
    case ActivationKind::kTanh:
      for (int64_t i = 0; i < n; ++i) data[i] = std::tanh(data[i]);
      return;
    case ActivationKind::kGelu:
      for (int64_t i = 0; i < n; ++i) {
        data[i] = 0.5f * data[i] * (1.0f + std::erf(data[i] * 0.70710678118654752f));
      }
      return;
    case ActivationKind::kClip:
      for (int64_t i = 0; i < n; ++i) data[i] = std::min(std::max(data[i], act.alpha), act.beta);
      return;
    case ActivationKind::kHardSigmoid:
      for (int64_t i = 0; i < n; ++i) {
        data[i] = std::min(1.0f, std::max(0.0f, act.alpha * data[i] + act.beta));
      }
      return;
    case ActivationKind::kElu:
      for (int64_t i = 0; i < n; ++i) {
        data[i] = data[i] >= 0 ? data[i] : act.alpha * (std::exp(data[i]) - 1.0f);
      }
      return;
  }
}

}  // namespace flywheel::engine
