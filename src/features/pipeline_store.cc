// FeaturePipeline and the OnlineStore: flushing changed state with source positions, restoring
// it at start, reading entities for lookups, and the counters for metrics.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "features/pipeline.h"
#include "features/pipeline_internal.h"
#include "features/state_codec.h"

namespace flywheel::features {

absl::Status FeaturePipeline::Flush() {
  absl::MutexLock flush_lock(&flush_mu_);
  WriteBatch batch;
  // The (view, entity key) of each put, to mark it changed again when the write fails.
  std::vector<std::pair<int, std::string>> written;
  {
    absl::MutexLock lock(&ingest_mu_);
    std::vector<int64_t> watermarks;
    for (const auto& source : sources_) watermarks.push_back(source->watermark.value());
    std::string encoded;
    for (const auto& shard : shards_) {
      absl::MutexLock shard_lock(&shard->mu);
      for (size_t v = 0; v < shard->views.size(); ++v) {
        const ViewDef& view = registry_->views()[v];
        const ViewLayout& layout = *layouts_[v];
        auto& states = shard->views[v];
        for (auto it = states.begin(); it != states.end();) {
          if (layout.Expired(it->second, watermarks[view.source_index])) {
            batch.deletes.push_back(StateKey(view.name, it->first));
            states.erase(it++);
            ++evicted_;
            continue;
          }
          if (it->second.dirty) {
            EncodeState(layout, it->second, &encoded);
            batch.puts.emplace_back(StateKey(view.name, it->first), encoded);
            written.emplace_back(static_cast<int>(v), it->first);
            it->second.dirty = false;
          }
          ++it;
        }
      }
    }
    for (size_t s = 0; s < sources_.size(); ++s) {
      SourceRuntime& rt = *sources_[s];
      if (!rt.position_dirty || !rt.position) continue;
      batch.positions.emplace_back(registry_->sources()[s].name, *rt.position);
      rt.position_dirty = false;
    }
  }
  if (batch.empty() || store_ == nullptr) return absl::OkStatus();
  absl::Status status = store_->Write(batch);
  if (status.ok()) {
    ++flushes_;
    return status;
  }
  ++flush_failures_;
  for (const auto& [v, key] : written) {
    Shard& shard = *shards_[ShardOf(key)];
    absl::MutexLock shard_lock(&shard.mu);
    auto it = shard.views[v].find(key);
    if (it != shard.views[v].end()) it->second.dirty = true;
  }
  {
    absl::MutexLock lock(&ingest_mu_);
    for (const auto& [source, position] : batch.positions) {
      sources_[registry_->SourceIndex(source)]->position_dirty = true;
    }
  }
  return absl::Status(status.code(),
                      absl::StrCat("flushing ", batch.puts.size(), " feature states to ",
                                   store_->Describe(), ": ", status.message()));
}

absl::Status FeaturePipeline::Restore() {
  if (store_ == nullptr) return absl::OkStatus();
  absl::MutexLock lock(&ingest_mu_);
  for (size_t v = 0; v < layouts_.size(); ++v) {
    const ViewDef& view = registry_->views()[v];
    const ViewLayout& layout = *layouts_[v];
    Watermark& watermark = sources_[view.source_index]->watermark;
    std::string prefix = StateKey(view.name, "");
    absl::Status status =
        store_->Scan(prefix, [&](absl::string_view key, absl::string_view value) -> absl::Status {
          absl::string_view entity = key.substr(prefix.size());
          ViewState state;
          layout.Init(&state);
          if (!DecodeState(layout, value, &state).ok()) {
            ++restore_corrupt_;
            return absl::OkStatus();
          }
          watermark.Observe(state.last_ts);
          Shard& shard = *shards_[ShardOf(entity)];
          absl::MutexLock shard_lock(&shard.mu);
          shard.views[v].insert_or_assign(std::string(entity), std::move(state));
          ++restored_;
          return absl::OkStatus();
        });
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("restoring view '", view.name, "' from ",
                                                      store_->Describe(), ": ", status.message()));
    }
  }
  for (size_t s = 0; s < sources_.size(); ++s) {
    const SourceDef& source = registry_->sources()[s];
    absl::StatusOr<std::optional<std::string>> position = store_->GetPosition(source.name);
    if (!position.ok()) {
      return absl::Status(position.status().code(),
                          absl::StrCat("restoring the position of source '", source.name, "' from ",
                                       store_->Describe(), ": ", position.status().message()));
    }
    sources_[s]->position = *position;
    sources_[s]->position_dirty = false;
  }
  return absl::OkStatus();
}

absl::Status FeaturePipeline::ReadView(int view, absl::Span<const std::string> entity_keys,
                                       absl::Span<const int> features, absl::Time now,
                                       std::vector<FeatureValue>* out) const {
  ViewRead read{view, entity_keys, features, out};
  return ReadViews(absl::MakeConstSpan(&read, 1), now);
}

