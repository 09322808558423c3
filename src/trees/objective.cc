#include "trees/objective.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace flywheel::trees {
namespace {

struct ObjectiveSpec {
  const char* name;
  OutputTransform transform;
  BaseScoreLink link;
};

// binary:logitraw keeps base_score as a margin (XGBoost applies no link for it); binary:hinge
// likewise.
constexpr ObjectiveSpec kObjectives[] = {
    {"reg:squarederror", OutputTransform::kIdentity, BaseScoreLink::kIdentity},
    {"reg:linear", OutputTransform::kIdentity, BaseScoreLink::kIdentity},
    {"reg:squaredlogerror", OutputTransform::kIdentity, BaseScoreLink::kIdentity},
    {"reg:pseudohubererror", OutputTransform::kIdentity, BaseScoreLink::kIdentity},
    {"reg:absoluteerror", OutputTransform::kIdentity, BaseScoreLink::kIdentity},
    {"reg:logistic", OutputTransform::kSigmoid, BaseScoreLink::kLogit},
    {"binary:logistic", OutputTransform::kSigmoid, BaseScoreLink::kLogit},
    {"binary:logitraw", OutputTransform::kIdentity, BaseScoreLink::kIdentity},
    {"binary:hinge", OutputTransform::kHinge, BaseScoreLink::kIdentity},
    {"count:poisson", OutputTransform::kExp, BaseScoreLink::kLog},
    {"reg:gamma", OutputTransform::kExp, BaseScoreLink::kLog},
    {"reg:tweedie", OutputTransform::kExp, BaseScoreLink::kLog},
    {"survival:cox", OutputTransform::kExp, BaseScoreLink::kLog},
    {"multi:softprob", OutputTransform::kSoftmax, BaseScoreLink::kIdentity},
    {"multi:softmax", OutputTransform::kArgmax, BaseScoreLink::kIdentity},
    {"rank:pairwise", OutputTransform::kIdentity, BaseScoreLink::kIdentity},
    {"rank:ndcg", OutputTransform::kIdentity, BaseScoreLink::kIdentity},
    {"rank:map", OutputTransform::kIdentity, BaseScoreLink::kIdentity},
};

// XGBoost's sigmoid: the exponent is capped so that expf never overflows.
inline float Sigmoid(float x) {
  const float e = std::exp(std::min(-x, 88.7f));
  return 1.0f / (e + 1.0f);
}

}  // namespace

const std::vector<std::string>& SupportedObjectives() {
  static const auto* names = [] {
    auto* v = new std::vector<std::string>();
    for (const ObjectiveSpec& o : kObjectives) v->push_back(o.name);
    return v;
  }();
  return *names;
}

absl::StatusOr<Objective> ParseObjective(absl::string_view name) {
  for (const ObjectiveSpec& o : kObjectives) {
    if (name == o.name) return Objective{o.name, o.transform, o.link};
  }
  return absl::UnimplementedError(absl::StrCat(
      "objective '", name,
      "' is not supported (supported: ", absl::StrJoin(SupportedObjectives(), ", "), ")"));
}

absl::StatusOr<float> BaseScoreToMargin(const Objective& objective, float base_score) {
  switch (objective.link) {
    case BaseScoreLink::kIdentity:
      if (!std::isfinite(base_score)) break;
      return base_score;
    case BaseScoreLink::kLogit:
      if (!(base_score > 0.0f && base_score < 1.0f)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "base_score ", base_score, " must be in (0, 1) for objective ", objective.name));
      }
      return -std::log(1.0f / base_score - 1.0f);
    case BaseScoreLink::kLog:
      if (!(base_score > 0.0f) || !std::isfinite(base_score)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "base_score ", base_score, " must be positive for objective ", objective.name));
      }
      return std::log(base_score);
  }
  return absl::InvalidArgumentError(absl::StrCat("base_score ", base_score, " is not finite"));
}

int TransformedColumns(OutputTransform transform, int num_groups) {
  return transform == OutputTransform::kArgmax ? 1 : num_groups;
}

void ApplyTransform(OutputTransform transform, const float* margin, int64_t n_rows, int num_groups,
                    float* out) {
  const int64_t n = n_rows * num_groups;
  switch (transform) {
    case OutputTransform::kIdentity:
      if (out != margin) std::copy(margin, margin + n, out);
      return;
    case OutputTransform::kSigmoid:
      for (int64_t i = 0; i < n; ++i) out[i] = Sigmoid(margin[i]);
      return;
    case OutputTransform::kExp:
      for (int64_t i = 0; i < n; ++i) out[i] = std::exp(margin[i]);
      return;
    case OutputTransform::kHinge:
      for (int64_t i = 0; i < n; ++i) out[i] = margin[i] > 0.0f ? 1.0f : 0.0f;
      return;
    case OutputTransform::kSoftmax:
      for (int64_t r = 0; r < n_rows; ++r) {
        const float* m = margin + r * num_groups;
        float* o = out + r * num_groups;
        float wmax = m[0];
        for (int k = 1; k < num_groups; ++k) wmax = std::fmax(m[k], wmax);
        // XGBoost sums the exponentials in double and divides in float.
        double wsum = 0.0;
        for (int k = 0; k < num_groups; ++k) {
          o[k] = std::exp(m[k] - wmax);
          wsum += o[k];
        }
        const float s = static_cast<float>(wsum);
        for (int k = 0; k < num_groups; ++k) o[k] /= s;
      }
      return;
    case OutputTransform::kArgmax:
      for (int64_t r = 0; r < n_rows; ++r) {
        const float* m = margin + r * num_groups;
        int best = 0;
        for (int k = 1; k < num_groups; ++k) {
          if (m[k] > m[best]) best = k;
        }
        out[r] = static_cast<float>(best);
      }
      return;
  }
}

}  // namespace flywheel::trees
