// flywheel's tree predictor against XGBoost's own in-place predictor (XGBoosterPredictFromDense
// from libxgboost), in one process, on the same rows, for models of 100/500/1000 trees at depth
// 6 and 8, batches of 1/100/10000 rows, on 1 and 2 threads.
//
// Models are trained here with the XGBoost C API (binary:logistic, hist, on synthetic data with
// fixed seeds) and cached in --model-dir; 100 and 500 trees are slices of the 1000-tree model.
// Each cell is measured --reps times, alternating which engine goes first; a measurement runs
// the engine for at least --min-time seconds and reports time per call; tables show the median.
//
//   build/bench/trees_vs_xgboost [--quick] [--update-doc docs/benchmarks.md]
#include <unistd.h>
#include <xgboost/c_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/thread_pool.h"
#include "trees/forest.h"

namespace {

using flywheel::ThreadPool;
using flywheel::trees::Forest;
using flywheel::trees::PredictOptions;

#define XGB_CHECK(call)                                                                    \
  do {                                                                                     \
    if ((call) != 0) {                                                                     \
      std::fprintf(stderr, "trees_vs_xgboost: %s failed: %s\n", #call, XGBGetLastError()); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

struct Args {
  std::vector<int> trees = {100, 500, 1000};
  std::vector<int> depths = {6, 8};
  std::vector<int> batches = {1, 100, 10000};
  std::vector<int> threads = {1, 2};
  int features = 32;
  int train_rows = 20000;
  int reps = 5;
  double min_time = 0.2;
  std::string model_dir = "/tmp/flywheel-trees-bench";
  std::string update_doc;
  std::string command;
};

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> v;
  for (absl::string_view part : absl::StrSplit(s, ',')) {
    int x;
    if (!absl::SimpleAtoi(part, &x) || x <= 0) {
      std::fprintf(stderr, "trees_vs_xgboost: bad list '%s'\n", s.c_str());
      std::exit(2);
    }
    v.push_back(x);
  }
  return v;
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  std::vector<std::string> cmd = {"trees_vs_xgboost"};
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    cmd.push_back(k);
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "trees_vs_xgboost: %s needs a value\n", k.c_str());
        std::exit(2);
      }
      cmd.push_back(argv[i + 1]);
      return argv[++i];
    };
    if (k == "--trees") {
      a.trees = ParseList(value());
    } else if (k == "--depths") {
      a.depths = ParseList(value());
    } else if (k == "--batches") {
      a.batches = ParseList(value());
    } else if (k == "--threads") {
      a.threads = ParseList(value());
    } else if (k == "--reps") {
      a.reps = ParseList(value())[0];
    } else if (k == "--min-time") {
      a.min_time = std::atof(value().c_str());
    } else if (k == "--model-dir") {
      a.model_dir = value();
    } else if (k == "--update-doc") {
      a.update_doc = value();
    } else if (k == "--command") {
      a.command = value();
      cmd.pop_back();
      cmd.pop_back();
    } else if (k == "--quick") {
      a.reps = 3;
      a.min_time = 0.05;
    } else {
      std::fprintf(stderr,
                   "usage: trees_vs_xgboost [--trees 100,500,1000] [--depths 6,8] "
                   "[--batches 1,100,10000] [--threads 1,2] [--reps 5] [--min-time 0.2] "
                   "[--model-dir DIR] [--update-doc FILE] [--command TEXT] [--quick]\n");
      std::exit(2);
    }
  }
  if (a.command.empty()) a.command = absl::StrJoin(cmd, " ");
  return a;
}

