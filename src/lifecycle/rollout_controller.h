// The rollout controller's state, shared by rollout.cc (the operations) and rollout_judge.cc (the
// tick's judging and the metrics). Private to lifecycle/.
#pragma once

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "lifecycle/rollout.h"
#include "lifecycle/rollout_window.h"
#include "monitor/metrics.h"
#include "serving/router.h"

namespace flywheel::lifecycle {

// The split each state means (docs/lifecycle.md, "Rollouts").
serving::TrafficSplit SplitFor(const RolloutStatus& status);
// Appends an event, keeping the last kMaxRolloutEvents.
void AddEvent(RolloutStatus& status, absl::Time time, std::string kind, std::string detail,
              std::string by);

struct RolloutController::Impl {
  struct Entry {
    Registry* registry = nullptr;  // the one whose repository holds the model
    RolloutStatus status;
    RolloutWindow window;
  };

  Impl(serving::Server* server, std::vector<Registry*> registries, monitor::Monitoring* monitoring,
       monitor::Registry* metrics, RolloutOptions options);

  absl::StatusOr<Registry*> Owner(absl::string_view model) const;
  static std::string FilePath(const Registry& registry, absl::string_view model);
  // Writes the entry's rollout.json under the model's registry lock.
  absl::Status Save(const Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // Sets the split the entry's state means and restarts its window.
  absl::Status Route(Entry& entry, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Snapshot(Entry& entry, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::StatusOr<int64_t> ResolveStable(Registry& registry, const RolloutSpec& spec) const;
  absl::Status CheckReady(absl::string_view model, int64_t version, absl::string_view role) const;
  absl::StatusOr<Entry*> Active(absl::string_view model, absl::string_view action)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::Status EndRollback(Entry& entry, absl::Time now, const std::string& by,
                           const std::string& reason, const std::string& metric_reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  absl::Status EndPromote(Entry& entry, absl::Time now, const ChangeAuthor& author,
                          const std::string& detail) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  // One tick of an active rollout: figures, breaches, health, promotion (rollout_judge.cc).
  void Judge(Entry& entry, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void AddQuality(const RolloutSpec& spec, RolloutFigures& figures) const;
  void Collect(monitor::SampleWriter& writer) const;

  serving::Server* const server;
  const std::vector<Registry*> registries;
  monitor::Monitoring* const monitoring;
  monitor::Registry* const metrics;
  const RolloutOptions options;
  monitor::Family<monitor::Counter>* rollbacks = nullptr;
  int collector_id = -1;

  mutable absl::Mutex mu;
  std::map<std::string, Entry, std::less<>> rollouts ABSL_GUARDED_BY(mu);

  absl::Notification stop;
  std::thread thread;
};

}  // namespace flywheel::lifecycle
