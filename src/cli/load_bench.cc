#include "cli/load_bench.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <mutex>
#include <thread>

#include <fmt/core.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace flywheel::cli {
namespace {

using Clock = std::chrono::steady_clock;

// More load threads than this is a typo, not a benchmark.
constexpr int kMaxConcurrency = 4096;

// One (batch, concurrency) measurement.
struct LevelResult {
  int64_t batch = 0;
  int concurrency = 0;
  uint64_t requests = 0;
  double window_s = 0;
  double p50_us = 0, p90_us = 0, p99_us = 0, mean_us = 0, min_us = 0, max_us = 0;
  // Server side, per request over the window; NaN when the server counted nothing.
  double queue_us = NAN, compute_input_us = NAN, compute_infer_us = NAN, compute_output_us = NAN;
  uint64_t server_inferences = 0, server_executions = 0;

  double requests_per_s() const { return window_s > 0 ? requests / window_s : 0; }
  double inferences_per_s() const { return requests_per_s() * batch; }
  double compute_us() const { return compute_input_us + compute_infer_us + compute_output_us; }
};

double AverageUs(const StatDuration& before, const StatDuration& after) {
  const uint64_t count = after.count - before.count;
  if (after.count < before.count || count == 0) return NAN;
  return static_cast<double>(after.ns - before.ns) / count / 1000.0;
}

absl::StatusOr<int> ParsePositive(absl::string_view text, absl::string_view spec) {
  int value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 1 || value > kMaxConcurrency) {
    return absl::InvalidArgumentError(absl::StrCat("--concurrency '", spec, "': '", text,
                                                   "' is not a number in 1..", kMaxConcurrency));
  }
  return value;
}

