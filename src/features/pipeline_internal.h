// Private to the features module: the parts of FeaturePipeline shared by pipeline.cc (ingestion)
// and pipeline_store.cc (flush, restore, reads, stats).
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "features/pipeline.h"

namespace flywheel::features {

struct FeaturePipeline::Shard {
  mutable absl::Mutex mu;
  // By view index: entity key -> state.
  std::vector<absl::flat_hash_map<std::string, ViewState>> views ABSL_GUARDED_BY(mu);
};

struct FeaturePipeline::SourceRuntime {
  explicit SourceRuntime(const SourceDef& def)
      : parser(def), watermark(absl::ToInt64Nanoseconds(def.lateness)) {}

  EventParser parser;
  Watermark watermark;
  std::optional<std::string> position;  // last applied or restored
  bool position_dirty = false;          // applied since the last flush
  std::atomic<uint64_t> accepted{0}, late{0}, invalid{0};
};

}  // namespace flywheel::features
