// FeaturePipeline, ingestion: pushes and stream batches are parsed, admitted against the
// source's watermark and folded into the shards' entity states.
#include "features/pipeline.h"

#include <algorithm>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "features/pipeline_internal.h"
#include "rapidjson/error/en.h"

namespace flywheel::features {

FeaturePipeline::FeaturePipeline(const FeatureRegistry& registry, OnlineStore* store,
                                 PipelineOptions options)
    : registry_(&registry), store_(store), options_(std::move(options)) {
  options_.shards = std::max(options_.shards, 1);
  for (const ViewDef& view : registry.views()) {
    layouts_.push_back(std::make_unique<ViewLayout>(view, registry.sources()[view.source_index]));
  }
  for (int i = 0; i < options_.shards; ++i) {
    auto shard = std::make_unique<Shard>();
    absl::MutexLock lock(&shard->mu);
    shard->views.resize(registry.views().size());
    shards_.push_back(std::move(shard));
  }
  absl::MutexLock lock(&ingest_mu_);
  for (const SourceDef& source : registry.sources()) {
    sources_.push_back(std::make_unique<SourceRuntime>(source));
  }
  shard_events_.resize(shards_.size());
}

FeaturePipeline::~FeaturePipeline() { StopBackgroundFlush(); }

size_t FeaturePipeline::ShardOf(absl::string_view key) const {
  // High bits: the maps inside a shard index by the low ones.
  return (absl::Hash<absl::string_view>{}(key) >> 40) % shards_.size();
}

absl::StatusOr<int> FeaturePipeline::FindSource(absl::string_view name, SourceKind kind) const {
  int index = registry_->SourceIndex(name);
  if (index < 0) {
    std::vector<std::string> names;
    for (const SourceDef& s : registry_->sources()) names.push_back(s.name);
    return absl::NotFoundError(
        absl::StrCat("unknown source '", name, "' (defined: ", absl::StrJoin(names, ", "), ")"));
  }
  const SourceDef& source = registry_->sources()[index];
  if (source.kind != kind) {
    return absl::FailedPreconditionError(
        kind == SourceKind::kPush
            ? absl::StrCat("source '", name, "' reads the Redis stream '", source.stream,
                           "': add events to the stream instead of pushing them")
            : absl::StrCat("source '", name, "' is a push source, not a Redis stream"));
  }
  return index;
}

void FeaturePipeline::Admit(int source, const ParsedEvents& parsed, std::vector<uint8_t>* admitted,
                            size_t* accepted, size_t* late, std::vector<uint32_t>* late_events) {
  SourceRuntime& rt = *sources_[source];
  admitted->assign(parsed.size, 0);
  for (size_t i = 0; i < parsed.size; ++i) {
    if (rt.watermark.Admit(parsed.times[i])) {
      (*admitted)[i] = 1;
      ++*accepted;
    } else {
      ++*late;
      if (late_events) late_events->push_back(parsed.input_index[i]);
    }
  }
  rt.accepted += *accepted;
  rt.late += *late;
}

void FeaturePipeline::Unadmit(int source, const Watermark& watermark, size_t accepted,
                              size_t late) {
  SourceRuntime& rt = *sources_[source];
  rt.watermark = watermark;
  rt.accepted -= accepted;
  rt.late -= late;
}

void FeaturePipeline::Apply(int source, const ParsedEvents& parsed,
                            const std::vector<uint8_t>& admitted) {
  const SourceDef& src = registry_->sources()[source];
  const size_t num_values = src.value_fields.size();
  for (int v : src.views) {
    const ViewDef& view = registry_->views()[v];
    const ViewLayout& layout = *layouts_[v];
    key_arena_.clear();
    key_spans_.resize(parsed.size);
    for (auto& events : shard_events_) events.clear();
    for (size_t e = 0; e < parsed.size; ++e) {
      if (!admitted[e]) continue;
      size_t start = key_arena_.size();
      AppendEntityKey(parsed, e, src, view, &key_arena_);
      key_spans_[e] = {static_cast<uint32_t>(start),
                       static_cast<uint32_t>(key_arena_.size() - start)};
      absl::string_view key(key_arena_.data() + start, key_arena_.size() - start);
      shard_events_[ShardOf(key)].push_back(static_cast<uint32_t>(e));
    }
    for (size_t s = 0; s < shards_.size(); ++s) {
      if (shard_events_[s].empty()) continue;
      Shard& shard = *shards_[s];
      absl::MutexLock lock(&shard.mu);
      auto& states = shard.views[v];
      const std::vector<uint32_t>& events = shard_events_[s];
      auto key_of = [&](uint32_t e) {
        return absl::string_view(key_arena_.data() + key_spans_[e].first, key_spans_[e].second);
      };
      // With many entities their states are far larger than the caches and an event mostly
      // waits on memory, so the events go through a pipeline that requests memory ahead of its
      // use: the hash map's slot for event i + 2 * kAhead, then the state's heads and tiles for
      // event i + kAhead (found or inserted), then event i is folded. Reserving first keeps the
      // states in flight where they are while new entities are inserted.
      constexpr size_t kAhead = 8;
      constexpr size_t kRing = 2 * kAhead;  // states found and not yet folded: at most kAhead + 1
      ViewState* found[kRing];
      const size_t n = events.size();
      states.reserve(states.size() + n);
      for (size_t i = 0; i < n + 2 * kAhead; ++i) {
        if (i < n) states.prefetch(key_of(events[i]));
        if (i >= kAhead && i - kAhead < n) {
          const uint32_t e = events[i - kAhead];
          absl::string_view key = key_of(e);
          auto it = states.find(key);
          if (it == states.end()) {
            it = states.emplace(std::string(key), ViewState()).first;
            layout.Init(&it->second);
          }
          found[(i - kAhead) % kRing] = &it->second;
          layout.Prefetch(it->second, parsed.times[e]);
        }
        if (i >= 2 * kAhead) {
          const size_t j = i - 2 * kAhead;
          const uint32_t e = events[j];
          layout.Add(*found[j % kRing], parsed.times[e], &parsed.values[e * num_values]);
        }
      }
    }
  }
}

absl::StatusOr<PushResult> FeaturePipeline::Push(absl::string_view source,
                                                 const rapidjson::Value& events,
                                                 std::vector<EventError>* errors,
                                                 const BeforeApply& before_apply,
                                                 const std::string* position) {
  absl::StatusOr<int> index = FindSource(source, SourceKind::kPush);
  if (!index.ok()) return index.status();
  int64_t max_time = absl::ToUnixNanos(options_.clock() + options_.max_future);
  absl::MutexLock lock(&ingest_mu_);
  SourceRuntime& rt = *sources_[*index];
  rt.parser.set_max_time(max_time);
  parsed_.Clear();
  std::vector<EventError> found;
  if (!rt.parser.ParseJson(events, &parsed_, &found)) {
    std::string message = absl::StrCat("source '", source, "': ", JoinEventErrors(found));
    if (errors) *errors = std::move(found);
    return absl::InvalidArgumentError(message);
  }
  PushResult result;
  const Watermark watermark = rt.watermark;
  Admit(*index, parsed_, &admitted_, &result.accepted, &result.late, &result.late_events);
  if (before_apply) {
    absl::Status status = before_apply(parsed_, admitted_);
    if (!status.ok()) {
      Unadmit(*index, watermark, result.accepted, result.late);
      return status;
    }
  }
  Apply(*index, parsed_, admitted_);
  if (position != nullptr && !position->empty()) {
    rt.position = *position;
    rt.position_dirty = true;
  }
  result.times.reserve(parsed_.size);
  for (int64_t t : parsed_.times) result.times.push_back(absl::FromUnixNanos(t));
  return result;
}

absl::StatusOr<PushResult> FeaturePipeline::PushJson(absl::string_view source,
                                                     absl::string_view json,
                                                     std::vector<EventError>* errors) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseIterativeFlag>(json.data(),
                                                                                 json.size());
  if (doc.HasParseError()) {
    return absl::InvalidArgumentError(
        absl::StrCat("source '", source, "': the events are not valid JSON at byte ",
                     doc.GetErrorOffset(), ": ", rapidjson::GetParseError_En(doc.GetParseError())));
  }
  return Push(source, doc, errors);
}

