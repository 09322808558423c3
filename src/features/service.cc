#include "features/service.h"

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "features/ingest_log.h"
#include "features/redis_store.h"
#include "features/service_metrics.h"
#include "features/stream_consumer.h"

namespace flywheel::features {

absl::StatusOr<std::unique_ptr<FeatureService>> FeatureService::Start(
    const FeatureServiceOptions& options, monitor::Registry* metrics) {
  std::unique_ptr<FeatureService> service(new FeatureService());
  absl::Status status = service->Init(options, metrics);
  if (!status.ok()) return status;
  return service;
}

absl::Status FeatureService::Init(const FeatureServiceOptions& options,
                                  monitor::Registry* metrics) {
  absl::StatusOr<FeatureRegistry> registry = FeatureRegistry::LoadDir(options.definitions_dir);
  if (!registry.ok()) {
    return absl::Status(registry.status().code(),
                        absl::StrCat("feature definitions: ", registry.status().message()));
  }
  registry_ = std::make_unique<FeatureRegistry>(std::move(*registry));

  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "feature store: cannot create the data folder '", options.data_dir, "': ", ec.message()));
  }
  const std::string url = options.online_store.empty()
                              ? absl::StrCat("rocksdb:", options.data_dir, "/features")
                              : options.online_store;
  const bool redis_store = absl::StartsWith(url, "redis://");
  absl::StatusOr<std::unique_ptr<OnlineStore>> store = OpenOnlineStore(url);
  if (!store.ok()) {
    return absl::Status(store.status().code(),
                        absl::StrCat("online store: ", store.status().message()));
  }
  store_ = std::move(*store);

  EventLogOptions log_options;
  log_options.dir = absl::StrCat(options.data_dir, "/events");
  log_options.sync = options.sync_event_log;
  absl::StatusOr<std::unique_ptr<EventLog>> log = EventLog::Open(log_options);
  if (!log.ok()) {
    return absl::Status(log.status().code(), absl::StrCat("event log: ", log.status().message()));
  }
  event_log_ = std::move(*log);

  // An embedded store is this server's alone: everything it holds is restored into memory, so a
  // miss in memory is a miss in the store too. A Redis store may hold entities that another
  // server wrote after this one started.
  PipelineOptions pipeline_options = options.pipeline;
  pipeline_options.read_store_on_miss = redis_store;
  lookups_may_block_ = redis_store;
  pipeline_ = std::make_unique<FeaturePipeline>(*registry_, store_.get(), pipeline_options);
  absl::Status restored = pipeline_->Restore();
  if (!restored.ok()) return restored;
  absl::Status replayed = ReplayPushes();
  if (!replayed.ok()) return replayed;

  std::vector<const SourceDef*> streams;
  for (const SourceDef& source : registry_->sources()) {
    if (source.kind == SourceKind::kRedisStream) streams.push_back(&source);
  }
  if (!streams.empty()) {
    std::string redis_url = options.stream_redis;
    if (redis_url.empty() && redis_store) redis_url = url;
    if (redis_url.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "source '", streams.front()->name, "' reads the Redis stream '", streams.front()->stream,
          "': pass --stream-redis redis://host:port (or use a redis:// online store)"));
    }
    absl::StatusOr<RedisStoreOptions> redis = ParseRedisUrl(redis_url);
    if (!redis.ok()) {
      return absl::Status(redis.status().code(),
                          absl::StrCat("stream Redis: ", redis.status().message()));
    }
    StreamConsumerOptions consumer_options;
    consumer_options.server = redis->server;
    consumer_options.batch = std::max(options.stream_batch, 1);
    consumer_options.block = options.stream_block;
    for (const SourceDef* source : streams) {
      consumers_.push_back(std::make_unique<StreamConsumer>(pipeline_.get(), *source,
                                                            event_log_.get(), consumer_options));
    }
  }

  views_json_ = ViewsToJson(*registry_);
  if (metrics != nullptr) {
    metrics_ = std::make_unique<ServiceMetrics>(*metrics, this, registry_->sources().size());
  }
  pipeline_->StartBackgroundFlush(options.flush_interval);
  for (auto& consumer : consumers_) consumer->Start();
  return absl::OkStatus();
}

