// Rollouts: a candidate version gets a share of a model's unversioned traffic (canary), a sticky
// half of its users (A-B), or a copy of some requests (shadow), while the controller watches its
// figures over a sliding window — error rate, p99 latency, shadow disagreement, live label
// quality against the stable version — and rolls it back (weight to zero, an event, a metric)
// when one breaches. Each model's rollout is kept in <repository>/<model>/.flywheel/rollout.json,
// so a restarted server routes as before.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lifecycle/registry.h"

namespace flywheel::serving {
class Server;
}  // namespace flywheel::serving

namespace flywheel::monitor {
class Monitoring;
class Registry;
}  // namespace flywheel::monitor

namespace flywheel::lifecycle {

enum class RolloutPolicy { kCanary, kAbTest, kShadow };
const char* RolloutPolicyName(RolloutPolicy policy);  // "canary", "ab", "shadow"
absl::StatusOr<RolloutPolicy> ParseRolloutPolicy(absl::string_view name);

struct RolloutThresholds {
  double max_error_rate = 0.01;            // candidate failed / answered, in the window
  std::optional<double> max_p99_ms;        // candidate p99 latency in the window
  std::optional<double> max_disagreement;  // shadow: disagreed / compared
  // Live label quality (monitor's quality of each version): the candidate may be at most this
  // much worse than the stable version in `quality_metric` ("auc", "accuracy", "log_loss",
  // "mae", "rmse"), judged once both have min_labels joined pairs.
  std::optional<double> max_quality_drop;
  std::string quality_metric = "auc";
  int64_t min_requests = 100;  // candidate requests (or shadow comparisons) before judging
  int64_t min_labels = 50;
  absl::Duration window = absl::Minutes(5);
};

struct RolloutSpec {
  std::string model;
  RolloutPolicy policy = RolloutPolicy::kCanary;
  int64_t stable = 0;  // 0: the version unversioned requests reach now
  int64_t candidate = 0;
  double weight = 0.1;           // canary and A-B: the candidate's share in (0, 1]
  std::string sticky_parameter;  // A-B: required
  double shadow_fraction = 0;    // shadow: (0, 1]
  RolloutThresholds thresholds;
  // Promote by itself once healthy for this long with at least min_requests (unset: wait for a
  // Promote call, e.g. from the retraining loop).
  std::optional<absl::Duration> promote_after;
  std::string alias = "production";  // the registry alias a promotion moves
};

enum class RolloutState { kActive, kPromoted, kRolledBack, kStopped };
const char* RolloutStateName(RolloutState state);  // "active", "promoted", "rolled_back", "stopped"

struct RolloutEvent {
  absl::Time time = absl::InfinitePast();
  std::string kind;  // start, breach, rollback, promote, stop
  std::string detail;
  std::string by;
};

// The window's figures of the candidate (and of the stable version, for comparison).
struct RolloutFigures {
  int64_t candidate_requests = 0;
  int64_t candidate_failed = 0;
  std::optional<double> candidate_error_rate;
  std::optional<double> candidate_p99_ms;
  int64_t stable_requests = 0;
  std::optional<double> stable_error_rate;
  std::optional<double> stable_p99_ms;
  int64_t shadow_compared = 0;
  std::optional<double> shadow_disagreement;
  std::optional<double> candidate_quality;  // thresholds.quality_metric
  std::optional<double> stable_quality;
  int64_t candidate_labels = 0;
  int64_t stable_labels = 0;
};

struct RolloutStatus {
  RolloutSpec spec;
  RolloutState state = RolloutState::kActive;
  absl::Time started = absl::InfinitePast();
  absl::Time ended = absl::InfinitePast();  // when it left kActive
  // Since when the candidate has been judged healthy without a break (InfinitePast: not yet).
  absl::Time healthy_since = absl::InfinitePast();
  std::string reason;  // why it was rolled back or stopped
  std::vector<RolloutEvent> events;
  RolloutFigures figures;  // the last tick's
};

struct RolloutOptions {
  absl::Duration tick = absl::Seconds(1);  // how often the figures are judged
  bool start_thread = true;                // tests drive Tick() themselves
};

class RolloutController {
 public:
  // `registries`: one per model repository (a model's rollout file and alias live in the one
  // whose folder holds the model). `monitoring` (optional) gives live label quality; `metrics`
  // (optional) receives flywheel_rollout_* metrics. All must outlive the controller.
  static absl::StatusOr<std::unique_ptr<RolloutController>> Create(
      serving::Server* server, std::vector<Registry*> registries, monitor::Monitoring* monitoring,
      monitor::Registry* metrics, RolloutOptions options = {});
  ~RolloutController();  // stops the thread

  // Reads every model's rollout.json and sets its traffic split on the server (before the
  // server takes traffic). A bad file is an error naming it; the others are still restored.
  absl::Status Restore();

  // Starts a rollout (FailedPrecondition while the model has an active one): checks both
  // versions are ready, sets the split, writes the file, records a start event.
  absl::StatusOr<RolloutStatus> Start(RolloutSpec spec, const ChangeAuthor& author);
  // Active → promoted: the alias moves to the candidate (Registry::Promote), every unversioned
  // request goes to it.
  absl::StatusOr<RolloutStatus> Promote(absl::string_view model, const ChangeAuthor& author);
  // Active → rolled back: the candidate's weight drops to zero (shadow stops); the stable
  // version takes everything.
  absl::StatusOr<RolloutStatus> Rollback(absl::string_view model, const ChangeAuthor& author);
  // Removes the model's rollout (file and split): unversioned requests go to the highest
  // version again.
  absl::Status Clear(absl::string_view model, const ChangeAuthor& author);
  // Pins the model's unversioned traffic to one version (state stopped, no candidate), e.g. to
  // keep the champion while a new version is loaded for evaluation.
  absl::StatusOr<RolloutStatus> Pin(absl::string_view model, int64_t version,
                                    const ChangeAuthor& author);

  absl::StatusOr<RolloutStatus> Get(absl::string_view model) const;
  std::vector<RolloutStatus> List() const;

  // Judges every active rollout once (the thread calls it every tick).
  void Tick(absl::Time now = absl::Now());

 private:
  struct Impl;
  explicit RolloutController(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

std::string RolloutStatusToJson(const RolloutStatus& status);

}  // namespace flywheel::lifecycle
