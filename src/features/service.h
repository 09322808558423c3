// The feature store inside `flywheel serve --features DIR`: the definitions, the online store, the
// event log and the pipeline, wired together. Pushed events are logged, each with an ingestion
// sequence, before they are applied, and a restart replays the logged pushes after the sequence
// committed with the state, so that no acknowledged push is lost or applied twice; Redis Stream
// sources are consumed by threads of their own from the position committed with the
// state; state and positions are flushed in the background and at Stop.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "features/definitions.h"
#include "features/event_log.h"
#include "features/lookup.h"
#include "features/pipeline.h"
#include "features/store.h"
#include "features/stream_consumer.h"
#include "rapidjson/document.h"

namespace flywheel::monitor {
class Registry;
}  // namespace flywheel::monitor

namespace flywheel::features {

struct ServiceMetrics;

struct FeatureServiceOptions {
  // The folder of YAML definitions.
  std::string definitions_dir;
  // Holds the event log (<data_dir>/events) and the default online store (<data_dir>/features).
  std::string data_dir = "flywheel-data";
  // `rocksdb:PATH` or `redis://host:port[/db][?...]` (store.h); empty: rocksdb:<data_dir>/features.
  std::string online_store;
  // The Redis server that redis_stream sources read (`redis://host:port[/db]`); empty: the online
  // store's server when it is Redis. Required when any source is a redis_stream.
  std::string stream_redis;
  // How often changed state and stream positions are committed to the online store.
  absl::Duration flush_interval = absl::Milliseconds(100);
  // Stream entries read per XREAD, and how long one read waits for new entries.
  int stream_batch = 1000;
  absl::Duration stream_block = absl::Milliseconds(200);
  // fsync the event log before a push is acknowledged (survives a power loss, not only a crash).
  bool sync_event_log = true;
  PipelineOptions pipeline;
};

// What one accepted push did.
struct PushOutcome {
  size_t accepted = 0;  // applied (and logged)
  size_t late = 0;      // older than the source's watermark: dropped, not logged
};

class FeatureService {
 public:
  // Loads the definitions (errors name file:line), opens the store and the event log, restores
  // state and source positions, replays the pushes logged after the committed ones, and starts the
  // flush and stream threads. `metrics` (may be null) receives the flywheel_feature_* families and
  // must outlive the service.
  static absl::StatusOr<std::unique_ptr<FeatureService>> Start(const FeatureServiceOptions& options,
                                                               monitor::Registry* metrics);
  ~FeatureService();
  FeatureService(const FeatureService&) = delete;
  FeatureService& operator=(const FeatureService&) = delete;

  // Stops the stream consumers and the flush thread, then flushes once more. Idempotent. Pushes
  // after Stop are refused (UNAVAILABLE); lookups keep working from memory.
  absl::Status Stop();

  const FeatureRegistry& registry() const { return *registry_; }
  const FeaturePipeline& pipeline() const { return *pipeline_; }
  const OnlineStore& store() const { return *store_; }
  // True when lookups may wait on the network (a Redis store read on a miss), so that callers on
  // I/O threads should hand them to another thread.
  bool lookups_may_block() const { return lookups_may_block_; }

  // Applies a batch of events (a JSON array of objects) to a push source, all or nothing: every
  // event is checked (InvalidArgument "source 'clicks': event 3: field 'user_id' missing; ...",
  // each error also in `errors`), the accepted ones are appended to the event log, and only then
  // applied. A failed log append refuses the batch, so a retry neither loses nor doubles it.
  absl::StatusOr<PushOutcome> Push(absl::string_view source, const rapidjson::Value& events,
                                   std::vector<EventError>* errors = nullptr);

  // Online lookup (lookup.h), timed into the lookup latency histogram.
  absl::StatusOr<LookupResult> Lookup(const LookupRequest& request) const;

  // For serving::FeatureSource: numeric features of single-key entities as floats.
  absl::Status ValidateNumeric(absl::Span<const std::string> features) const;
  absl::Status LookupNumeric(absl::Span<const std::string> keys,
                             absl::Span<const std::string> features, float missing_value,
                             float* values, uint8_t* present) const;

  // The definitions as JSON (GET /v1/features/views).
  const std::string& views_json() const { return views_json_; }

  // Where the event log is written.
  const std::string& event_log_dir() const { return event_log_->dir(); }

  // One per redis_stream source.
  std::vector<StreamConsumerStats> StreamStats() const;

  // Pushed events that Start re-applied from the event log (acknowledged before a crash, after
  // the last committed flush).
  uint64_t replayed_events() const { return replayed_events_; }

 private:
  FeatureService() = default;
  absl::Status Init(const FeatureServiceOptions& options, monitor::Registry* metrics);
  void ObserveLookup(absl::Time start, absl::string_view path) const;
  // Re-applies, in sequence order, the logged events of each push source whose ingestion sequence
  // is above the committed position, and sets where the sequences continue.
  absl::Status ReplayPushes();
  absl::Status ReplaySource(int source);

  std::unique_ptr<FeatureRegistry> registry_;
  std::unique_ptr<OnlineStore> store_;
  std::unique_ptr<EventLog> event_log_;
  std::unique_ptr<FeaturePipeline> pipeline_;
  std::vector<std::unique_ptr<StreamConsumer>> consumers_;
  std::unique_ptr<ServiceMetrics> metrics_;
  std::string views_json_;
  bool lookups_may_block_ = false;
  uint64_t replayed_events_ = 0;
  // By source index: the ingestion sequence of the next logged push event. Taken in the
  // pipeline's BeforeApply, so sequences follow the order in which batches are applied; never
  // reused, even by a batch whose log append failed.
  absl::Mutex sequence_mu_;
  std::vector<uint64_t> next_sequence_ ABSL_GUARDED_BY(sequence_mu_);
  std::atomic<bool> stopped_{false};
};

}  // namespace flywheel::features