absl::StatusOr<StreamApplyResult> FeaturePipeline::ApplyStreamBatch(
    absl::string_view source, absl::Span<const StreamEntry> entries,
    absl::string_view last_position, const BeforeApply& before_apply) {
  absl::StatusOr<int> index = FindSource(source, SourceKind::kRedisStream);
  if (!index.ok()) return index.status();
  int64_t max_time = absl::ToUnixNanos(options_.clock() + options_.max_future);
  absl::MutexLock lock(&ingest_mu_);
  SourceRuntime& rt = *sources_[*index];
  rt.parser.set_max_time(max_time);
  parsed_.Clear();
  StreamApplyResult result;
  constexpr size_t kKeptErrors = 10;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!rt.parser.ParseFields(entries[i].fields, i, &parsed_,
                               result.errors.size() < kKeptErrors ? &result.errors : nullptr)) {
      ++result.invalid;
    }
  }
  const Watermark watermark = rt.watermark;
  Admit(*index, parsed_, &admitted_, &result.accepted, &result.late, nullptr);
  if (before_apply) {
    absl::Status status = before_apply(parsed_, admitted_);
    if (!status.ok()) {
      Unadmit(*index, watermark, result.accepted, result.late);
      return status;
    }
  }
  rt.invalid += result.invalid;
  Apply(*index, parsed_, admitted_);
  if (!last_position.empty()) {
    rt.position = std::string(last_position);
    rt.position_dirty = true;
  }
  return result;
}

std::optional<std::string> FeaturePipeline::Position(absl::string_view source) const {
  int index = registry_->SourceIndex(source);
  if (index < 0) return std::nullopt;
  absl::MutexLock lock(&ingest_mu_);
  return sources_[index]->position;
}

}  // namespace flywheel::features
