#include "features/stream_consumer.h"

#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "features/ingest_log.h"

namespace flywheel::features {
namespace {

// The millisecond part of an entry id "<ms>-<seq>"; nullopt for ids of another form.
std::optional<int64_t> IdMillis(absl::string_view id) {
  int64_t ms = 0;
  if (!absl::SimpleAtoi(id.substr(0, id.find('-')), &ms)) return std::nullopt;
  return ms;
}

}  // namespace

StreamConsumer::StreamConsumer(FeaturePipeline* pipeline, const SourceDef& source, EventLog* log,
                               StreamConsumerOptions options)
    : pipeline_(pipeline), source_(source), log_(log), options_(std::move(options)) {
  absl::MutexLock lock(&mu_);
  stats_.source = source.name;
  stats_.stream = source.stream;
}

StreamConsumer::~StreamConsumer() { Stop(); }

void StreamConsumer::Start() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Run(); });
}

void StreamConsumer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

StreamConsumerStats StreamConsumer::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

bool StreamConsumer::Sleep(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stop_), d);
  return !stop_;
}

void StreamConsumer::RecordError(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  ++stats_.errors;
  // One line per streak of failures, not one per retry.
  if (!failing_) {
    std::fprintf(stderr, "flywheel: features: source '%s' (Redis stream '%s' at %s): %s\n",
                 source_.name.c_str(), source_.stream.c_str(), options_.server.Address().c_str(),
                 std::string(status.message()).c_str());
    failing_ = true;
  }
}

absl::Status StreamConsumer::Step(StreamReader& reader, std::string* cursor) {
  absl::StatusOr<std::vector<StreamEntry>> entries =
      reader.Read(source_.stream, *cursor, options_.batch, options_.block);
  if (!entries.ok()) return entries.status();
  {
    absl::MutexLock lock(&mu_);
    stats_.connected = true;
    if (entries->size() < static_cast<size_t>(options_.batch)) stats_.lag_seconds = 0;
  }
  if (entries->empty()) return absl::OkStatus();
  std::vector<LoggedEvent> logged;
  auto log_batch = [&](const ParsedEvents& parsed,
                       absl::Span<const uint8_t> admitted) -> absl::Status {
    if (log_ == nullptr) return absl::OkStatus();
    logged.clear();
    LogStreamEntries(source_, *entries, parsed, admitted, &logged);
    if (logged.empty()) return absl::OkStatus();
    absl::Status status = log_->Append(source_.name, logged);
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("event log: ", status.message()));
    }
    return status;
  };
  const std::string& last = entries->back().id;
  absl::StatusOr<StreamApplyResult> applied =
      pipeline_->ApplyStreamBatch(source_.name, *entries, last, log_batch);
  if (!applied.ok()) return applied.status();
  *cursor = last;
  absl::MutexLock lock(&mu_);
  stats_.entries += entries->size();
  if (entries->size() >= static_cast<size_t>(options_.batch)) {
    if (std::optional<int64_t> ms = IdMillis(last)) {
      stats_.lag_seconds =
          std::max<double>(0, static_cast<double>(absl::ToUnixMillis(absl::Now()) - *ms) / 1000.0);
    }
  }
  return absl::OkStatus();
}

void StreamConsumer::Run() {
  std::unique_ptr<StreamReader> reader;
  // The position the pipeline restored, i.e. the last one committed with the state.
  std::string cursor = pipeline_->Position(source_.name).value_or("0");
  absl::Duration backoff = absl::Milliseconds(50);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
    }
    absl::Status status;
    if (reader == nullptr) {
      absl::StatusOr<std::unique_ptr<StreamReader>> opened = StreamReader::Open(options_.server);
      if (opened.ok()) {
        reader = std::move(*opened);
      } else {
        status = opened.status();
      }
    }
    if (reader != nullptr) status = Step(*reader, &cursor);
    if (status.ok()) {
      absl::MutexLock lock(&mu_);
      if (failing_) {
        std::fprintf(stderr, "flywheel: features: source '%s' reads Redis stream '%s' again\n",
                     source_.name.c_str(), source_.stream.c_str());
        failing_ = false;
      }
      backoff = absl::Milliseconds(50);
      continue;
    }
    RecordError(status);
    {
      absl::MutexLock lock(&mu_);
      stats_.connected = false;
    }
    // A batch that could not be logged or applied is read again from the same cursor.
    if (!Sleep(backoff)) break;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace flywheel::features
