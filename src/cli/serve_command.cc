// `flywheel serve`: the inference server. Serves the models of one or more Triton-layout model
// repositories over KServe v2 HTTP and gRPC, with Prometheus metrics on a third port. SIGTERM or
// SIGINT: stop accepting, finish what is in flight (up to --exit-timeout-secs), exit 0. With
// --features DIR it also runs the feature store (/v1/features/ and feature_lookup steps).
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "api/grpc/grpc_server.h"
#include "api/http/features_handler.h"
#include "api/http/http_server.h"
#include "api/http/loop_handler.h"
#include "api/http/monitor_handler.h"
#include "api/http/registry_handler.h"
#include "api/http/rollout_handler.h"
#include "cli/commands.h"
#include "features/feature_source_adapter.h"
#include "features/service.h"
#include "lifecycle/loop.h"
#include "lifecycle/loop_config.h"
#include "lifecycle/registry.h"
#include "lifecycle/rollout.h"
#include "monitor/metrics.h"
#include "monitor/monitoring.h"
#include "serving/server.h"

namespace flywheel::cli {
namespace {

struct ServeOptions {
  std::vector<std::string> repositories;
  int http_port = 8000;
  int grpc_port = 8001;
  int metrics_port = 8002;
  std::string bind = "0.0.0.0";
  std::string control_mode = "none";
  int poll_secs = 15;
  std::vector<std::string> load_models;
  bool strict_readiness = true;
  int exit_timeout_secs = 30;
  std::string admin_token;
  size_t max_request_bytes = size_t{64} << 20;
  int http_threads = 2;
  int intra_op_threads = 1;
  int load_threads = 4;
  std::string prediction_log_dir;
  double log_sample_rate = 1.0;
  std::string drift = "on";
  int64_t label_horizon_secs = 86400;
  int64_t log_queue_capacity = 16384;
  int log_compression_level = -1;
  std::string features_dir;
  std::string online_store;
  std::string data_dir = "flywheel-data";
  std::string stream_redis;
  std::string loops_dir;
};

int RunServe(const ServeOptions& opt) {
  // Block the shutdown signals in every thread (threads inherit the mask); the main thread waits
  // for them with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  serving::ServerOptions server_options;
  server_options.model_repositories = opt.repositories;
  if (opt.control_mode == "none") {
    server_options.control_mode = serving::ModelControlMode::kNone;
  } else if (opt.control_mode == "poll") {
    server_options.control_mode = serving::ModelControlMode::kPoll;
  } else {
    server_options.control_mode = serving::ModelControlMode::kExplicit;
  }
  server_options.repository_poll_secs = opt.poll_secs;
  server_options.startup_models = opt.load_models;
  server_options.strict_readiness = opt.strict_readiness;
  server_options.intra_op_threads = opt.intra_op_threads;
  server_options.load_threads = opt.load_threads;

  // Aliases set with `flywheel models alias|promote` name versions in requests
  // (/v2/models/rank/versions/production/infer, or the parameter model_version).
  std::vector<std::unique_ptr<lifecycle::Registry>> registries;
  for (const std::string& repository : opt.repositories) {
    auto registry = lifecycle::Registry::Open(repository, {});
    if (!registry.ok()) {
      std::fprintf(stderr, "flywheel serve: %s\n",
                   std::string(registry.status().message()).c_str());
      return 1;
    }
    registries.push_back(*std::move(registry));
  }
  server_options.resolve_version_alias =
      [&registries](const std::string& model, const std::string& label) -> absl::StatusOr<int64_t> {
    absl::Status last = absl::NotFoundError(absl::StrCat("model '", model, "' is unknown"));
    for (const auto& registry : registries) {
      absl::StatusOr<int64_t> version = registry->Resolve(model, label);
      if (version.ok()) return version;
      last = version.status();
    }
    return last;
  };

  monitor::Registry registry;
  monitor::AddProcessCollector(registry);
  // Before the model server, whose feature_lookup steps read it; stopped after it drained.
  std::unique_ptr<features::FeatureService> feature_store;
  std::unique_ptr<features::ServiceFeatureSource> feature_source;
  if (!opt.features_dir.empty()) {
    features::FeatureServiceOptions feature_options;
    feature_options.definitions_dir = opt.features_dir;
    feature_options.data_dir = opt.data_dir;
    feature_options.online_store = opt.online_store;
    feature_options.stream_redis = opt.stream_redis;
    auto started = features::FeatureService::Start(feature_options, &registry);
    if (!started.ok()) {
      std::fprintf(stderr, "flywheel serve: features: %s\n",
                   std::string(started.status().message()).c_str());
      return 1;
    }
    feature_store = std::move(*started);
    feature_source = std::make_unique<features::ServiceFeatureSource>(feature_store.get());
    server_options.feature_source = feature_source.get();
    std::fprintf(stderr, "features: %zu views from %s, online store %s, event log %s\n",
                 feature_store->registry().views().size(), opt.features_dir.c_str(),
                 feature_store->store().Describe().c_str(), feature_store->event_log_dir().c_str());
  }
  // Before the model server, whose versions it observes; closed (writing the log's last records)
  // after the server is gone.
  monitor::MonitoringOptions monitoring_options;
  monitoring_options.log_dir = opt.prediction_log_dir;
  monitoring_options.log_sample_rate = opt.log_sample_rate;
  monitoring_options.drift = opt.drift == "on";
  monitoring_options.quality.horizon = absl::Seconds(opt.label_horizon_secs);
  monitoring_options.log_options.queue_capacity = opt.log_queue_capacity;
  monitoring_options.log_options.zstd_level = opt.log_compression_level;
  auto monitoring = monitor::Monitoring::Create(monitoring_options);
  if (!monitoring.ok()) {
    std::fprintf(stderr, "flywheel serve: monitoring: %s\n",
                 std::string(monitoring.status().message()).c_str());
    return 1;
  }
  (*monitoring)->RegisterMetrics(&registry);
  server_options.monitoring = monitoring->get();
  if (!opt.prediction_log_dir.empty()) {
    std::fprintf(stderr,
                 "monitoring: prediction log in %s (sample rate %g unless a model sets "
                 "log_sample_rate), drift %s\n",
                 opt.prediction_log_dir.c_str(), opt.log_sample_rate, opt.drift.c_str());
  }
  auto server = serving::Server::Create(server_options, &registry);
  if (!server.ok()) {
    std::fprintf(stderr, "flywheel serve: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  for (const serving::ModelIndexEntry& e : (*server)->RepositoryIndex(false)) {
    std::fprintf(stderr, "model %-20s version %-4s %s%s%s\n", e.name.c_str(),
                 e.version.empty() ? "-" : e.version.c_str(),
                 e.state.empty() ? "NOT LOADED" : e.state.c_str(), e.reason.empty() ? "" : ": ",
                 e.reason.c_str());
  }

  api::HttpOptions http_options;
  http_options.bind = opt.bind;
  http_options.port = opt.http_port;
  http_options.io_threads = opt.http_threads;
  http_options.max_request_bytes = opt.max_request_bytes;
  http_options.admin_token = opt.admin_token;
  api::HttpRoutes routes;
  if (feature_store) {
    api::FeaturesHandlerOptions handler_options;
    handler_options.max_request_bytes = opt.max_request_bytes;
    routes.emplace_back("features", api::MakeFeaturesHandler(feature_store.get(), handler_options));
  }
  routes.emplace_back("monitor",
                      api::MakeMonitorHandler(monitoring->get(), {opt.max_request_bytes, 1}));
  std::vector<lifecycle::Registry*> registry_views;
  for (const auto& r : registries) registry_views.push_back(r.get());
  routes.emplace_back("registry",
                      api::MakeRegistryHandler(std::move(registry_views),
                                               {opt.admin_token, opt.max_request_bytes, 1}));
  // Rollouts: each model's traffic split as its rollout.json says, before any traffic arrives;
  // a bad file is reported and the other models' rollouts still apply.
  std::vector<lifecycle::Registry*> rollout_registries;
  for (const auto& r : registries) rollout_registries.push_back(r.get());
  auto rollouts = lifecycle::RolloutController::Create(server->get(), rollout_registries,
                                                       monitoring->get(), &registry);
  if (!rollouts.ok()) {
    std::fprintf(stderr, "flywheel serve: rollouts: %s\n",
                 std::string(rollouts.status().message()).c_str());
    return 1;
  }
  if (absl::Status restored = (*rollouts)->Restore(); !restored.ok()) {
    std::fprintf(stderr, "flywheel serve: rollouts: %s\n", std::string(restored.message()).c_str());
  }
  for (const lifecycle::RolloutStatus& r : (*rollouts)->List()) {
    std::fprintf(stderr, "rollout %-18s %s %s, version %lld -> %lld\n", r.spec.model.c_str(),
                 lifecycle::RolloutPolicyName(r.spec.policy), lifecycle::RolloutStateName(r.state),
                 static_cast<long long>(r.spec.stable), static_cast<long long>(r.spec.candidate));
  }
  routes.emplace_back(
      "rollouts",
      api::MakeRolloutHandler(rollouts->get(), {opt.admin_token, opt.max_request_bytes, 1}));
  // Retraining loops: checked against the served models now, so that a loop that could never
  // run (a model loading one version only, no prediction log) stops the start.
  std::unique_ptr<lifecycle::LoopRunner> loops;
  if (!opt.loops_dir.empty()) {
    auto definitions = lifecycle::ReadLoopDefinitions(opt.loops_dir);
    if (!definitions.ok()) {
      std::fprintf(stderr, "flywheel serve: loops: %s\n",
                   std::string(definitions.status().message()).c_str());
      return 1;
    }
    lifecycle::LoopServices services;
    services.server = server->get();
    services.rollouts = rollouts->get();
    services.registries = rollout_registries;
    services.monitoring = monitoring->get();
    services.metrics = &registry;
    services.work_dir = std::filesystem::absolute(opt.data_dir + "/loops").string();
    const size_t count = definitions->size();
    auto runner = lifecycle::LoopRunner::Create(*std::move(definitions), services);
    if (!runner.ok()) {
      std::fprintf(stderr, "flywheel serve: loops: %s\n",
                   std::string(runner.status().message()).c_str());
      return 1;
    }
    loops = *std::move(runner);
    for (const lifecycle::LoopState& state : loops->States()) {
      std::fprintf(stderr, "loop %-18s model %s, %lld runs so far, history %s\n",
                   state.name.c_str(), state.model.c_str(), static_cast<long long>(state.run),
                   state.history_path.c_str());
    }
    std::fprintf(stderr, "flywheel serve: %zu retraining loop(s) from %s\n", count,
                 opt.loops_dir.c_str());
    routes.emplace_back(
        "loops", api::MakeLoopHandler(loops.get(), {opt.admin_token, opt.max_request_bytes}));
  }
  auto http = api::HttpServer::StartInference(http_options, server->get(), routes);
  if (!http.ok()) {
    std::fprintf(stderr, "flywheel serve: HTTP: %s\n",
                 std::string(http.status().message()).c_str());
    return 1;
  }
  api::HttpOptions metrics_options = http_options;
  metrics_options.port = opt.metrics_port;
  metrics_options.io_threads = 1;
  auto metrics = api::HttpServer::StartMetrics(metrics_options, &registry);
  if (!metrics.ok()) {
    std::fprintf(stderr, "flywheel serve: metrics: %s\n",
                 std::string(metrics.status().message()).c_str());
    return 1;
  }
  api::GrpcOptions grpc_options;
  grpc_options.bind = opt.bind;
  grpc_options.port = opt.grpc_port;
  grpc_options.max_message_bytes = opt.max_request_bytes;
  grpc_options.admin_token = opt.admin_token;
  auto grpc = api::GrpcServer::Start(grpc_options, server->get());
  if (!grpc.ok()) {
    std::fprintf(stderr, "flywheel serve: gRPC: %s\n",
                 std::string(grpc.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr,
               "flywheel serve: HTTP on %s:%d, gRPC on %s:%d, metrics on http://%s:%d/metrics\n",
               opt.bind.c_str(), (*http)->port(), opt.bind.c_str(), (*grpc)->port(),
               opt.bind.c_str(), (*metrics)->port());

  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "flywheel serve: %s received, finishing requests in flight (up to %ds)\n",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", opt.exit_timeout_secs);
  (*http)->StopAccepting();
  const bool drained = (*server)->Drain(int64_t{opt.exit_timeout_secs} * 1000);
  // The answers are computed; let the connections write them before the I/O threads stop.
  (*http)->FinishReplies(2000);
  (*grpc)->Shutdown(1000);
  (*http)->Shutdown();
  (*metrics)->Shutdown();
  if (!drained) {
    std::fprintf(stderr, "flywheel serve: requests still in flight after %ds; exiting anyway\n",
                 opt.exit_timeout_secs);
  }
  server->reset();
  monitoring->reset();
  if (feature_store) {
    absl::Status flushed = feature_store->Stop();
    if (!flushed.ok()) {
      std::fprintf(stderr, "flywheel serve: features: last flush: %s\n",
                   std::string(flushed.message()).c_str());
    }
  }
  std::fprintf(stderr, "flywheel serve: stopped\n");
  return 0;
}

}  // namespace

Command AddServeCommand(CLI::App& app) {
  auto opt = std::make_shared<ServeOptions>();
  CLI::App* sub = app.add_subcommand("serve",
                                     "Serve a Triton-layout model repository over "
                                     "KServe v2 HTTP and gRPC");
  sub->add_option("--model-repository", opt->repositories, "model repository folder (repeatable)")
      ->required();
  sub->add_option("--http-port", opt->http_port, "HTTP port (KServe v2)")->capture_default_str();
  sub->add_option("--grpc-port", opt->grpc_port, "gRPC port (KServe v2)")->capture_default_str();
  sub->add_option("--metrics-port", opt->metrics_port, "Prometheus metrics port")
      ->capture_default_str();
  sub->add_option("--bind", opt->bind, "address to listen on")->capture_default_str();
  sub->add_option("--model-control-mode", opt->control_mode,
                  "none: load all at start; poll: also reload on change; explicit: load what "
                  "--load-model and the load API ask")
      ->check(CLI::IsMember({"none", "poll", "explicit"}))
      ->capture_default_str();
  sub->add_option("--repository-poll-secs", opt->poll_secs, "poll interval (poll mode)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--load-model", opt->load_models,
                  "model to load at start in explicit mode ('*' for all; repeatable)");
  sub->add_flag("--strict-readiness{true}", opt->strict_readiness,
                "ready only when every model loaded at start is ready (=false to relax)")
      ->capture_default_str();
  sub->add_option("--exit-timeout-secs", opt->exit_timeout_secs,
                  "on SIGTERM, how long to wait for requests in flight")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  sub->add_option("--admin-token", opt->admin_token,
                  "require 'Authorization: Bearer TOKEN' on repository load/unload/index");
  sub->add_option("--max-request-bytes", opt->max_request_bytes,
                  "largest request body accepted (413 above)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--http-threads", opt->http_threads, "HTTP I/O threads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--threads", opt->intra_op_threads, "intra-op threads per model instance")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--load-threads", opt->load_threads, "models loaded in parallel")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--features", opt->features_dir,
                  "feature definitions folder (YAML): runs the feature store, its /v1/features/ "
                  "endpoints and feature_lookup steps");
  sub->add_option("--online-store", opt->online_store,
                  "feature online store: rocksdb:PATH or redis://host:port[/db] "
                  "(default: rocksdb:<data-dir>/features)");
  sub->add_option("--data-dir", opt->data_dir,
                  "server data: the feature event log (<dir>/events) and the embedded online "
                  "store (<dir>/features)")
      ->capture_default_str();
  sub->add_option("--stream-redis", opt->stream_redis,
                  "Redis server that redis_stream feature sources read (default: the online "
                  "store's, when it is redis://)");
  sub->add_option("--loops", opt->loops_dir,
                  "retraining loop definitions (a folder of YAML files): each retrains its model "
                  "from the prediction log and labels, gates and rolls out the candidate; needs "
                  "--prediction-log-dir, files under <data-dir>/loops")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--prediction-log-dir", opt->prediction_log_dir,
                  "write sampled requests (inputs, outputs) to zstd JSON Lines files here, read "
                  "with `flywheel log cat`; no prediction log without it");
  sub->add_option("--log-sample-rate", opt->log_sample_rate,
                  "share of requests logged, for models whose config does not set the parameter "
                  "log_sample_rate")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sub->add_option("--log-queue-capacity", opt->log_queue_capacity,
                  "prediction log records accepted and not yet written, at most: more are dropped "
                  "(counted in flywheel_prediction_log_dropped_total), and a kill -9 loses no more")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--log-compression-level", opt->log_compression_level,
                  "zstd level of the prediction log: negative levels are fastest (the writer's CPU "
                  "is the cost of logging), 1..19 compress more")
      ->check(CLI::Range(-7, 19))
      ->capture_default_str();
  sub->add_option("--drift", opt->drift,
                  "live drift against each version's profile.json, for models whose config does "
                  "not set the parameter drift")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  sub->add_option("--label-horizon-secs", opt->label_horizon_secs,
                  "how long a prediction waits for its label (POST /v1/monitor/labels)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  return {sub, [opt] { return RunServe(*opt); }};
}

}  // namespace flywheel::cli
