// `flywheel bench MODEL.onnx --batch 1,64 --threads 1,2`: times Session::Run on random (or given)
// inputs for every (batch, threads) cell and prints latency percentiles and throughput, as a
// table or as JSON for scripts (scripts/bench.sh compares it with ONNX Runtime this way).
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "cli/load_bench.h"
#include "cli/model_file.h"
#include "core/status.h"
#include "core/tensor.h"
#include "engine/session.h"

namespace flywheel::cli {
namespace {

struct BenchOptions {
  std::string model;
  std::vector<int64_t> batches = {1};
  std::vector<int> threads = {1};
  int iters = 200;
  int warmup = 10;
  int64_t dim = 1;
  int64_t int_max = 0;
  std::vector<std::string> inputs;
  bool json = false;
  std::string json_path;  // --json FILE; empty prints to stdout
  bool report_memory = false;
  bool verbose = false;
};

struct CellResult {
  int64_t batch = 0;
  int threads = 0;
  double p50_us = 0, p90_us = 0, min_us = 0, mean_us = 0;
  double allocs_per_run = 0;
};

// Peak memory of one session: VmHWM after its last run minus VmRSS before its load. The first
// session's figure includes the benchmark inputs, which are made after it is loaded.
struct MemoryResult {
  int threads = 0;
  int64_t rss_before = 0;   // bytes, just before Session::Load
  int64_t load_peak = 0;    // bytes, VmHWM right after Session::Load
  int64_t after_load = 0;   // bytes, VmRSS right after Session::Load
  int64_t peak_rss = 0;     // bytes, VmHWM after the last timed run
  bool peak_reset = false;  // whether /proc/self/clear_refs reset VmHWM before the load
};

// Seed of the random inputs, so that every run of the benchmark times the same data.
constexpr uint64_t kSeed = 12345;
// Integer inputs that index nothing are drawn from [0, kDefaultIntMax).
constexpr int64_t kDefaultIntMax = 100;

// A field of /proc/self/status ("VmRSS", "VmHWM") in bytes; -1 when unavailable.
int64_t ProcStatusBytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    return std::strtoll(line.c_str() + field.size() + 1, nullptr, 10) * 1024;  // "VmRSS: 1 kB"
  }
  return -1;
}

// Resets VmHWM to the current RSS (Linux >= 4.0), so that the peak seen afterwards belongs to
// what runs afterwards.
bool ResetPeakRss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return out.good();
}

template <typename T, typename Gen>
void Fill(Tensor& t, Gen gen) {
  T* p = t.data<T>();
  for (int64_t i = 0; i < t.NumElements(); ++i) p[i] = gen();
}