absl::Status FeaturePipeline::ReadViews(absl::Span<const ViewRead> reads, absl::Time now) const {
  int64_t now_ns = absl::ToUnixNanos(now);
  // (read, entity) of each state the memory does not hold, in the order of `store_keys`.
  std::vector<std::pair<size_t, size_t>> missing;
  for (size_t r = 0; r < reads.size(); ++r) {
    const ViewRead& read = reads[r];
    const ViewLayout& layout = *layouts_[read.view];
    const size_t width = read.features.size();
    read.out->assign(read.entity_keys.size() * width, FeatureValue{});
    for (size_t i = 0; i < read.entity_keys.size(); ++i) {
      const Shard& shard = *shards_[ShardOf(read.entity_keys[i])];
      absl::ReaderMutexLock lock(&shard.mu);
      auto it = shard.views[read.view].find(read.entity_keys[i]);
      if (it == shard.views[read.view].end()) {
        missing.emplace_back(r, i);
        continue;
      }
      for (size_t j = 0; j < width; ++j) {
        (*read.out)[i * width + j] = EvaluateFeature(layout, it->second, read.features[j], now_ns);
      }
    }
  }
  if (missing.empty() || !options_.read_store_on_miss || store_ == nullptr) {
    return absl::OkStatus();
  }
  std::vector<std::string> keys;
  keys.reserve(missing.size());
  for (const auto& [r, i] : missing) {
    keys.push_back(StateKey(registry_->views()[reads[r].view].name, reads[r].entity_keys[i]));
  }
  absl::StatusOr<std::vector<std::optional<std::string>>> values = store_->MultiGet(keys);
  if (!values.ok()) {
    std::vector<std::string> names;
    for (const ViewRead& read : reads) {
      const std::string& name = registry_->views()[read.view].name;
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    return absl::Status(values.status().code(),
                        absl::StrCat("reading ", names.size() == 1 ? "view '" : "views '",
                                     absl::StrJoin(names, "', '"), "' from ", store_->Describe(),
                                     ": ", values.status().message()));
  }
  ViewState state;
  for (size_t m = 0; m < missing.size() && m < values->size(); ++m) {
    if (!(*values)[m]) continue;
    const ViewRead& read = reads[missing[m].first];
    const ViewLayout& layout = *layouts_[read.view];
    const size_t width = read.features.size();
    layout.Init(&state);
    // An unreadable stored state reads as absent rather than failing the whole lookup.
    if (!DecodeState(layout, *(*values)[m], &state).ok()) continue;
    for (size_t j = 0; j < width; ++j) {
      (*read.out)[missing[m].second * width + j] =
          EvaluateFeature(layout, state, read.features[j], now_ns);
    }
  }
  return absl::OkStatus();
}

void FeaturePipeline::StartBackgroundFlush(absl::Duration interval) {
  StopBackgroundFlush();
  {
    absl::MutexLock lock(&background_mu_);
    background_stop_ = false;
  }
  background_ = std::thread([this, interval] {
    while (true) {
      {
        absl::MutexLock lock(&background_mu_);
        if (background_mu_.AwaitWithTimeout(absl::Condition(&background_stop_), interval)) return;
      }
      absl::Status status = Flush();
      absl::MutexLock lock(&background_mu_);
      background_status_ = status;
    }
  });
}

void FeaturePipeline::StopBackgroundFlush() {
  if (!background_.joinable()) return;
  {
    absl::MutexLock lock(&background_mu_);
    background_stop_ = true;
  }
  background_.join();
}

absl::Status FeaturePipeline::last_background_flush() const {
  absl::MutexLock lock(&background_mu_);
  return background_status_;
}

PipelineStats FeaturePipeline::Stats() const {
  PipelineStats stats;
  stats.evicted = evicted_;
  stats.flushes = flushes_;
  stats.flush_failures = flush_failures_;
  stats.restored = restored_;
  stats.restore_corrupt = restore_corrupt_;
  {
    absl::MutexLock lock(&ingest_mu_);
    for (size_t s = 0; s < sources_.size(); ++s) {
      const SourceRuntime& rt = *sources_[s];
      SourceStats source;
      source.name = registry_->sources()[s].name;
      source.accepted = rt.accepted;
      source.late = rt.late;
      source.invalid = rt.invalid;
      if (rt.watermark.value() != kNoTime) {
        source.watermark = absl::FromUnixNanos(rt.watermark.value());
      }
      source.position = rt.position;
      stats.events_accepted += source.accepted;
      stats.events_late += source.late;
      stats.events_invalid += source.invalid;
      stats.sources.push_back(std::move(source));
    }
  }
  for (size_t v = 0; v < layouts_.size(); ++v) {
    ViewStats view;
    view.name = registry_->views()[v].name;
    for (const auto& shard : shards_) {
      absl::ReaderMutexLock lock(&shard->mu);
      view.entities += shard->views[v].size();
    }
    view.tiles = view.entities * static_cast<uint64_t>(layouts_[v]->tiles_per_entity());
    stats.entities += view.entities;
    stats.tiles += view.tiles;
    stats.views.push_back(std::move(view));
  }
  return stats;
}

}  // namespace flywheel::features
