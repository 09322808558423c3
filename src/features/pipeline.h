// The feature pipeline: events in (HTTP pushes, Redis Stream batches), windowed aggregation in
// event time over in-memory tiles, state out to the OnlineStore in batches (Flush), state back
// in at start (Restore). Lookups (features/lookup.h) read the in-memory state, or the store for
// entities not held here. One pipeline should ingest a given source: two servers folding the
// same entities would overwrite each other's state in a shared store.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "features/aggregation.h"
#include "features/definitions.h"
#include "features/event_parse.h"
#include "features/feature_value.h"
#include "features/store.h"
#include "features/stream_reader.h"
#include "features/tiles.h"
#include "rapidjson/document.h"

namespace flywheel::features {

struct PipelineOptions {
  // Entity state is split over this many independently locked shards, so a lookup waits only
  // for the part of a batch that touches its shard.
  int shards = 16;
  // Lookups of an entity not held in memory read it from the store (written by another server,
  // or evicted here). Off when this pipeline holds everything (it restored and ingests all).
  bool read_store_on_miss = true;
  // Events more than this ahead of the clock are refused: such a timestamp would move the
  // watermark and make every later event late.
  absl::Duration max_future = absl::Hours(1);
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

// What one push did. Malformed batches are refused as a whole (see Push).
struct PushResult {
  size_t accepted = 0;  // folded into the state
  size_t late = 0;      // dropped: older than the source's watermark
  // Positions in the batch of the late events, and every event's time: what the event log
  // needs to keep exactly the accepted events.
  std::vector<uint32_t> late_events;
  std::vector<absl::Time> times;
};

// What one stream batch did. Stream entries cannot be refused, so malformed ones are skipped.
struct StreamApplyResult {
  size_t accepted = 0;
  size_t late = 0;
  size_t invalid = 0;
  std::vector<EventError> errors;  // the first few malformed entries (index in the batch)
};

// Sees a batch after it was checked and admitted against the watermark and before it is applied,
// under the ingestion lock (batches reach it in the order they are applied): `admitted[i]` says
// whether parsed event i (events.input_index[i] in the input) will be applied. The feature
// service appends those to the event log here. An error refuses the batch: nothing is applied,
// the watermark, counters and stream position stay as they were.
using BeforeApply =
    std::function<absl::Status(const ParsedEvents& events, absl::Span<const uint8_t> admitted)>;

struct SourceStats {
  std::string name;
  uint64_t accepted = 0;
  uint64_t late = 0;
  uint64_t invalid = 0;                 // malformed stream entries skipped
  std::optional<absl::Time> watermark;  // events before it are late; none before any event
  std::optional<std::string> position;  // last applied stream position
};

struct ViewStats {
  std::string name;
  uint64_t entities = 0;  // held in memory
  uint64_t tiles = 0;     // entities x tiles per entity
};

struct PipelineStats {
  uint64_t events_accepted = 0;
  uint64_t events_late = 0;
  uint64_t events_invalid = 0;
  uint64_t entities = 0;
  uint64_t tiles = 0;
  uint64_t evicted = 0;  // entities whose state expired and was dropped
  uint64_t flushes = 0;
  uint64_t flush_failures = 0;
  uint64_t restored = 0;         // entity states loaded by Restore
  uint64_t restore_corrupt = 0;  // stored states that could not be read (skipped)
  std::vector<SourceStats> sources;
  std::vector<ViewStats> views;
};

class FeaturePipeline {
 public:
  // REQUIRES: `registry` outlives the pipeline; `store` too when not null (without a store,
  // Flush only evicts and Restore does nothing).
  FeaturePipeline(const FeatureRegistry& registry, OnlineStore* store,
                  PipelineOptions options = {});
  ~FeaturePipeline();
  FeaturePipeline(const FeaturePipeline&) = delete;
  FeaturePipeline& operator=(const FeaturePipeline&) = delete;

  const FeatureRegistry& registry() const { return *registry_; }
  // The pipeline's clock (options.clock): what lookups without an explicit time read at.
  absl::Time Now() const { return options_.clock(); }
  OnlineStore* store() const { return store_; }

  // Loads every stored entity state and the committed source positions. Call once, before any
  // event. Unreadable stored states are skipped and counted (restore_corrupt).
  absl::Status Restore();

  // Applies a batch of events (a JSON array of objects) to a push source, all or nothing: every
  // event is checked first, and any malformed one refuses the batch with InvalidArgument
  // "source 'clicks': event 3: field 'user_id' missing; event 7: ..." (`errors`, when given,
  // receives them one by one). Late events are not errors: they are dropped and counted.
  // `before_apply` (when set) may still refuse the batch (see BeforeApply). `position` (when
  // set) is read once before_apply accepted the batch: when not empty it becomes the source's
  // position, committed with the state at the next Flush (the feature service puts the ingestion
  // sequence of the batch's last logged event there, so that a restart replays what follows it).
  absl::StatusOr<PushResult> Push(absl::string_view source, const rapidjson::Value& events,
                                  std::vector<EventError>* errors = nullptr,
                                  const BeforeApply& before_apply = nullptr,
                                  const std::string* position = nullptr);
  // The same from JSON text (a request body).
  absl::StatusOr<PushResult> PushJson(absl::string_view source, absl::string_view json,
                                      std::vector<EventError>* errors = nullptr);