// Random data for one input: dynamic dims are `batch` (first) and `dim` (others).
absl::StatusOr<Tensor> RandomInput(const engine::TensorInfo& info, int64_t batch, int64_t dim,
                                   int64_t int_max, std::mt19937_64& rng) {
  Shape shape;
  for (size_t i = 0; i < info.dims.size(); ++i) {
    shape.push_back(info.dims[i] >= 0 ? info.dims[i] : (i == 0 ? batch : dim));
  }
  FW_ASSIGN_OR_RETURN(
      Tensor t, Tensor::SafeAllocate(info.dtype, shape, absl::StrCat("input '", info.name, "'")));
  int64_t hi = int_max > 0 ? int_max : (info.index_bound > 0 ? info.index_bound : kDefaultIntMax);
  std::uniform_real_distribution<double> real(-1.0, 1.0);
  auto integer = [&] { return std::uniform_int_distribution<int64_t>(0, hi - 1)(rng); };
  switch (info.dtype) {
    case DataType::kFp32:
      Fill<float>(t, [&] { return static_cast<float>(real(rng)); });
      break;
    case DataType::kFp64:
      Fill<double>(t, [&] { return real(rng); });
      break;
    case DataType::kBool:
      Fill<bool>(t, [&] { return (rng() & 1) != 0; });
      break;
    case DataType::kInt64:
      Fill<int64_t>(t, integer);
      break;
    case DataType::kInt32:
      Fill<int32_t>(t, [&] { return static_cast<int32_t>(integer()); });
      break;
    case DataType::kInt16:
      hi = std::min<int64_t>(hi, 32767);
      Fill<int16_t>(t, [&] { return static_cast<int16_t>(integer()); });
      break;
    case DataType::kInt8:
      hi = std::min<int64_t>(hi, 127);
      Fill<int8_t>(t, [&] { return static_cast<int8_t>(integer()); });
      break;
    case DataType::kUint8:
      hi = std::min<int64_t>(hi, 255);
      Fill<uint8_t>(t, [&] { return static_cast<uint8_t>(integer()); });
      break;
    case DataType::kUint16:
      Fill<uint16_t>(t, [&] { return static_cast<uint16_t>(integer()); });
      break;
    case DataType::kUint32:
      Fill<uint32_t>(t, [&] { return static_cast<uint32_t>(integer()); });
      break;
    case DataType::kUint64:
      Fill<uint64_t>(t, [&] { return static_cast<uint64_t>(integer()); });
      break;
    default:
      return absl::UnimplementedError(absl::StrCat("input ", DescribeInfo(info),
                                                   ": no random data for this type; pass --input ",
                                                   info.name, "=FILE.npy"));
  }
  return t;
}

// Every batch's inputs: the --input tensors, random data for the rest.
absl::StatusOr<std::vector<std::vector<Tensor>>> MakeInputs(
    const std::vector<engine::TensorInfo>& infos, const BenchOptions& opt) {
  FW_ASSIGN_OR_RETURN(std::vector<Tensor> given,
                      ReadNamedInputs(infos, opt.inputs, /*allow_missing=*/true));
  std::vector<std::vector<Tensor>> batch_inputs;
  for (int64_t batch : opt.batches) {
    std::mt19937_64 rng(kSeed);
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < infos.size(); ++i) {
      if (!given[i].empty()) {
        inputs.push_back(given[i]);
        continue;
      }
      FW_ASSIGN_OR_RETURN(Tensor t, RandomInput(infos[i], batch, opt.dim, opt.int_max, rng));
      inputs.push_back(std::move(t));
    }
    batch_inputs.push_back(std::move(inputs));
  }
  return batch_inputs;
}

// Times `iters` runs after `warmup` ones, reusing one outputs vector so that runs allocate
// nothing once the first has sized it.
absl::StatusOr<CellResult> TimeCell(const ModelFile& session, const std::vector<Tensor>& inputs,
                                    const BenchOptions& opt) {
  std::vector<Tensor> outputs;
  for (int i = 0; i < std::max(opt.warmup, 1); ++i) {
    FW_RETURN_IF_ERROR(session.Run(inputs, &outputs));
  }
  std::vector<double> us(opt.iters);
  const int64_t allocs_before = AlignedAllocCount();
  for (int i = 0; i < opt.iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    absl::Status status = session.Run(inputs, &outputs);
    const auto end = std::chrono::steady_clock::now();
    if (!status.ok()) return status;
    us[i] = std::chrono::duration<double, std::micro>(end - start).count();
  }
  CellResult r;
  r.allocs_per_run = static_cast<double>(AlignedAllocCount() - allocs_before) / opt.iters;
  double sum = 0;
  for (double t : us) sum += t;
  std::sort(us.begin(), us.end());
  const size_t n = us.size();
  r.p50_us = us[n / 2];
  r.p90_us = us[std::min(n - 1, static_cast<size_t>(std::floor(n * 0.9)))];
  r.min_us = us[0];
  r.mean_us = sum / n;
  return r;
}

