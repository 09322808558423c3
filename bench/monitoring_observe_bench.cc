// What monitoring adds to one request, measured in-process without a server or a load generator
// (both noisy on a shared machine): VersionMonitor::Observe for an MLP ranker request (one FP32
// [1, 256] row, a [1, 1] score) with drift only, and with drift plus a 100% prediction log, whose
// writer thread's CPU (serialization, zstd, write) is counted too. bench/monitoring_bench.py runs
// it beside the server measurements.
//
//   build/bench/monitoring_observe_bench [--benchmark_format=json]
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <time.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "monitor/monitoring.h"
#include "monitor/profile.h"

namespace flywheel::monitor {
namespace {

constexpr int kFeatures = 256;
// Distinct rows cycled through, so that the log compresses realistic data (identical requests
// would compress to a few bytes each and cost the writer almost nothing).
constexpr int kPool = 4096;

double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Fixture {
  Fixture() {
    char pattern[] = "/tmp/flywheel-observe-bench-XXXXXX";
    dir = mkdtemp(pattern);
    const std::string version_dir = dir + "/mlp_ranker/1";
    std::filesystem::create_directories(version_dir);
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> uniform(-1, 1);
    Tensor reference = Tensor::Allocate(DataType::kFp32, Shape{4000, kFeatures});
    for (int64_t i = 0; i < reference.NumElements(); ++i) reference.data<float>()[i] = uniform(rng);
    Tensor scores = Tensor::Allocate(DataType::kFp32, Shape{4000, 1});
    for (int64_t i = 0; i < scores.NumElements(); ++i) scores.data<float>()[i] = uniform(rng);
    ReferenceProfile profile;
    profile.model = "mlp_ranker";
    profile.version = 1;
    profile.rows = 4000;
    profile.features =
        *ProfileTensor(reference, "features", FeatureRole::kInput, {}, {}, ProfileOptions{});
    auto out = *ProfileTensor(scores, "score", FeatureRole::kOutput, {}, {}, ProfileOptions{});
    profile.features.insert(profile.features.end(), out.begin(), out.end());
    (void)SaveProfile(profile, ProfilePath(version_dir));
    info = {"mlp_ranker", "1", version_dir, {}, {"score"}};
    for (int i = 0; i < kPool; ++i) {
      Tensor x = Tensor::Allocate(DataType::kFp32, Shape{1, kFeatures});
      for (int j = 0; j < kFeatures; ++j) x.data<float>()[j] = uniform(rng);
      Tensor y = Tensor::Allocate(DataType::kFp32, Shape{1, 1});
      y.data<float>()[0] = uniform(rng);
      inputs.push_back(std::move(x));
      outputs.push_back(std::move(y));
    }
  }
  ~Fixture() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::string dir;
  VersionInfo info;
  std::vector<Tensor> inputs;
  std::vector<Tensor> outputs;
};

// Destroyed at exit, which removes its folder.
Fixture& Shared() {
  static Fixture fixture;
  return fixture;
}

// range(0): 0 monitoring off (drift off, no log), 1 drift only, 2 drift + 100% log with zstd at
// level range(1) (1, or the default -1: larger files, less CPU), written with direct I/O when
// range(2) is 1 (the default) or through the page cache when 0.
void BM_Observe(benchmark::State& state) {
  Fixture& f = Shared();
  const int mode = static_cast<int>(state.range(0));
  MonitoringOptions options;
  options.drift = mode >= 1;
  if (mode == 2) {
    options.log_dir = f.dir + "/log-" + std::to_string(state.thread_index());
    options.log_sample_rate = 1;
    options.log_options.zstd_level = static_cast<int>(state.range(1));
    options.log_options.direct_io = state.range(2) != 0;
  }
  auto monitoring = Monitoring::Create(options);
  auto vm = (*monitoring)->OnVersionLoaded(f.info);
  const std::shared_ptr<const void> body = std::make_shared<int>(0);  // the request body's holder
  const double cpu_before = ProcessCpuSeconds();
  PredictionLog* log = (*monitoring)->prediction_log();
  int64_t i = 0;
  for (auto _ : state) {
    const TensorRef in[] = {{"features", &f.inputs[i % kPool]}};
    const TensorRef out[] = {{"score", &f.outputs[i % kPool]}};
    (*vm)->Observe("", in, out, body);
    // Unthrottled, this loop would outrun the writer and measure cheap drops; waiting for it
    // now and then keeps every record written, as a server below the writer's pace does.
    if (log != nullptr && ++i % 1024 == 0) log->Flush();
    if (log == nullptr) ++i;
  }
  // The writer's share: what it still has to write is part of the requests' cost.
  if (log != nullptr) log->Flush();
  const double cpu = ProcessCpuSeconds() - cpu_before;
  state.counters["process_cpu_ns_per_request"] =
      benchmark::Counter(cpu * 1e9 / static_cast<double>(i));
  if (log != nullptr) {
    const LogStats s = log->Stats();
    state.counters["log_dropped"] = benchmark::Counter(static_cast<double>(s.dropped));
    state.counters["log_bytes_per_record"] = benchmark::Counter(
        s.written > 0 ? static_cast<double>(s.bytes_written) / static_cast<double>(s.written) : 0);
  }
  vm->reset();
  monitoring->reset();
  // A run at full speed writes gigabytes; keep only what the next run needs.
  if (!options.log_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(options.log_dir, ec);
  }
}
BENCHMARK(BM_Observe)
    ->ArgNames({"mode", "zstd_level", "direct_io"})
    ->Args({0, 1, 1})
    ->Args({1, 1, 1})
    ->Args({2, 1, 1})
    ->Args({2, -1, 0})
    ->Args({2, -1, 1})
    ->UseRealTime();

}  // namespace
}  // namespace flywheel::monitor

BENCHMARK_MAIN();