// Synthetic rows: standard normal features; the label depends non-linearly on a few of them.
void MakeData(int rows, int features, uint32_t seed, std::vector<float>* x, std::vector<float>* y) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  x->resize(static_cast<size_t>(rows) * features);
  for (float& v : *x) v = normal(rng);
  if (y == nullptr) return;
  y->resize(rows);
  for (int r = 0; r < rows; ++r) {
    const float* f = x->data() + static_cast<size_t>(r) * features;
    const float z =
        f[0] + 0.5f * f[1] * f[2] - std::sin(2.0f * f[3]) + 0.3f * f[4] * f[4] + 0.5f * normal(rng);
    (*y)[r] = z > 0.3f ? 1.0f : 0.0f;
  }
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The 1000-tree model of one depth: from the cache, or trained now.
BoosterHandle TrainOrLoad(const Args& a, int depth, int max_trees) {
  const std::string path = absl::StrFormat("%s/d%d_t%d_f%d_r%d.ubj", a.model_dir, depth, max_trees,
                                           a.features, a.train_rows);
  BoosterHandle h;
  const std::string cached = ReadFile(path);
  if (!cached.empty()) {
    XGB_CHECK(XGBoosterCreate(nullptr, 0, &h));
    XGB_CHECK(XGBoosterLoadModelFromBuffer(h, cached.data(), cached.size()));
    std::fprintf(stderr, "  loaded %s\n", path.c_str());
    return h;
  }
  std::vector<float> x, y;
  MakeData(a.train_rows, a.features, 1000 + depth, &x, &y);
  DMatrixHandle d;
  XGB_CHECK(XGDMatrixCreateFromMat(x.data(), a.train_rows, a.features, NAN, &d));
  XGB_CHECK(XGDMatrixSetFloatInfo(d, "label", y.data(), y.size()));
  XGB_CHECK(XGBoosterCreate(&d, 1, &h));
  const std::pair<const char*, std::string> params[] = {{"objective", "binary:logistic"},
                                                        {"tree_method", "hist"},
                                                        {"max_depth", std::to_string(depth)},
                                                        {"eta", "0.1"},
                                                        {"subsample", "0.8"},
                                                        {"seed", "7"},
                                                        {"nthread", "2"},
                                                        {"min_child_weight", "0"},
                                                        {"lambda", "0.1"}};
  for (const auto& [k, v] : params) XGB_CHECK(XGBoosterSetParam(h, k, v.c_str()));
  const auto start = std::chrono::steady_clock::now();
  for (int it = 0; it < max_trees; ++it) XGB_CHECK(XGBoosterUpdateOneIter(h, it, d));
  XGB_CHECK(XGDMatrixFree(d));
  std::fprintf(stderr, "  trained depth %d, %d trees in %.1f s\n", depth, max_trees,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (std::system(("mkdir -p '" + a.model_dir + "'").c_str()) == 0) {
    bst_ulong len;
    const char* buf;
    XGB_CHECK(XGBoosterSaveModelToBuffer(h, R"({"format": "ubj"})", &len, &buf));
    std::ofstream(path, std::ios::binary).write(buf, static_cast<std::streamsize>(len));
  }
  return h;
}

double ThreadCpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Wall-clock and calling-thread CPU seconds per call. With one thread, both predictors compute
// on the calling thread, so its CPU time is the work itself, unaffected by time the thread spent
// waiting for a core on a busy machine.
struct Timing {
  double wall;
  double cpu;
};

Timing Measure(const std::function<void()>& fn, double min_time) {
  fn();  // warm
  int calls = 0;
  const auto start = std::chrono::steady_clock::now();
  const double cpu_start = ThreadCpuSeconds();
  double elapsed = 0;
  do {
    fn();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < min_time || calls < 3);
  return {elapsed / calls, (ThreadCpuSeconds() - cpu_start) / calls};
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string Time(double s) {
  if (s < 1e-3) return absl::StrFormat("%.1f us", s * 1e6);
  if (s < 1.0) return absl::StrFormat("%.2f ms", s * 1e3);
  return absl::StrFormat("%.2f s", s);
}

std::string Rate(double rows_per_s) {
  if (rows_per_s >= 1e6) return absl::StrFormat("%.2f M", rows_per_s / 1e6);
  if (rows_per_s >= 1e3) return absl::StrFormat("%.1f k", rows_per_s / 1e3);
  return absl::StrFormat("%.0f", rows_per_s);
}

struct Cell {
  int trees, depth, batch, threads;
  double xgb, ours;          // median wall seconds per call
  double xgb_cpu, ours_cpu;  // median calling-thread CPU seconds per call
};

// The speedup a goal is judged on: the smaller of the wall-clock and CPU-time ratios (one
// thread), so that noise from the shared machine cannot flatter us.
double Speedup(const Cell& c) {
  const double wall = c.xgb / c.ours;
  return c.threads == 1 ? std::min(wall, c.xgb_cpu / c.ours_cpu) : wall;
}

std::string Shell(const char* cmd) {
  std::string out;
  if (FILE* p = popen(cmd, "r")) {
    char buf[256];
    while (fgets(buf, sizeof(buf), p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string LoadAverage() {
  std::string s = ReadFile("/proc/loadavg");
  return s.substr(0, s.find(' '));
}

}  // namespace

int main(int argc, char** argv) {
  // XGBoost's OpenMP threads spin at barriers by default; on a machine shared with other work a
  // spinning thread that loses its CPU stalls every call for a scheduler tick (16 ms measured at
  // batch 1 with two threads). Passive waiting is XGBoost's fair setting here. libgomp reads the
  // variable when it loads, before main, so set it and start again.
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) {
    setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
    execv("/proc/self/exe", argv);
  }
  const Args a = ParseArgs(argc, argv);
  const std::string load_start = LoadAverage();
  const int max_trees = *std::max_element(a.trees.begin(), a.trees.end());
  const int max_batch = *std::max_element(a.batches.begin(), a.batches.end());
  std::vector<float> rows;
  MakeData(max_batch, a.features, 4242, &rows, nullptr);
  std::vector<Cell> cells;
  std::vector<std::string> checks;

  for (int depth : a.depths) {
    BoosterHandle full = TrainOrLoad(a, depth, max_trees);
    for (int n_trees : a.trees) {
      BoosterHandle h = full;
      if (n_trees != max_trees) XGB_CHECK(XGBoosterSlice(full, 0, n_trees, 1, &h));
      bst_ulong len;
      const char* buf;
      XGB_CHECK(XGBoosterSaveModelToBuffer(h, R"({"format": "ubj"})", &len, &buf));
      auto forest = Forest::LoadFromMemory(absl::string_view(buf, len));
      if (!forest.ok()) {
        std::fprintf(stderr, "trees_vs_xgboost: %s\n", forest.status().ToString().c_str());
        return 1;
      }
      const Forest& f = **forest;
      std::vector<float> out(static_cast<size_t>(max_batch) * f.num_outputs(false));
      const std::string config =
          R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
          R"("strict_shape": false, "missing": NaN, "cache_id": 0})";
      auto xgb_predict = [&](int batch, const float** result) {
        const std::string iface = absl::StrFormat(
            R"({"data": [%d, true], "shape": [%d, %d], "typestr": "<f4", "version": 3})",
            reinterpret_cast<uintptr_t>(rows.data()), batch, a.features);
        const bst_ulong* shape;
        bst_ulong dim;
        XGB_CHECK(XGBoosterPredictFromDense(h, iface.c_str(), config.c_str(), nullptr, &shape, &dim,
                                            result));
      };
      // Same outputs as XGBoost on every row first.
      {
        XGB_CHECK(XGBoosterSetParam(h, "nthread", "1"));
        const float* want;
        xgb_predict(max_batch, &want);
        (void)f.Predict(rows.data(), max_batch, a.features, {}, out.data());
        double max_diff = 0;
        int64_t exact = 0;
        for (int i = 0; i < max_batch; ++i) {
          max_diff = std::max(max_diff, std::abs(static_cast<double>(out[i]) - want[i]));
          exact += out[i] == want[i];
        }
        checks.push_back(
            absl::StrFormat("%d trees, depth %d (deepest leaf %d): %d of %d outputs bit-identical "
                            "to XGBoost, max abs "
                            "diff %.3g",
                            n_trees, depth, f.info().max_depth, exact, max_batch, max_diff));
        std::fprintf(stderr, "  %s\n", checks.back().c_str());
      }
      for (int threads : a.threads) {
        XGB_CHECK(XGBoosterSetParam(h, "nthread", std::to_string(threads).c_str()));
        std::unique_ptr<ThreadPool> pool;
        if (threads > 1) pool = std::make_unique<ThreadPool>(threads);
        PredictOptions options;
        options.pool = pool.get();
        for (int batch : a.batches) {
          std::vector<double> xs, os, xc, oc;
          auto run_xgb = [&] {
            const float* r;
            xgb_predict(batch, &r);
          };
          auto run_ours = [&] {
            (void)f.Predict(rows.data(), batch, a.features, options, out.data());
          };
          auto time_xgb = [&] {
            const Timing t = Measure(run_xgb, a.min_time);
            xs.push_back(t.wall);
            xc.push_back(t.cpu);
          };
          auto time_ours = [&] {
            const Timing t = Measure(run_ours, a.min_time);
            os.push_back(t.wall);
            oc.push_back(t.cpu);
          };
          for (int rep = 0; rep < a.reps; ++rep) {
            if (rep % 2 == 0) {
              time_xgb();
              time_ours();
            } else {
              time_ours();
              time_xgb();
            }
          }
          Cell c{n_trees, depth, batch, threads, Median(xs), Median(os), Median(xc), Median(oc)};
          cells.push_back(c);
          std::fprintf(
              stderr,
              "  trees %4d depth %d batch %5d threads %d: xgboost %10s  flywheel %10s  x%.1f"
              "  (CPU time: xgboost %s, flywheel %s)\n",
              n_trees, depth, batch, threads, Time(c.xgb).c_str(), Time(c.ours).c_str(),
              c.xgb / c.ours, Time(c.xgb_cpu).c_str(), Time(c.ours_cpu).c_str());
        }
      }
      if (h != full) XGB_CHECK(XGBoosterFree(h));
    }
    XGB_CHECK(XGBoosterFree(full));
  }

  // The report (markdown), printed and optionally written into a doc between markers.
  std::vector<std::string> L;
  int met = 0, goals = 0;
  std::vector<std::string> missed;
  for (const Cell& c : cells) {
    if (c.threads != 1) continue;
    const double goal = c.batch >= 100 ? 5.0 : 3.0;
    ++goals;
    if (Speedup(c) >= goal) {
      ++met;
    } else {
      missed.push_back(absl::StrFormat("%d trees depth %d batch %d (x%.1f)", c.trees, c.depth,
                                       c.batch, Speedup(c)));
    }
  }
  int xgb_major, xgb_minor, xgb_patch;
  XGBoostVersion(&xgb_major, &xgb_minor, &xgb_patch);
  L.push_back("## Gradient-boosted trees: flywheel vs XGBoost");
  L.push_back("");
  L.push_back(absl::StrFormat(
      "Measured by `bench/trees_vs_xgboost.cc` (`make bench` runs it after the engine comparison). "
      "Our `trees::Forest::Predict` against XGBoost %d.%d.%d's own in-place predictor "
      "(`XGBoosterPredictFromDense`, libxgboost from Debian) in the same process, on the same "
      "rows.",
      xgb_major, xgb_minor, xgb_patch));
  L.push_back("");
  L.push_back(absl::StrCat(
      "- Machine: ", Shell("lscpu | sed -n 's/^Model name: *//p'"), ", ", Shell("nproc"),
      " CPUs; load average (1 min) at start / end: ", load_start, " / ", LoadAverage(),
      " (the machine is shared: other work makes figures noisier)"));
  L.push_back(absl::StrCat("- Date: ", Shell("date -u '+%Y-%m-%d %H:%M UTC'")));
  L.push_back(absl::StrCat("- Command: `", a.command, "`"));
  L.push_back(absl::StrFormat(
      "- Models: binary:logistic, trained with the XGBoost C API (hist, eta 0.1, subsample 0.8, "
      "max_depth as listed, min_child_weight 0, lambda 0.1, seed 7) on %d synthetic rows of %d "
      "standard-normal features; 100 and 500 trees are the first trees of the 1000-tree model "
      "(`XGBoosterSlice`). Inputs: %d other rows from the same distribution, no missing values.",
      a.train_rows, a.features, max_batch));
  L.push_back(absl::StrFormat(
      "- Method: per cell, %d repetitions alternating which predictor runs first; each runs "
      "repeatedly for at least %.2f s after one warm-up call; the table gives the median time "
      "per call (wall clock). Speedup = XGBoost time / flywheel time. The CPU-time speedup "
      "(one-thread cells) compares the calling thread's CPU time per call instead, which is "
      "less affected by other work on the shared machine. Both predict probabilities "
      "(transformed output). XGBoost threads: `nthread`; ours: a `ThreadPool` of that size "
      "(batches too small to be worth waking a thread for run on the calling thread).",
      a.reps, a.min_time));
  L.push_back(
      "- Goal (issue 4): speedup >= 5x at batch >= 100 on one thread, >= 3x at batch 1; judged on "
      "the smaller of the two speedups.");
  L.push_back(absl::StrCat(
      "- XGBoost runs with `OMP_WAIT_POLICY=", std::getenv("OMP_WAIT_POLICY"),
      "` (the bench sets PASSIVE unless told otherwise: on a shared machine, spinning OpenMP "
      "threads that lose their CPU stall each call for a scheduler tick, 16 ms at batch 1 with "
      "two threads). With two threads on this 2-CPU machine, the second thread competes with "
      "other work, so two-thread cells vary most."));
  L.push_back("");
  L.push_back(absl::StrFormat(
      "Goals met in %d of %d one-thread cells%s.", met, goals,
      missed.empty() ? "" : absl::StrCat("; missed: ", absl::StrJoin(missed, ", "))));
  L.push_back("");
  L.push_back(
      "| trees | depth | batch | threads | XGBoost | flywheel | XGBoost rows/s | flywheel "
      "rows/s | speedup | speedup (CPU time) | goal |");
  L.push_back("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|");
  for (const Cell& c : cells) {
    std::string goal = "-";
    if (c.threads == 1) {
      const double g = c.batch >= 100 ? 5.0 : 3.0;
      goal = Speedup(c) >= g ? absl::StrFormat("met (>= %gx)", g)
                             : absl::StrFormat("**missed** (>= %gx)", g);
    }
    const std::string cpu =
        c.threads == 1 ? absl::StrFormat("%.1fx", c.xgb_cpu / c.ours_cpu) : std::string("-");
    L.push_back(absl::StrFormat("| %d | %d | %d | %d | %s | %s | %s | %s | %.1fx | %s | %s |",
                                c.trees, c.depth, c.batch, c.threads, Time(c.xgb), Time(c.ours),
                                Rate(c.batch / c.xgb), Rate(c.batch / c.ours), c.xgb / c.ours, cpu,
                                goal));
  }
  L.push_back("");
  L.push_back("Outputs against XGBoost's (transformed, all input rows):");
  L.push_back("");
  for (const std::string& c : checks) L.push_back(absl::StrCat("- ", c));
  const std::string report = absl::StrJoin(L, "\n") + "\n";
  std::fputs(report.c_str(), stdout);

  if (!a.update_doc.empty()) {
    constexpr char kBegin[] = "<!-- trees-bench:begin (written by bench/trees_vs_xgboost) -->";
    constexpr char kEnd[] = "<!-- trees-bench:end -->";
    std::string doc = ReadFile(a.update_doc);
    const std::string section = absl::StrCat(kBegin, "\n", report, kEnd, "\n");
    const size_t b = doc.find(kBegin), e = doc.find(kEnd);
    if (b != std::string::npos && e != std::string::npos && e > b) {
      doc.replace(b, e + std::string(kEnd).size() + 1 - b, section);
    } else {
      if (!doc.empty() && doc.back() != '\n') doc += "\n";
      doc += "\n" + section;
    }
    std::ofstream(a.update_doc) << doc;
    std::fprintf(stderr, "wrote %s\n", a.update_doc.c_str());
  }
  return 0;
}