// Inferences (batch rows) per second at the median latency.
double Throughput(const CellResult& r) { return r.batch * 1e6 / r.p50_us; }

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += fmt::format("\\u{:04x}", static_cast<int>(c));
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// [{"name": ..., "dtype": "FP32", "dims": [-1, 4], "index_bound": 0}, ...]
std::string JsonInfos(const std::vector<engine::TensorInfo>& infos) {
  std::string out = "[";
  for (size_t i = 0; i < infos.size(); ++i) {
    std::string dims;
    for (size_t d = 0; d < infos[i].dims.size(); ++d) {
      dims += fmt::format("{}{}", d ? ", " : "", infos[i].dims[d]);
    }
    out += fmt::format("{}{{\"name\": {}, \"dtype\": \"{}\", \"dims\": [{}], \"index_bound\": {}}}",
                       i ? ", " : "", JsonString(infos[i].name),
                       std::string(DataTypeName(infos[i].dtype)), dims, infos[i].index_bound);
  }
  return out + "]";
}

double MiB(int64_t bytes) { return bytes / (1024.0 * 1024.0); }

absl::Status RunBench(const BenchOptions& opt) {
  if (opt.model.empty()) {
    return absl::InvalidArgumentError(
        "give a MODEL.onnx file, or --url and --model to benchmark a running server");
  }
  if (opt.iters < 1) return absl::InvalidArgumentError("--iters must be at least 1");
  std::error_code ec;
  const int64_t file_bytes = static_cast<int64_t>(std::filesystem::file_size(opt.model, ec));
  if (ec) {
    return absl::NotFoundError(fmt::format("model '{}': {}", opt.model, ec.message()));
  }

  for (int64_t batch : opt.batches) {
    if (batch < 1) return absl::InvalidArgumentError("--batch values must be at least 1");
  }
  for (int threads : opt.threads) {
    if (threads < 1) return absl::InvalidArgumentError("--threads values must be at least 1");
  }

  if (opt.report_memory) {
    // Load once untimed and unmeasured, so that the measured sessions find the code they run
    // already paged in and the libraries' one-time state made: a session's own cost remains.
    FW_ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> warm, ModelFile::Load(opt.model, 1));
  }

  std::vector<engine::TensorInfo> input_infos, output_infos;
  size_t weight_bytes = 0;
  std::map<std::string, int> op_counts;
  // Built once, after the first session is loaded: every session times the same data.
  std::vector<std::vector<Tensor>> batch_inputs;
  std::vector<CellResult> results;
  std::vector<MemoryResult> memory;
  for (size_t t = 0; t < opt.threads.size(); ++t) {
    const int threads = opt.threads[t];
    MemoryResult mem;
    mem.threads = threads;
    if (opt.report_memory) {
      // Give the previous session's freed memory back to the system so it is not reused unseen.
      malloc_trim(0);
      mem.peak_reset = ResetPeakRss();
      mem.rss_before = ProcStatusBytes("VmRSS");
    }
    FW_ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> session, ModelFile::Load(opt.model, threads));
    if (opt.report_memory) {
      mem.load_peak = ProcStatusBytes("VmHWM");
      mem.after_load = ProcStatusBytes("VmRSS");
    }
    if (t == 0) {
      input_infos = session->inputs();
      output_infos = session->outputs();
      weight_bytes = session->WeightBytes();
      op_counts = session->OpCounts();
      FW_ASSIGN_OR_RETURN(batch_inputs, MakeInputs(input_infos, opt));
    }
    for (size_t b = 0; b < opt.batches.size(); ++b) {
      absl::StatusOr<CellResult> r = TimeCell(*session, batch_inputs[b], opt);
      if (!r.ok()) {
        return absl::Status(r.status().code(),
                            fmt::format("batch {} threads {}: {}", opt.batches[b], threads,
                                        std::string(r.status().message())));
      }
      r->batch = opt.batches[b];
      r->threads = threads;
      results.push_back(*r);
    }
    if (opt.report_memory) {
      mem.peak_rss = ProcStatusBytes("VmHWM");
      memory.push_back(mem);
    }
  }

  if (opt.json) {
    std::string out = fmt::format(
        "{{\"model\": {}, \"file_bytes\": {}, \"weight_bytes\": {}, \"iters\": {}, \"warmup\": {}, "
        "\"dim\": {}, \"inputs\": ",
        JsonString(opt.model), file_bytes, weight_bytes, opt.iters, opt.warmup, opt.dim);
    out = absl::StrCat(out, JsonInfos(input_infos), ", \"outputs\": ", JsonInfos(output_infos),
                       ", \"results\": [");
    for (size_t i = 0; i < results.size(); ++i) {
      const CellResult& r = results[i];
      out += fmt::format(
          "{}{{\"batch\": {}, \"threads\": {}, \"p50_us\": {:.1f}, \"p90_us\": {:.1f}, "
          "\"min_us\": {:.1f}, \"mean_us\": {:.1f}, \"throughput_per_s\": {:.1f}, "
          "\"allocs_per_run\": {:.2f}}}",
          i ? ", " : "", r.batch, r.threads, r.p50_us, r.p90_us, r.min_us, r.mean_us, Throughput(r),
          r.allocs_per_run);
    }
    out += "]";
    if (opt.report_memory) {
      out += ", \"memory\": [";
      for (size_t i = 0; i < memory.size(); ++i) {
        const MemoryResult& m = memory[i];
        out += fmt::format(
            "{}{{\"threads\": {}, \"rss_before_bytes\": {}, \"load_peak_bytes\": {}, "
            "\"after_load_bytes\": {}, \"peak_rss_bytes\": {}, \"added_bytes\": {}, "
            "\"peak_reset\": {}}}",
            i ? ", " : "", m.threads, m.rss_before, m.load_peak, m.after_load, m.peak_rss,
            m.peak_rss - m.rss_before, m.peak_reset ? "true" : "false");
      }
      out += "]";
    }
    out += "}\n";
    return WriteJsonResult(opt.json_path, out);
  }

  fmt::print("model {}: {:.2f} MiB file, {:.2f} MiB weights\n", opt.model, MiB(file_bytes),
             MiB(weight_bytes));
  fmt::print("  inputs:  {}\n  outputs: {}\n", DescribeInfos(input_infos),
             DescribeInfos(output_infos));
  if (opt.verbose) {
    std::string ops;
    for (const auto& [op, count] : op_counts) ops += fmt::format(" {}x{}", op, count);
    fmt::print("  ops after optimisation:{}\n", ops);
  }
  fmt::print(
      "  {} timed runs after {} warm-up; other dynamic dims = {}; throughput = batch / p50\n",
      opt.iters, opt.warmup, opt.dim);
  fmt::print("{:>6} {:>7} {:>12} {:>12} {:>12} {:>14} {:>11}\n", "batch", "threads", "p50_us",
             "p90_us", "min_us", "inferences/s", "allocs/run");
  for (const CellResult& r : results) {
    fmt::print("{:>6} {:>7} {:>12.1f} {:>12.1f} {:>12.1f} {:>14.0f} {:>11.2f}\n", r.batch,
               r.threads, r.p50_us, r.p90_us, r.min_us, Throughput(r), r.allocs_per_run);
  }
  for (const MemoryResult& m : memory) {
    const int64_t added = m.peak_rss - m.rss_before;
    fmt::print(
        "memory (threads {}): RSS {:.2f} MiB before load, {:.2f} MiB after (load peak {:.2f}), "
        "peak {:.2f} MiB{}; added {:.2f} MiB = {:.2f}x weights, {:.2f}x file\n",
        m.threads, MiB(m.rss_before), MiB(m.after_load), MiB(m.load_peak), MiB(m.peak_rss),
        m.peak_reset ? "" : " (peak not reset: process-wide)", MiB(added),
        weight_bytes ? static_cast<double>(added) / weight_bytes : 0.0,
        file_bytes ? static_cast<double>(added) / file_bytes : 0.0);
  }
  return absl::OkStatus();
}

}  // namespace