  // Applies entries read from a redis_stream source; `last_position` (the id of the last entry
  // read) is committed with the state at the next Flush, so after a restart reading resumes
  // exactly after the last event the stored state contains. `before_apply` (when set) may still
  // refuse the batch (see BeforeApply); the position then stays where it was.
  absl::StatusOr<StreamApplyResult> ApplyStreamBatch(absl::string_view source,
                                                     absl::Span<const StreamEntry> entries,
                                                     absl::string_view last_position,
                                                     const BeforeApply& before_apply = nullptr);
  // Where to resume reading a redis_stream source (or replaying a push source's event log): the
  // last applied (or restored) position; nullopt when there is none yet (read from the start).
  std::optional<std::string> Position(absl::string_view source) const;

  // Writes every entity changed since the last flush, deletes expired ones and commits stream
  // positions, all in one WriteBatch. On a store error the changed entities stay marked for the
  // next flush.
  absl::Status Flush();

  // Calls Flush every `interval` on a thread of its own until StopBackgroundFlush (or the
  // pipeline's destruction). A failed flush is counted (flush_failures) and its changes go out
  // with the next one.
  void StartBackgroundFlush(absl::Duration interval);
  // Stops the thread; does not flush (call Flush for a last one).
  void StopBackgroundFlush();
  // The result of the last background flush.
  absl::Status last_background_flush() const;

  PipelineStats Stats() const;

  // For lookups: evaluates `features` (indices into the view's features) of view `view` for
  // each entity key at `now`; out[i * features.size() + j] is key i's feature j. Entities not
  // in memory are read from the store (options.read_store_on_miss).
  absl::Status ReadView(int view, absl::Span<const std::string> entity_keys,
                        absl::Span<const int> features, absl::Time now,
                        std::vector<FeatureValue>* out) const;

  // One view's part of a ReadViews call (the arguments of ReadView).
  struct ViewRead {
    int view = 0;
    absl::Span<const std::string> entity_keys;
    absl::Span<const int> features;
    std::vector<FeatureValue>* out = nullptr;
  };
  // ReadView for several views at once: the entities of all of them that are not in memory are
  // read with a single store MultiGet (one round trip to Redis, whatever the views and entities).
  absl::Status ReadViews(absl::Span<const ViewRead> reads, absl::Time now) const;

 private:
  struct Shard;
  struct SourceRuntime;

  size_t ShardOf(absl::string_view key) const;
  // Folds the admitted events of `parsed` into every view of the source.
  void Apply(int source, const ParsedEvents& parsed, const std::vector<uint8_t>& admitted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ingest_mu_);
  // Admits events against the source's watermark; fills admitted[i] and counts.
  void Admit(int source, const ParsedEvents& parsed, std::vector<uint8_t>* admitted,
             size_t* accepted, size_t* late, std::vector<uint32_t>* late_events)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ingest_mu_);
  // Undoes Admit for a batch that before_apply refused.
  void Unadmit(int source, const Watermark& watermark, size_t accepted, size_t late)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(ingest_mu_);
  absl::StatusOr<int> FindSource(absl::string_view name, SourceKind kind) const;

  const FeatureRegistry* registry_;
  OnlineStore* store_;
  PipelineOptions options_;
  std::vector<std::unique_ptr<ViewLayout>> layouts_;  // by view index
  std::vector<std::unique_ptr<Shard>> shards_;

  // Serializes ingestion and the flush snapshot, so a flush sees whole batches only.
  mutable absl::Mutex ingest_mu_;
  std::vector<std::unique_ptr<SourceRuntime>> sources_ ABSL_GUARDED_BY(ingest_mu_);
  // Reused between batches: no allocation per event once warm.
  ParsedEvents parsed_ ABSL_GUARDED_BY(ingest_mu_);
  std::vector<uint8_t> admitted_ ABSL_GUARDED_BY(ingest_mu_);
  std::string key_arena_ ABSL_GUARDED_BY(ingest_mu_);
  std::vector<std::pair<uint32_t, uint32_t>> key_spans_
      ABSL_GUARDED_BY(ingest_mu_);  // in key_arena_
  std::vector<std::vector<uint32_t>> shard_events_ ABSL_GUARDED_BY(ingest_mu_);
  // One flush at a time; the store write happens outside ingest_mu_.
  absl::Mutex flush_mu_;

  mutable absl::Mutex background_mu_;
  bool background_stop_ ABSL_GUARDED_BY(background_mu_) = false;
  absl::Status background_status_ ABSL_GUARDED_BY(background_mu_);
  std::thread background_;

  std::atomic<uint64_t> evicted_{0}, flushes_{0}, flush_failures_{0}, restored_{0},
      restore_corrupt_{0};
};

}  // namespace flywheel::features