FeatureService::~FeatureService() {
  Stop().IgnoreError();
  // The collector reads the consumers and the pipeline: gone before they are.
  metrics_.reset();
}

absl::Status FeatureService::Stop() {
  if (stopped_.exchange(true) || pipeline_ == nullptr) return absl::OkStatus();
  for (auto& consumer : consumers_) consumer->Stop();
  pipeline_->StopBackgroundFlush();
  return pipeline_->Flush();
}

std::vector<StreamConsumerStats> FeatureService::StreamStats() const {
  std::vector<StreamConsumerStats> stats;
  for (const auto& consumer : consumers_) stats.push_back(consumer->Stats());
  return stats;
}

absl::StatusOr<PushOutcome> FeatureService::Push(absl::string_view source,
                                                 const rapidjson::Value& events,
                                                 std::vector<EventError>* errors) {
  if (stopped_.load()) {
    return absl::UnavailableError("the feature store is shutting down; retry on another server");
  }
  const int index = registry_->SourceIndex(source);
  std::vector<LoggedEvent> logged;
  std::string position;
  // Runs under the pipeline's ingestion lock, in the order batches are applied (only for a push
  // source the pipeline found, so `index` is valid).
  auto log_batch = [&](const ParsedEvents& parsed,
                       absl::Span<const uint8_t> admitted) -> absl::Status {
    uint64_t first = 0;
    {
      absl::MutexLock lock(&sequence_mu_);
      first = next_sequence_[index];
      size_t n = LogPushedEvents(events, parsed, admitted, first, &logged);
      next_sequence_[index] = first + n;
    }
    if (logged.empty()) return absl::OkStatus();
    absl::Status status = event_log_->Append(source, logged);
    if (!status.ok()) {
      if (metrics_ != nullptr) metrics_->event_log_errors.fetch_add(1);
      return absl::Status(status.code(),
                          absl::StrCat("source '", source, "': appending to the event log: ",
                                       status.message(), " (nothing was applied; retry)"));
    }
    position = absl::StrCat(first + logged.size() - 1);
    return status;
  };
  absl::StatusOr<PushResult> result = pipeline_->Push(source, events, errors, log_batch, &position);
  if (!result.ok()) {
    if (metrics_ != nullptr && result.status().code() == absl::StatusCode::kInvalidArgument) {
      if (index >= 0) metrics_->AddRejected(index, events.IsArray() ? events.Size() : 1);
    }
    return result.status();
  }
  return PushOutcome{result->accepted, result->late};
}

void FeatureService::ObserveLookup(absl::Time start, absl::string_view path) const {
  if (metrics_ == nullptr) return;
  metrics_->ObserveLookup(path, absl::ToDoubleMicroseconds(absl::Now() - start));
}

absl::StatusOr<LookupResult> FeatureService::Lookup(const LookupRequest& request) const {
  const absl::Time start = absl::Now();
  absl::StatusOr<LookupResult> result = GetOnlineFeatures(*pipeline_, request);
  ObserveLookup(start, "http");
  return result;
}

absl::Status FeatureService::ValidateNumeric(absl::Span<const std::string> features) const {
  return ValidateNumericFeatures(*registry_, features);
}

absl::Status FeatureService::LookupNumeric(absl::Span<const std::string> keys,
                                           absl::Span<const std::string> features,
                                           float missing_value, float* values,
                                           uint8_t* present) const {
  const absl::Time start = absl::Now();
  absl::Status status = LookupNumericFeatures(*pipeline_, keys, features, pipeline_->Now(),
                                              missing_value, values, present);
  ObserveLookup(start, "inference");
  return status;
}

}  // namespace flywheel::features