Command AddBenchCommand(CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand("bench", "Time a model on random or given inputs");
  sub->footer(
      "Inputs: a dynamic first dimension is the batch size and every other dynamic dimension is\n"
      "--dim (default 1; e.g. --dim 32 for a transformer's sequence length). Floats are uniform\n"
      "in [-1,1) and integers in [0, B) where B is --int-max, else the smallest embedding table\n"
      "the input indexes, else 100; the seed is fixed. --input NAME=FILE.npy replaces an input's\n"
      "random data (same tensor for every --batch value).\n"
      "One session per --threads value; each cell runs --warmup runs, then --iters timed runs\n"
      "reusing the outputs. Latencies are per Run() in microseconds; inferences/s = batch / p50.\n"
      "--report-memory: peak RSS (VmHWM, reset before the load) minus RSS before the load,\n"
      "against the model's weight bytes.\n"
      "Example: flywheel bench model.onnx --batch 1,64 --threads 1,2 --iters 500\n"
      "Server: flywheel bench --url http://HOST:8000 --model NAME --concurrency 1:64 runs a\n"
      "closed-loop load per concurrency level (--batch, --dim, --int-max, --warmup and --json\n"
      "apply; --warmup counts requests per connection). See docs/cli.md.");
  sub->add_option("model", opt->model, "model file: ONNX (.onnx) or XGBoost (.json, .ubj)");
  sub->add_option("-b,--batch", opt->batches, "batch sizes, e.g. 1,64")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("-t,--threads", opt->threads, "intra-op thread counts, e.g. 1,2")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("-n,--iters", opt->iters, "timed runs per cell")
      ->check(CLI::Range(1, 100000000))
      ->capture_default_str();
  sub->add_option("-w,--warmup", opt->warmup, "untimed runs per cell first (at least 1 is run)")
      ->check(CLI::Range(0, 100000000))
      ->capture_default_str();
  sub->add_option("--dim", opt->dim, "size of dynamic dims other than the first")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  sub->add_option("--int-max", opt->int_max,
                  "integer inputs drawn in [0, N) (default: embedding table size, else 100)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 62));
  sub->add_option("-i,--input", opt->inputs, "NAME=FILE.npy: use this tensor instead of random")
      ->allow_extra_args(false);
  sub->add_option("--json", opt->json_path, "results as one JSON object, in FILE or on stdout")
      ->expected(0, 1)
      ->type_name("[FILE]");
  sub->add_flag("--report-memory", opt->report_memory, "report peak RSS added by load and runs");
  sub->add_flag("-v,--verbose", opt->verbose, "also print the operators after optimisation");
  auto remote = std::make_shared<LoadBenchOptions>();
  AddLoadBenchOptions(*sub, *remote);
  return {sub, [opt, remote, sub]() {
            opt->json = sub->count("--json") > 0;
            absl::Status status;
            if (remote->url.empty()) {
              status = remote->model.empty() ? RunBench(*opt)
                                             : absl::InvalidArgumentError(
                                                   "--model names a model on a server: "
                                                   "give --url too");
            } else if (!opt->model.empty()) {
              status = absl::InvalidArgumentError(
                  "--url benchmarks a server: name its model with --model, not a file");
            } else {
              remote->batches = opt->batches;
              remote->dim = opt->dim;
              remote->int_max = opt->int_max;
              remote->warmup = opt->warmup;
              remote->json = opt->json;
              remote->json_path = opt->json_path;
              status = RunLoadBench(*remote);
            }
            if (status.ok()) return 0;
            fmt::print(stderr, "flywheel bench: error: {}\n", OneLine(status));
            return 1;
          }};
}

}  // namespace flywheel::cli
