// FeatureService, replay at start: the pushes acknowledged (logged) after the last committed
// flush are read back from the event log and applied again, in ingestion-sequence order, before
// the service takes new events.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "features/ingest_log.h"
#include "features/service.h"

namespace flywheel::features {
namespace {

// Events re-applied per pipeline batch.
constexpr size_t kReplayBatch = 1000;

struct PendingEvent {
  uint64_t sequence;
  std::string json;
};

// The logged events as one JSON array, the pipeline's push input.
absl::StatusOr<rapidjson::Document> BatchOf(absl::Span<const PendingEvent> events) {
  std::string text = "[";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i > 0) text += ',';
    text += events[i].json;
  }
  text += ']';
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag | rapidjson::kParseIterativeFlag>(text.data(),
                                                                                 text.size());
  if (doc.HasParseError()) {
    return absl::DataLossError(absl::StrCat("an event with ingestion sequence in ",
                                            events.front().sequence, "..", events.back().sequence,
                                            " is not valid JSON"));
  }
  return doc;
}

}  // namespace

absl::Status FeatureService::ReplayPushes() {
  {
    absl::MutexLock lock(&sequence_mu_);
    next_sequence_.assign(registry_->sources().size(), 1);
  }
  for (size_t s = 0; s < registry_->sources().size(); ++s) {
    if (registry_->sources()[s].kind != SourceKind::kPush) continue;
    absl::Status status = ReplaySource(static_cast<int>(s));
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("source '", registry_->sources()[s].name,
                                       "': replaying the event log: ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status FeatureService::ReplaySource(int source) {
  const std::string& name = registry_->sources()[source].name;
  uint64_t committed = 0;
  if (std::optional<std::string> position = pipeline_->Position(name)) {
    if (!absl::SimpleAtoi(*position, &committed)) {
      return absl::DataLossError(
          absl::StrCat("the committed position '", *position, "' is not an ingestion sequence"));
    }
  }
  // Events after the committed ones were admitted against a watermark at least the restored one
  // (the committed states hold no newer event time), so older hours cannot hold any. The log
  // keeps microseconds: a second of margin.
  absl::Time from = absl::InfinitePast();
  const PipelineStats stats = pipeline_->Stats();
  if (stats.sources[source].watermark) from = *stats.sources[source].watermark - absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<EventLogReader>> reader =
      EventLogReader::Open(event_log_->dir(), {name}, from, absl::InfiniteFuture());
  if (!reader.ok()) return reader.status();
  std::vector<PendingEvent> pending;
  uint64_t last = committed;
  EventLogEntry entry;
  while (true) {
    absl::StatusOr<bool> next = (*reader)->Next(&entry);
    if (!next.ok()) return next.status();
    if (!*next) break;
    // Events logged before pushes carried a sequence are in the committed state or never were.
    std::optional<uint64_t> sequence = LoggedPushSequence(entry.json);
    if (!sequence || *sequence <= committed) continue;
    last = std::max(last, *sequence);
    pending.push_back(PendingEvent{*sequence, std::move(entry.json)});
  }
  std::sort(pending.begin(), pending.end(),
            [](const PendingEvent& a, const PendingEvent& b) { return a.sequence < b.sequence; });
  // A sequence is logged once; should a copy ever be there, it is applied once.
  pending.erase(std::unique(pending.begin(), pending.end(),
                            [](const PendingEvent& a, const PendingEvent& b) {
                              return a.sequence == b.sequence;
                            }),
                pending.end());
  {
    absl::MutexLock lock(&sequence_mu_);
    next_sequence_[source] = last + 1;
  }

  for (size_t start = 0; start < pending.size(); start += kReplayBatch) {
    absl::Span<const PendingEvent> batch =
        absl::MakeConstSpan(pending).subspan(start, kReplayBatch);
    absl::StatusOr<rapidjson::Document> events = BatchOf(batch);
    if (!events.ok()) return events.status();
    const std::string position = absl::StrCat(batch.back().sequence);
    absl::StatusOr<PushResult> result = pipeline_->Push(name, *events, nullptr, nullptr, &position);
    if (result.ok()) {
      replayed_events_ += result->accepted;
      continue;
    }
    if (result.status().code() != absl::StatusCode::kInvalidArgument) return result.status();
    // The definitions changed since these events were logged: apply those that still parse, one
    // at a time, and skip the others as a push of them would be refused now.
    for (const PendingEvent& event : batch) {
      absl::StatusOr<rapidjson::Document> one = BatchOf(absl::MakeConstSpan(&event, 1));
      if (!one.ok()) return one.status();
      const std::string one_position = absl::StrCat(event.sequence);
      absl::StatusOr<PushResult> applied =
          pipeline_->Push(name, *one, nullptr, nullptr, &one_position);
      if (applied.ok()) {
        replayed_events_ += applied->accepted;
      } else if (applied.status().code() != absl::StatusCode::kInvalidArgument) {
        return applied.status();
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace flywheel::features