// Closed loop: `concurrency` connections each send a request as soon as their previous one is
// answered. Throughput and latencies count the requests that finish inside the window, which
// opens once every connection has finished its warm-up.
absl::StatusOr<LevelResult> MeasureLevel(Transport& transport, const LoadBenchOptions& opt,
                                         const std::vector<InputTensor>& inputs,
                                         const std::vector<std::string>& outputs, int64_t batch,
                                         int concurrency) {
  constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  std::atomic<int64_t> window_start{kNever}, window_end{kNever};
  std::atomic<bool> stop{false};
  // With no warm-up, every connection counts as warm from the start.
  std::atomic<int> warmed{opt.warmup <= 0 ? concurrency : 0};
  std::mutex error_mu;
  absl::Status first_error;
  // Per connection, touched only by the thread that drives it.
  std::vector<std::vector<double>> latencies(concurrency);
  std::vector<int> finished(concurrency, 0);
  for (std::vector<double>& v : latencies) v.reserve(4096);

  auto done = [&](int k, int64_t start_ns, int64_t end_ns, const absl::Status& status) {
    if (!status.ok()) {
      std::lock_guard<std::mutex> lock(error_mu);
      if (first_error.ok()) first_error = status;
      stop.store(true);
      return false;
    }
    if (++finished[k] == opt.warmup) warmed.fetch_add(1);
    if (end_ns >= window_start.load(std::memory_order_relaxed) &&
        end_ns <= window_end.load(std::memory_order_relaxed)) {
      latencies[k].push_back(static_cast<double>(end_ns - start_ns) / 1000.0);
    }
    return !stop.load(std::memory_order_relaxed);
  };
  LoadSpec spec;
  spec.model = opt.model;
  spec.inputs = inputs;
  spec.outputs = outputs;
  spec.concurrency = concurrency;
  spec.threads = opt.client_threads;
  auto run = transport.StartLoad(spec, done);
  if (!run.ok()) return run.status();
  auto finish = [&]() -> absl::Status {
    stop.store(true);
    (*run)->Join();
    std::lock_guard<std::mutex> lock(error_mu);
    return first_error;
  };

  while (warmed.load() < concurrency && !stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (stop.load()) return finish();
  absl::StatusOr<ServerStats> before = transport.Stats(opt.model);
  const Clock::time_point t0 = Clock::now();
  window_start.store(SteadyNs(t0));
  const Clock::time_point deadline = t0 + std::chrono::duration_cast<Clock::duration>(
                                              std::chrono::duration<double>(opt.duration_secs));
  while (Clock::now() < deadline && !stop.load()) {
    std::this_thread::sleep_for(
        std::min<Clock::duration>(deadline - Clock::now(), std::chrono::milliseconds(10)));
  }
  const Clock::time_point t1 = Clock::now();
  window_end.store(SteadyNs(t1));
  absl::StatusOr<ServerStats> after = transport.Stats(opt.model);
  absl::Status status = finish();
  if (!status.ok()) return status;
  if (!before.ok()) return before.status();
  if (!after.ok()) return after.status();

  std::vector<double> all;
  for (const std::vector<double>& v : latencies) all.insert(all.end(), v.begin(), v.end());
  if (all.empty()) {
    return absl::DeadlineExceededError(absl::StrCat(
        "no request finished within the ", opt.duration_secs, " s window; raise --duration-secs"));
  }
  std::sort(all.begin(), all.end());
  LevelResult r;
  r.batch = batch;
  r.concurrency = concurrency;
  r.requests = all.size();
  r.window_s = std::chrono::duration<double>(t1 - t0).count();
  r.p50_us = Percentile(all, 50);
  r.p90_us = Percentile(all, 90);
  r.p99_us = Percentile(all, 99);
  double sum = 0;
  for (double v : all) sum += v;
  r.mean_us = sum / all.size();
  r.min_us = all.front();
  r.max_us = all.back();
  r.queue_us = AverageUs(before->queue, after->queue);
  r.compute_input_us = AverageUs(before->compute_input, after->compute_input);
  r.compute_infer_us = AverageUs(before->compute_infer, after->compute_infer);
  r.compute_output_us = AverageUs(before->compute_output, after->compute_output);
  r.server_inferences = after->inference_count - before->inference_count;
  r.server_executions = after->execution_count - before->execution_count;
  return r;
}

std::string Signature(const std::vector<InputTensor>& inputs) {
  std::vector<std::string> parts;
  for (const InputTensor& t : inputs) {
    parts.push_back(
        absl::StrCat(t.name, " ", DataTypeName(t.dtype), " [", absl::StrJoin(t.shape, ","), "]"));
  }
  return absl::StrJoin(parts, ", ");
}

std::string FormatUs(double us) { return std::isnan(us) ? "-" : fmt::format("{:.0f}", us); }

void PrintHeader() {
  fmt::print("{:>6} {:>11} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10} {:>11}\n", "batch",
             "concurrency", "infer/s", "req/s", "p50_us", "p90_us", "p99_us", "queue_us",
             "compute_us");
}

void PrintRow(const LevelResult& r) {
  fmt::print("{:>6} {:>11} {:>12.1f} {:>10.1f} {:>10.0f} {:>10.0f} {:>10.0f} {:>10} {:>11}\n",
             r.batch, r.concurrency, r.inferences_per_s(), r.requests_per_s(), r.p50_us, r.p90_us,
             r.p99_us, FormatUs(r.queue_us), FormatUs(r.compute_us()));
  std::fflush(stdout);
}

template <typename Writer>
void WriteNumber(Writer& w, const char* key, double v) {
  w.Key(key);
  if (std::isnan(v)) {
    w.Null();
  } else {
    w.Double(std::round(v * 10) / 10);
  }
}

std::string ResultsJson(const LoadBenchOptions& opt, const std::string& server,
                        const ModelMetadata& metadata, const std::vector<LevelResult>& results) {
  rapidjson::StringBuffer buffer;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
  w.SetIndent(' ', 2);
  w.SetFormatOptions(rapidjson::kFormatSingleLineArray);
  w.StartObject();
  w.Key("server");
  w.String(server.c_str());
  w.Key("model");
  w.String(opt.model.c_str());
  w.Key("protocol");
  w.String(opt.protocol.c_str());
  w.Key("input_data");
  w.String(opt.input_data.c_str());
  w.Key("duration_secs");
  w.Double(opt.duration_secs);
  w.Key("warmup_requests_per_connection");
  w.Int(opt.warmup);
  w.Key("client_threads");
  w.Int(opt.client_threads);
  w.Key("inputs");
  w.StartArray();
  for (const TensorSpec& t : metadata.inputs) {
    w.StartObject();
    w.Key("name");
    w.String(t.name.c_str());
    w.Key("datatype");
    w.String(std::string(DataTypeName(t.dtype)).c_str());
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape) w.Int64(d);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.Key("results");
  w.StartArray();
  for (const LevelResult& r : results) {
    w.StartObject();
    w.Key("batch");
    w.Int64(r.batch);
    w.Key("concurrency");
    w.Int(r.concurrency);
    w.Key("requests");
    w.Uint64(r.requests);
    WriteNumber(w, "window_s", r.window_s);
    WriteNumber(w, "throughput_infer_per_s", r.inferences_per_s());
    WriteNumber(w, "throughput_req_per_s", r.requests_per_s());
    WriteNumber(w, "p50_us", r.p50_us);
    WriteNumber(w, "p90_us", r.p90_us);
    WriteNumber(w, "p99_us", r.p99_us);
    WriteNumber(w, "mean_us", r.mean_us);
    WriteNumber(w, "min_us", r.min_us);
    WriteNumber(w, "max_us", r.max_us);
    WriteNumber(w, "server_queue_us", r.queue_us);
    WriteNumber(w, "server_compute_input_us", r.compute_input_us);
    WriteNumber(w, "server_compute_infer_us", r.compute_infer_us);
    WriteNumber(w, "server_compute_output_us", r.compute_output_us);
    WriteNumber(w, "server_compute_us", r.compute_us());
    w.Key("server_inferences");
    w.Uint64(r.server_inferences);
    w.Key("server_executions");
    w.Uint64(r.server_executions);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

}  // namespace

void AddLoadBenchOptions(CLI::App& bench, LoadBenchOptions& opt) {
  bench.add_option("--url", opt.url,
                   "benchmark a running server instead of a file: http://HOST:PORT (gRPC: "
                   "HOST:PORT with --protocol grpc)");
  bench.add_option("--model", opt.model, "with --url: the model's name on the server");
  bench.add_option("--protocol", opt.protocol, "with --url: http or grpc")
      ->check(CLI::IsMember({"http", "grpc"}))
      ->capture_default_str();
  bench
      .add_option("--concurrency", opt.concurrency,
                  "with --url: concurrent connections, e.g. 8, 1:64 (doubling), 4:32:4, 1,8,32")
      ->capture_default_str();
  bench
      .add_option("--duration-secs", opt.duration_secs,
                  "with --url: measured seconds per concurrency level")
      ->check(CLI::Range(0.01, 86400.0))
      ->capture_default_str();
  bench.add_option("--input-data", opt.input_data, "with --url: zero or random")
      ->check(CLI::IsMember({"zero", "random"}))
      ->capture_default_str();
  bench
      .add_option("--client-threads", opt.client_threads,
                  "with --url over HTTP: threads that drive the connections (0: one per core)")
      ->check(CLI::Range(0, kMaxConcurrency))
      ->capture_default_str();
}

namespace {

class ThreadPerConnectionRun : public LoadRun {
 public:
  explicit ThreadPerConnectionRun(OnRequestDone done) : done_(std::move(done)) {}
  ~ThreadPerConnectionRun() override { Join(); }

  absl::Status Open(
      int concurrency,
      const std::function<absl::StatusOr<std::unique_ptr<InferConnection>>()>& connect) {
    for (int i = 0; i < concurrency; ++i) {
      auto connection = connect();
      if (!connection.ok()) return connection.status();
      connections_.push_back(*std::move(connection));
    }
    return absl::OkStatus();
  }

  void Start() {
    for (size_t k = 0; k < connections_.size(); ++k) {
      threads_.emplace_back([this, k] {
        const int index = static_cast<int>(k);
        for (;;) {
          const int64_t start = SteadyNs(Clock::now());
          absl::Status status = connections_[k]->Infer();
          if (!done_(index, start, SteadyNs(Clock::now()), status) || !status.ok()) break;
        }
      });
    }
  }

  void Join() override {
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  const OnRequestDone done_;
  std::vector<std::unique_ptr<InferConnection>> connections_;
  std::vector<std::thread> threads_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<LoadRun>> StartThreadPerConnectionLoad(
    int concurrency,
    const std::function<absl::StatusOr<std::unique_ptr<InferConnection>>()>& connect,
    OnRequestDone done) {
  auto run = std::make_unique<ThreadPerConnectionRun>(std::move(done));
  absl::Status status = run->Open(concurrency, connect);
  if (!status.ok()) return status;
  run->Start();
  return std::unique_ptr<LoadRun>(std::move(run));
}

absl::StatusOr<std::vector<int>> ParseConcurrency(const std::string& spec) {
  std::vector<int> levels;
  if (absl::StrContains(spec, ':')) {
    std::vector<absl::string_view> parts = absl::StrSplit(spec, ':');
    if (parts.size() > 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("--concurrency '", spec, "': expected START:END or START:END:STEP"));
    }
    auto start = ParsePositive(parts[0], spec);
    if (!start.ok()) return start.status();
    auto end = ParsePositive(parts[1], spec);
    if (!end.ok()) return end.status();
    if (*start > *end) {
      return absl::InvalidArgumentError(
          absl::StrCat("--concurrency '", spec, "': start is larger than end"));
    }
    if (parts.size() == 3) {
      auto step = ParsePositive(parts[2], spec);
      if (!step.ok()) return step.status();
      for (int c = *start; c <= *end; c += *step) levels.push_back(c);
    } else {
      for (int c = *start; c < *end; c *= 2) levels.push_back(c);
      levels.push_back(*end);
    }
    return levels;
  }
  for (absl::string_view part : absl::StrSplit(spec, ',')) {
    auto c = ParsePositive(absl::StripAsciiWhitespace(part), spec);
    if (!c.ok()) return c.status();
    levels.push_back(*c);
  }
  return levels;
}

absl::StatusOr<ServerAddress> ParseServerUrl(const std::string& url, const std::string& protocol) {
  absl::string_view rest = url;
  const bool grpc = protocol == "grpc";
  if (absl::ConsumePrefix(&rest, "https://")) {
    return absl::InvalidArgumentError(absl::StrCat("--url '", url, "': TLS is not supported"));
  }
  if (!absl::ConsumePrefix(&rest, "http://")) absl::ConsumePrefix(&rest, "grpc://");
  absl::ConsumeSuffix(&rest, "/");
  ServerAddress address;
  absl::string_view port;
  if (absl::ConsumePrefix(&rest, "[")) {  // [v6]:port
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("--url '", url, "': unclosed '['"));
    }
    address.host = std::string(rest.substr(0, close));
    rest.remove_prefix(close + 1);
    if (!rest.empty() && !absl::ConsumePrefix(&rest, ":")) {
      return absl::InvalidArgumentError(absl::StrCat("--url '", url, "': expected ':' after ']'"));
    }
    port = rest;
  } else {
    const size_t colon = rest.rfind(':');
    address.host = std::string(rest.substr(0, colon));
    if (colon != absl::string_view::npos) port = rest.substr(colon + 1);
  }
  if (address.host.empty() || absl::StrContains(address.host, '/')) {
    return absl::InvalidArgumentError(
        absl::StrCat("--url '", url, "': expected http://HOST:PORT (no path)"));
  }
  if (port.empty()) {
    address.port = grpc ? 8001 : 8000;
  } else if (!absl::SimpleAtoi(port, &address.port) || address.port < 1 || address.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--url '", url, "': bad port '", port, "'"));
  }
  return address;
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * sorted.size());
  const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
  return sorted[std::min(index, sorted.size() - 1)];
}

absl::Status WriteJsonResult(const std::string& path, const std::string& text) {
  if (path.empty()) {
    fmt::print("{}", text);
    return absl::OkStatus();
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write --json '", path, "'"));
  return absl::OkStatus();
}

absl::Status RunLoadBench(const LoadBenchOptions& opt) {
  if (opt.model.empty()) {
    return absl::InvalidArgumentError("--url needs --model NAME (the model's name on the server)");
  }
  for (int64_t batch : opt.batches) {
    if (batch < 1) return absl::InvalidArgumentError("--batch values must be at least 1");
  }
  auto levels = ParseConcurrency(opt.concurrency);
  if (!levels.ok()) return levels.status();
  auto address = ParseServerUrl(opt.url, opt.protocol);
  if (!address.ok()) return address.status();

  auto transport = opt.protocol == "grpc" ? MakeGrpcTransport(address->host, address->port)
                                          : MakeHttpTransport(address->host, address->port);
  if (!transport.ok()) return transport.status();
  const std::string server = (*transport)->Describe();
  auto metadata = (*transport)->Metadata(opt.model);
  if (!metadata.ok()) return metadata.status();
  if (metadata->name.empty()) metadata->name = opt.model;
  std::vector<std::string> outputs;
  for (const TensorSpec& o : metadata->outputs) outputs.push_back(o.name);

  const bool table = !opt.json || !opt.json_path.empty();
  std::vector<LevelResult> results;
  for (int64_t batch : opt.batches) {
    auto inputs = MakeRequestInputs(*metadata, batch, opt.dim, opt.int_max, opt.input_data);
    if (!inputs.ok()) return inputs.status();
    if (table) {
      fmt::print(
          "{} model {} over {}: inputs {}; {} s per level after {} warm-up requests per "
          "connection\n",
          server, opt.model, opt.protocol == "grpc" ? "gRPC" : "HTTP (binary tensors)",
          Signature(*inputs), opt.duration_secs, std::max(opt.warmup, 0));
      std::fflush(stdout);
    }
    for (int concurrency : *levels) {
      auto r = MeasureLevel(**transport, opt, *inputs, outputs, batch, concurrency);
      if (!r.ok()) {
        return absl::Status(r.status().code(),
                            absl::StrCat("batch ", batch, " concurrency ", concurrency, ": ",
                                         r.status().message()));
      }
      if (table) {
        if (results.empty()) PrintHeader();
        PrintRow(*r);
      }
      results.push_back(*r);
    }
  }
  if (opt.json) {
    return WriteJsonResult(opt.json_path, ResultsJson(opt, server, *metadata, results));
  }
  return absl::OkStatus();
}

}  // namespace flywheel::cli
