// Learning objectives of XGBoost models as far as prediction cares: how base_score maps to the
// margin, and how the summed margin maps to what `predict()` returns. Arithmetic is in float, in
// the same order as XGBoost, so transformed outputs match it bit for bit on the same margins.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace flywheel::trees {

enum class OutputTransform : uint8_t {
  kIdentity,  // regression, ranking, logitraw
  kSigmoid,   // reg:logistic, binary:logistic
  kExp,       // count:poisson, reg:gamma, reg:tweedie, survival:cox
  kSoftmax,   // multi:softprob: one probability per class
  kArgmax,    // multi:softmax: the class index (first maximum), one column
  kHinge,     // binary:hinge: 1 when margin > 0, else 0
};

enum class BaseScoreLink : uint8_t { kIdentity, kLogit, kLog };

struct Objective {
  std::string name;
  OutputTransform transform = OutputTransform::kIdentity;
  BaseScoreLink link = BaseScoreLink::kIdentity;
};

// The objective named `name` (e.g. "binary:logistic"); an error listing the supported ones
// otherwise.
absl::StatusOr<Objective> ParseObjective(absl::string_view name);
// Names ParseObjective accepts.
const std::vector<std::string>& SupportedObjectives();

// base_score (stored in output space) mapped to margin space: logit for logistic objectives,
// log for the exponential ones. Fails when base_score is outside the link's domain.
absl::StatusOr<float> BaseScoreToMargin(const Objective& objective, float base_score);

// Output columns for `num_groups` margin columns: 1 for kArgmax, else num_groups.
int TransformedColumns(OutputTransform transform, int num_groups);

// Maps rows of margins (n_rows x num_groups, row-major) to transformed outputs (n_rows x
// TransformedColumns). `out` may alias `margin` except for kArgmax with num_groups > 1.
void ApplyTransform(OutputTransform transform, const float* margin, int64_t n_rows, int num_groups,
                    float* out);

}  // namespace flywheel::trees
