// The feature store's speed (issue 5): stream aggregation throughput (1M keys, 10 count/sum
// windows, one thread) and online lookup latency (1 and 100 entities x 20 features) from memory,
// from the embedded RocksDB store and from Redis, beside plain MGETs on the same Redis
// (hiredis and redis-benchmark). Starts its own redis-server on a free loopback port.
//
//   build/bench/features_bench [--quick] [--aggregation-only] [--update-doc docs/benchmarks.md]
//   [--command TEXT]
#include <hiredis/hiredis.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "features/definitions.h"
#include "features/lookup.h"
#include "features/pipeline.h"
#include "features/redis_store.h"
#include "features/redis_test_server.h"
#include "features/rocksdb_store.h"
#include "features/store.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace fw = flywheel::features;

namespace {

struct Args {
  std::string update_doc;
  std::string command = "build/bench/features_bench";
  int64_t keys = 1'000'000;            // aggregation: distinct entities
  int64_t events_per_rep = 2'000'000;  // aggregation: events per timed repetition
  int reps = 5;
  int batch = 1000;                   // events per Push (one HTTP batch)
  int64_t lookup_entities = 100'000;  // entities in the online stores
  int64_t events_per_entity = 20;     // events that build each lookup entity's state
  int lookups_1 = 20'000;             // timed lookups of 1 entity
  int lookups_100 = 2'000;            // timed lookups of 100 entities
  bool quick = false;
  bool aggregation_only = false;  // the 1M-key aggregation rows alone, printed; no report
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "features_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(absl::StrCat(what, ": ", v.status().ToString()));
  return *std::move(v);
}
void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) Die(absl::StrCat(what, ": ", s.ToString()));
}

Args ParseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die(absl::StrCat(k, " needs a value"));
      return argv[++i];
    };
    if (k == "--update-doc") {
      a.update_doc = value();
    } else if (k == "--command") {
      a.command = value();
    } else if (k == "--quick") {
      a.quick = true;
    } else if (k == "--aggregation-only") {
      a.aggregation_only = true;
    } else {
      std::fprintf(stderr,
                   "usage: features_bench [--quick] [--aggregation-only] [--update-doc FILE] "
                   "[--command TEXT]\n");
      std::exit(k == "--help" ? 0 : 2);
    }
  }
  if (a.quick) {
    a.keys = 100'000;
    a.events_per_rep = 300'000;
    a.reps = 3;
    a.lookup_entities = 10'000;
    a.lookups_1 = 3'000;
    a.lookups_100 = 300;
  }
  return a;
}

// Deterministic pseudo-random numbers (splitmix64), so every run sees the same events.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int64_t Below(int64_t n) { return static_cast<int64_t>(Next() % static_cast<uint64_t>(n)); }
};

double WallSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}
// Nearest-rank percentile of sorted samples.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()));
  return sorted[std::min(rank, sorted.size() - 1)];
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
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

// ---------------------------------------------------------------------------------------------
// Definitions. The aggregation view: 5 windows x count + 5 x sum, each with its own slide.

constexpr char kEntities[] = R"(
entities:
  user:
    keys: [user_id]
sources:
  events:
    kind: push
    timestamp: ts
    timestamp_unit: ms
    lateness: 10s
)";

constexpr char kActivityView[] = R"(
  user_activity:
    entity: user
    source: events
    schema:
      amount: float64
    aggregations:
      events_1m: count over 1m, every 10s
      events_10m: count over 10m, every 1m
      events_1h: count over 1h, every 5m
      events_6h: count over 6h, every 30m
      events_1d: count over 1d, every 1h
      spend_1m: sum(amount) over 1m, every 10s
      spend_10m: sum(amount) over 10m, every 1m
      spend_1h: sum(amount) over 1h, every 5m
      spend_6h: sum(amount) over 6h, every 30m
      spend_1d: sum(amount) over 1d, every 1h
)";

// The second view of the lookups' 20 features: other functions over other fields.
constexpr char kProfileView[] = R"(
  user_profile:
    entity: user
    source: events
    ttl: 7d
    schema:
      amount: float64
      page: string
    fields:
      country: string
    aggregations:
      last_page: last(page) over 1h, every 1m
      recent_pages: last_n(page, 5) over 1h, every 1m
      amount_events_1h: count(amount) over 1h, every 5m
      mean_amount_1h: mean(amount) over 1h, every 5m
      max_amount_1h: max(amount) over 1h, every 5m
      mean_amount_1d: mean(amount) over 1d, every 1h
      min_amount_1d: min(amount) over 1d, every 1h
      max_amount_1d: max(amount) over 1d, every 1h
      last_amount_1d: last(amount) over 1d, every 1h
)";

const std::vector<std::string> kActivityFeatures = {
    "events_1m", "events_10m", "events_1h", "events_6h", "events_1d",
    "spend_1m",  "spend_10m",  "spend_1h",  "spend_6h",  "spend_1d"};
const std::vector<std::string> kProfileFeatures = {
    "country",       "last_page",      "recent_pages",  "amount_events_1h", "mean_amount_1h",
    "max_amount_1h", "mean_amount_1d", "min_amount_1d", "max_amount_1d",    "last_amount_1d"};

fw::FeatureRegistry Registry(bool with_profile) {
  std::string yaml = absl::StrCat(kEntities, "views:", kActivityView);
  if (with_profile) yaml += kProfileView;
  return Check(fw::FeatureRegistry::Parse({{"bench.yaml", yaml}}), "definitions");
}

constexpr int64_t kT0Ms = 1767225600000;  // 2026-01-01T00:00:00Z

// The pipelines' clock: far enough ahead that no generated event is "in the future".
fw::PipelineOptions BenchPipelineOptions(bool read_store_on_miss) {
  fw::PipelineOptions o;
  o.read_store_on_miss = read_store_on_miss;
  o.clock = [] { return absl::FromUnixMillis(kT0Ms) + absl::Hours(24 * 365); };
  return o;
}

// Events in time order with up to 5 s of disorder (within the 10 s lateness, so none is late).
struct EventGen {
  Rng rng{42};
  int64_t next_ms = kT0Ms;
  int64_t step_us = 1000;  // event time between consecutive events
  int64_t acc_us = 0;

  int64_t NextTime() {
    acc_us += step_us;
    next_ms += acc_us / 1000;
    acc_us %= 1000;
    return next_ms - rng.Below(5000);
  }
};

void AddEvent(rapidjson::Value* array, rapidjson::Document::AllocatorType& alloc, int64_t user,
              int64_t ts, double amount, const std::string* page, const std::string* country) {
  rapidjson::Value e(rapidjson::kObjectType);
  e.AddMember("user_id", rapidjson::Value(static_cast<int64_t>(user)), alloc);
  e.AddMember("ts", rapidjson::Value(static_cast<int64_t>(ts)), alloc);
  e.AddMember("amount", rapidjson::Value(amount), alloc);
  if (page != nullptr) e.AddMember("page", rapidjson::Value(page->c_str(), alloc), alloc);
  if (country != nullptr) e.AddMember("country", rapidjson::Value(country->c_str(), alloc), alloc);
  array->PushBack(e, alloc);
}

// One event per key of `keys` (in order) in batches of `batch`, each built just before it is pushed
// (so it is in the cache, as a request body the server just parsed is) and only the push timed:
// Push of the document, or with `json` PushJson of its text (the parsing included).
struct PushTiming {
  double wall = 0, cpu = 0;
  size_t accepted = 0, late = 0;
};

PushTiming PushKeys(fw::FeaturePipeline& p, EventGen& gen, const std::vector<int64_t>& keys,
                    int batch, bool json) {
  PushTiming t;
  for (size_t i = 0; i < keys.size(); i += batch) {
    rapidjson::Document doc(rapidjson::kArrayType);
    const size_t end = std::min(keys.size(), i + batch);
    doc.Reserve(static_cast<rapidjson::SizeType>(end - i), doc.GetAllocator());
    for (size_t j = i; j < end; ++j) {
      AddEvent(&doc, doc.GetAllocator(), keys[j], gen.NextTime(),
               static_cast<double>(gen.rng.Below(10000)) / 100.0, nullptr, nullptr);
    }
    rapidjson::StringBuffer text;
    if (json) {
      rapidjson::Writer<rapidjson::StringBuffer> writer(text);
      doc.Accept(writer);
    }
    const double w0 = WallSeconds(), c0 = ThreadCpuSeconds();
    fw::PushResult r =
        json ? Check(p.PushJson("events", absl::string_view(text.GetString(), text.GetSize())),
                     "push json")
             : Check(p.Push("events", doc), "push");
    t.cpu += ThreadCpuSeconds() - c0;
    t.wall += WallSeconds() - w0;
    t.accepted += r.accepted;
    t.late += r.late;
  }
  return t;
}

std::vector<int64_t> RandomKeys(Rng& rng, int64_t count, int64_t key_space) {
  std::vector<int64_t> keys(count);
  for (int64_t& k : keys) k = rng.Below(key_space);
  return keys;
}

struct AggResult {
  int64_t keys = 0;
  int64_t events_per_rep = 0;
  int reps = 0;
  int64_t tiles_per_entity = 0;
  double fill_rate = 0;               // first event of each key (state allocated)
  double rate_wall = 0;               // median events/s, pre-parsed DOM
  double rate_cpu = 0;                // median events per CPU-second of the pushing thread
  double rate_min = 0, rate_max = 0;  // over the repetitions, wall clock
  bool json = false;                  // whether the JSON-text figures were measured
  double json_rate_wall = 0;          // PushJson: JSON text parsed too
  double json_rate_cpu = 0;
  size_t late = 0;
  uint64_t entities = 0;
  double rss_gb = 0;
};

double RssGb() {
  std::string status = ReadFile("/proc/self/status");
  for (absl::string_view line : absl::StrSplit(status, '\n')) {
    if (absl::StartsWith(line, "VmRSS:")) {
      return std::strtod(std::string(line.substr(6)).c_str(), nullptr) / (1024.0 * 1024.0);
    }
  }
  return 0;
}

// Repetitions of the JSON-text figure: odd, so the median is one of them.
int JsonReps(const Args& a) { return std::max(1, (a.reps + 1) / 2) | 1; }

// `keys` entities, `reps` timed repetitions of `events_per_rep` events; `json`: also PushJson.
AggResult RunAggregation(const Args& a, int64_t keys, int64_t events_per_rep, int reps, bool json) {
  AggResult r;
  r.keys = keys;
  r.events_per_rep = events_per_rep;
  r.reps = reps;
  r.json = json;
  fw::FeatureRegistry registry = Registry(false);
  fw::FeaturePipeline pipeline(registry, nullptr, BenchPipelineOptions(false));
  EventGen gen;
  // 1M keys over the run: about one event per ms of event time at steady state (12 min of
  // event time per 2M events), so windows roll over as they do in production.
  gen.step_us = 360;
  Rng key_rng{7};

  std::fprintf(stderr, "aggregation: first event of %lld keys\n", static_cast<long long>(keys));
  std::vector<int64_t> fill(keys);
  for (int64_t i = 0; i < keys; ++i) fill[i] = i;
  for (int64_t i = keys - 1; i > 0; --i) std::swap(fill[i], fill[key_rng.Below(i + 1)]);
  {
    PushTiming t = PushKeys(pipeline, gen, fill, a.batch, false);
    r.fill_rate = static_cast<double>(t.accepted) / t.wall;
    r.late += t.late;
  }
  std::vector<double> wall_rates, cpu_rates;
  for (int rep = 0; rep < reps; ++rep) {
    PushTiming t =
        PushKeys(pipeline, gen, RandomKeys(key_rng, events_per_rep, keys), a.batch, false);
    if (t.accepted + t.late != static_cast<size_t>(events_per_rep)) Die("events lost");
    r.late += t.late;
    wall_rates.push_back(static_cast<double>(t.accepted) / t.wall);
    cpu_rates.push_back(static_cast<double>(t.accepted) / t.cpu);
    std::fprintf(stderr, "aggregation rep %d: %.0f events/s (%.0f per CPU-s)\n", rep,
                 wall_rates.back(), cpu_rates.back());
  }
  r.rate_wall = Median(wall_rates);
  r.rate_cpu = Median(cpu_rates);
  r.rate_min = *std::min_element(wall_rates.begin(), wall_rates.end());
  r.rate_max = *std::max_element(wall_rates.begin(), wall_rates.end());

  // The same through PushJson: the JSON text of each batch.
  std::vector<double> json_wall, json_cpu;
  for (int rep = 0; json && rep < JsonReps(a); ++rep) {
    PushTiming t =
        PushKeys(pipeline, gen, RandomKeys(key_rng, events_per_rep, keys), a.batch, true);
    r.late += t.late;
    json_wall.push_back(static_cast<double>(t.accepted) / t.wall);
    json_cpu.push_back(static_cast<double>(t.accepted) / t.cpu);
    std::fprintf(stderr, "aggregation (JSON text) rep %d: %.0f events/s\n", rep, json_wall.back());
  }
  r.json_rate_wall = Median(json_wall);
  r.json_rate_cpu = Median(json_cpu);
  fw::PipelineStats stats = pipeline.Stats();
  r.entities = stats.entities;
  r.tiles_per_entity = stats.entities > 0 ? static_cast<int64_t>(stats.tiles / stats.entities) : 0;
  r.rss_gb = RssGb();
  return r;
}

// ---------------------------------------------------------------------------------------------
// Lookups.

struct Latency {
  std::string path;
  int entities = 0;
  int features = 0;
  int samples = 0;
  double p50_us = 0, p99_us = 0, mean_us = 0;
  double cpu_p50_us = 0, cpu_p99_us = 0;  // the calling thread's CPU time per lookup
  std::string note;
};

Latency Summarize(std::string path, int entities, int features, std::vector<double> us,
                  std::string note = "") {
  std::sort(us.begin(), us.end());
  Latency l;
  l.path = std::move(path);
  l.entities = entities;
  l.features = features;
  l.samples = static_cast<int>(us.size());
  l.p50_us = Percentile(us, 50);
  l.p99_us = Percentile(us, 99);
  double sum = 0;
  for (double v : us) sum += v;
  l.mean_us = us.empty() ? 0 : sum / static_cast<double>(us.size());
  l.note = std::move(note);
  return l;
}

std::vector<std::string> FeatureRefs() {
  std::vector<std::string> refs;
  for (const auto& f : kActivityFeatures) refs.push_back("user_activity:" + f);
  for (const auto& f : kProfileFeatures) refs.push_back("user_profile:" + f);
  return refs;
}

// Requests of `n` random entities each, built up front (the HTTP handler's JSON parsing is not
// part of the figure).
std::vector<fw::LookupRequest> MakeRequests(Rng& rng, int count, int n, int64_t entities,
                                            absl::Time now) {
  std::vector<fw::LookupRequest> out(count);
  const std::vector<std::string> refs = FeatureRefs();
  for (auto& req : out) {
    req.features = refs;
    req.now = now;
    for (int i = 0; i < n; ++i) {
      req.entities.push_back({{"user_id", absl::StrCat(rng.Below(entities))}});
    }
  }
  return out;
}

// Times each lookup; every value must be present (the store really held the entity).
Latency TimeLookups(const std::string& path, const fw::FeaturePipeline& pipeline,
                    const std::vector<fw::LookupRequest>& requests, int warmup) {
  std::vector<double> us, cpu_us;
  us.reserve(requests.size());
  size_t absent = 0, values = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const double c0 = ThreadCpuSeconds();
    const auto t0 = std::chrono::steady_clock::now();
    fw::LookupResult r = Check(fw::GetOnlineFeatures(pipeline, requests[i]), "lookup");
    const auto t1 = std::chrono::steady_clock::now();
    const double c1 = ThreadCpuSeconds();
    if (static_cast<int>(i) >= warmup) {
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      cpu_us.push_back((c1 - c0) * 1e6);
    }
    for (const auto& row : r.rows) {
      for (const auto& v : row) {
        ++values;
        absent += v.present() ? 0 : 1;
      }
    }
  }
  const int n = static_cast<int>(requests.front().entities.size());
  std::string note;
  if (absent > 0) note = absl::StrFormat("%.1f%% of values not PRESENT", 100.0 * absent / values);
  Latency l =
      Summarize(path, n, static_cast<int>(requests.front().features.size()), std::move(us), note);
  std::sort(cpu_us.begin(), cpu_us.end());
  l.cpu_p50_us = Percentile(cpu_us, 50);
  l.cpu_p99_us = Percentile(cpu_us, 99);
  return l;
}

// Plain MGETs on one hiredis connection (no pool, no decoding): the floor of a Redis lookup.
Latency TimeMget(const std::string& label, redisContext* c,
                 const std::vector<std::vector<std::string>>& key_sets, int warmup) {
  std::vector<double> us;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  size_t nil = 0;
  for (size_t i = 0; i < key_sets.size(); ++i) {
    argv.assign({"MGET"});
    lens.assign({4});
    for (const std::string& k : key_sets[i]) {
      argv.push_back(k.data());
      lens.push_back(k.size());
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    const auto t1 = std::chrono::steady_clock::now();
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) Die("MGET failed");
    for (size_t e = 0; e < reply->elements; ++e) {
      nil += reply->element[e]->type == REDIS_REPLY_NIL ? 1 : 0;
    }
    freeReplyObject(reply);
    if (static_cast<int>(i) >= warmup) {
      us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
  }
  if (nil > 0) Die(absl::StrCat(label, ": ", nil, " keys missing"));
  return Summarize(label, 0, static_cast<int>(key_sets.front().size()), std::move(us));
}

// redis-benchmark (one client, no pipelining) running one MGET of `keys`; its CSV line gives
// p50/p99 in ms.
Latency RedisBenchmark(const std::string& label, int port, const std::vector<std::string>& keys,
                       int requests, std::string* command_line) {
  std::vector<std::string> args = {"/usr/bin/redis-benchmark",
                                   "-p",
                                   absl::StrCat(port),
                                   "-n",
                                   absl::StrCat(requests),
                                   "-c",
                                   "1",
                                   "-P",
                                   "1",
                                   "--csv",
                                   "--precision",
                                   "3",
                                   "MGET"};
  args.insert(args.end(), keys.begin(), keys.end());
  *command_line = absl::StrCat("redis-benchmark -p PORT -n ", requests,
                               " -c 1 -P 1 --csv --precision 3 MGET <", keys.size(), " keys>");
  int pipe_fd[2];
  if (pipe(pipe_fd) != 0) Die("pipe");
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(pipe_fd[1], 1);
    close(pipe_fd[0]);
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(pipe_fd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fd[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(pipe_fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  // The last line: "<test>","rps","avg","min","p50","p95","p99","max" (the test name is the
  // command and may hold anything, so read the fields from the end).
  std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipWhitespace());
  if (lines.empty()) Die(absl::StrCat("redis-benchmark printed nothing (status ", status, ")"));
  std::vector<std::string> fields = absl::StrSplit(lines.back(), ',');
  if (fields.size() < 8) Die(absl::StrCat("redis-benchmark output not understood: ", out));
  auto field = [&](size_t from_end) {
    std::string f = fields[fields.size() - from_end];
    f.erase(std::remove(f.begin(), f.end(), '"'), f.end());
    return std::strtod(f.c_str(), nullptr);
  };
  Latency l;
  l.path = label;
  l.features = static_cast<int>(keys.size());
  l.samples = requests;
  l.mean_us = field(6) * 1000;
  l.p50_us = field(4) * 1000;
  l.p99_us = field(2) * 1000;
  l.note = absl::StrFormat("%.0f requests/s", field(7));
  return l;
}

struct LookupReport {
  std::vector<Latency> rows;
  std::vector<Latency> baselines;
  std::vector<std::string> baseline_commands;
  int64_t entities = 0;
  size_t state_bytes_activity = 0, state_bytes_profile = 0;
};

LookupReport RunLookups(const Args& a) {
  LookupReport rep;
  rep.entities = a.lookup_entities;
  fw::FeatureRegistry registry = Registry(true);
  const std::string dir = fw::testing::MakeTempDir("flywheel-features-bench");
  if (dir.empty()) Die("cannot create a temporary folder");
  fw::RocksDbStoreOptions ro;
  ro.path = dir + "/store";
  std::unique_ptr<fw::OnlineStore> rocks = Check(fw::OpenRocksDbStore(ro), "rocksdb");

  // The state of every entity, from events over the day before the lookup time, flushed to
  // RocksDB. This pipeline holds it all in memory too: the server's path.
  fw::FeaturePipeline ingest(registry, rocks.get(), BenchPipelineOptions(false));
  absl::Time now;  // of the lookups: just after the last event
  {
    std::fprintf(stderr, "lookups: building %lld entities\n",
                 static_cast<long long>(a.lookup_entities));
    const int64_t total = a.lookup_entities * a.events_per_entity;
    // Entity after entity, round after round, one round per 50 min of event time: every entity
    // has events in each hour before the lookup time, so its 1h features are present.
    EventGen gen;
    gen.step_us = std::max<int64_t>(1, 3'000'000'000LL / a.lookup_entities);
    gen.next_ms = kT0Ms + 5000;
    Rng rng{11};
    const std::vector<std::string> pages = {"/", "/search", "/item", "/cart", "/checkout"};
    const std::vector<std::string> countries = {"fr", "de", "us", "jp", "br"};
    for (int64_t i = 0; i < total; i += a.batch) {
      rapidjson::Document doc(rapidjson::kArrayType);
      for (int64_t j = i; j < std::min(total, i + a.batch); ++j) {
        // Every entity gets events_per_entity events, spread over the day.
        const int64_t user = j % a.lookup_entities;
        AddEvent(&doc, doc.GetAllocator(), user, gen.NextTime(),
                 static_cast<double>(rng.Below(10000)) / 100.0, &pages[rng.Below(5)],
                 &countries[user % 5]);
      }
      Check(ingest.Push("events", doc), "push");
    }
    Check(ingest.Flush(), "flush");
    now = absl::FromUnixMillis(gen.next_ms + 1000);
  }

  // The same stored states, copied into Redis.
  std::unique_ptr<fw::testing::RedisTestServer> redis =
      Check(fw::testing::RedisTestServer::Start(), "redis-server");
  fw::RedisStoreOptions redis_options;
  redis_options.server = redis->options();
  std::unique_ptr<fw::OnlineStore> redis_store =
      Check(fw::OpenRedisStore(redis_options), "redis store");
  {
    fw::WriteBatch batch;
    auto send = [&] {
      Check(redis_store->Write(batch), "redis write");
      batch = fw::WriteBatch();
    };
    Check(rocks->Scan("",
                      [&](absl::string_view key, absl::string_view value) {
                        if (absl::StartsWith(key, "user_activity")) {
                          rep.state_bytes_activity = value.size();
                        } else {
                          rep.state_bytes_profile = value.size();
                        }
                        batch.puts.emplace_back(std::string(key), std::string(value));
                        if (batch.puts.size() >= 1000) send();
                        return absl::OkStatus();
                      }),
          "scan");
    if (!batch.empty()) send();
  }

  // Reopened, so lookups read the store's files (the log is replayed and flushed at open) rather
  // than the memtables the ingestion just wrote. `ingest` does not touch its store after the
  // flush: its lookups read its memory only.
  rocks.reset();
  rocks = Check(fw::OpenRocksDbStore(ro), "rocksdb reopen");

  // Fresh pipelines over the populated stores: nothing in memory, every lookup reads the store.
  fw::FeaturePipeline from_rocks(registry, rocks.get(), BenchPipelineOptions(true));
  fw::FeaturePipeline from_redis(registry, redis_store.get(), BenchPipelineOptions(true));

  Rng rng{99};
  const int warm1 = std::max(100, a.lookups_1 / 20), warm100 = std::max(10, a.lookups_100 / 20);
  std::vector<fw::LookupRequest> one =
      MakeRequests(rng, a.lookups_1 + warm1, 1, a.lookup_entities, now);
  std::vector<fw::LookupRequest> hundred =
      MakeRequests(rng, a.lookups_100 + warm100, 100, a.lookup_entities, now);
  struct Path {
    const char* name;
    const fw::FeaturePipeline* pipeline;
  };
  for (const Path& p :
       {Path{"in memory (the server's path)", &ingest}, Path{"embedded RocksDB store", &from_rocks},
        Path{"Redis store", &from_redis}}) {
    std::fprintf(stderr, "lookups: %s\n", p.name);
    rep.rows.push_back(TimeLookups(p.name, *p.pipeline, one, warm1));
    rep.rows.push_back(TimeLookups(p.name, *p.pipeline, hundred, warm100));
  }

  // Baselines on the same Redis.
  std::fprintf(stderr, "lookups: MGET baselines\n");
  timeval tv{5, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", redis->port(), tv);
  if (c == nullptr || c->err != 0) Die("hiredis connect");
  auto state_keys = [&](const fw::LookupRequest& req) {
    std::vector<std::string> keys;
    for (const char* view : {"user_activity", "user_profile"}) {
      for (const auto& row : req.entities) {
        keys.push_back(absl::StrCat(redis_options.prefix, ":", fw::StateKey(view, row[0].second)));
      }
    }
    return keys;
  };
  // The naive layout: one small key per (entity, feature); 20 and 2000 of them.
  std::vector<std::string> small_keys;
  for (int i = 0; i < 2000; ++i) {
    small_keys.push_back(absl::StrCat("bench:feature:", i));
    auto* reply = static_cast<redisReply*>(
        redisCommand(c, "SET %s %s", small_keys.back().c_str(), "12345678"));
    if (reply == nullptr) Die("SET failed");
    freeReplyObject(reply);
  }
  for (const auto* set : {&one, &hundred}) {
    std::vector<std::vector<std::string>> sets;
    for (const auto& req : *set) sets.push_back(state_keys(req));
    const int warm = set == &one ? warm1 : warm100;
    Latency l = TimeMget("hiredis MGET of the lookup's state keys", c, sets, warm);
    l.entities = static_cast<int>(set->front().entities.size());
    rep.baselines.push_back(l);
    const size_t n = set == &one ? 20 : 2000;
    std::vector<std::string> fixed(small_keys.begin(), small_keys.begin() + n);
    std::vector<std::vector<std::string>> fixed_sets(set->size(), fixed);
    l = TimeMget("hiredis MGET of 8-byte keys, one per value", c, fixed_sets, warm);
    l.entities = static_cast<int>(set->front().entities.size());
    rep.baselines.push_back(l);
  }
  redisFree(c);
  {
    std::string cmd;
    Latency l = RedisBenchmark("redis-benchmark MGET of one lookup's state keys", redis->port(),
                               state_keys(one.front()), a.quick ? 20000 : 100000, &cmd);
    l.entities = 1;
    rep.baselines.push_back(l);
    rep.baseline_commands.push_back(cmd);
    l = RedisBenchmark("redis-benchmark MGET of 8-byte keys, one per value", redis->port(),
                       std::vector<std::string>(small_keys.begin(), small_keys.begin() + 20),
                       a.quick ? 20000 : 100000, &cmd);
    l.entities = 1;
    rep.baselines.push_back(l);
    rep.baseline_commands.push_back(cmd);
    l = RedisBenchmark("redis-benchmark MGET of one lookup's state keys", redis->port(),
                       state_keys(hundred.front()), a.quick ? 2000 : 10000, &cmd);
    l.entities = 100;
    rep.baselines.push_back(l);
    rep.baseline_commands.push_back(cmd);
    l = RedisBenchmark("redis-benchmark MGET of 8-byte keys, one per value", redis->port(),
                       small_keys, a.quick ? 2000 : 10000, &cmd);
    l.entities = 100;
    rep.baselines.push_back(l);
    rep.baseline_commands.push_back(cmd);
  }
  redis.reset();  // kills the server
  rocks.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return rep;
}

// ---------------------------------------------------------------------------------------------
// The report.

std::string Rate(double r) {
  return r >= 1e6 ? absl::StrFormat("%.2fM", r / 1e6) : absl::StrFormat("%.0fk", r / 1e3);
}
std::string Us(double us) {
  return us >= 1000 ? absl::StrFormat("%.2f ms", us / 1000) : absl::StrFormat("%.1f us", us);
}

std::string Report(const Args& a, const AggResult& agg, const AggResult& small,
                   const LookupReport& look, const std::string& load_start) {
  std::vector<std::string> L;
  const Latency* embedded_1 = nullptr;
  const Latency* memory_1 = nullptr;
  for (const Latency& l : look.rows) {
    if (l.entities != 1) continue;
    if (absl::StrContains(l.path, "RocksDB")) embedded_1 = &l;
    if (absl::StrContains(l.path, "memory")) memory_1 = &l;
  }
  const bool agg_met = agg.rate_wall >= 1e6;
  const bool agg_cpu_met = agg.rate_cpu >= 1e6;
  L.push_back("## Feature store");
  L.push_back("");
  L.push_back(
      "Measured by `bench/features_bench.cc` (`make bench` runs it): the feature pipeline and "
      "online lookups of `src/features`, in one process, against a `redis-server` the bench "
      "starts on a free loopback port (nothing saved to disk) and plain MGETs on that same "
      "server.");
  L.push_back("");
  L.push_back(absl::StrCat(
      "- Machine: ", Shell("lscpu | sed -n 's/^Model name: *//p'"), ", ", Shell("nproc"),
      " CPUs; load average (1 min) at start / end: ", load_start, " / ", LoadAverage(),
      " (the machine is shared: other work makes figures noisier)"));
  L.push_back(absl::StrCat("- Date: ", Shell("date -u '+%Y-%m-%d %H:%M UTC'"), "; ",
                           Shell("redis-server --version | cut -d' ' -f1-3"),
                           "; build: the CMake build type of the binary (RelWithDebInfo, -O2)"));
  L.push_back(absl::StrCat("- Command: `", a.command, "`"));
  L.push_back("");
  L.push_back("Goals (issue 5):");
  L.push_back("");
  L.push_back(absl::StrFormat(
      "- At least 1M events/s per core for count/sum aggregations: **%s** (%s events/s on one "
      "thread, wall clock; %s per CPU-second of that thread)%s.",
      agg_met ? "met" : (agg_cpu_met ? "missed on wall clock, met per CPU-second" : "missed"),
      Rate(agg.rate_wall), Rate(agg.rate_cpu),
      agg_met ? "" : " — the wall clock includes time the thread lost to other work"));
  if (embedded_1 != nullptr && memory_1 != nullptr) {
    L.push_back(absl::StrFormat(
        "- Embedded lookup p99 under 100 us for 1 entity x 20 features: **%s** — %s from memory "
        "(what `flywheel serve` does with the embedded store: it restores every entity at start "
        "and serves lookups from memory), %s reading the RocksDB store on every lookup.",
        memory_1->p99_us < 100 ? "met" : "missed", Us(memory_1->p99_us), Us(embedded_1->p99_us)));
  }
  L.push_back("");
  L.push_back("### Stream aggregation");
  L.push_back("");
  L.push_back(absl::StrFormat(
      "One view, 10 windows: count and sum(amount) over 1m every 10s, 10m every 1m, 1h every 5m, "
      "6h every 30m and 1d every 1h (%lld tiles per entity); %lld keys; events in event-time "
      "order with up to 5 s of disorder (lateness 10 s, so none is late: %zu late), keys uniform "
      "at random, about 2800 events per second of event time so windows roll over. One thread "
      "pushes batches of %d events (`FeaturePipeline::Push`, the HTTP push path without the "
      "event log). Events come as RapidJSON documents (pre-parsed: the cost "
      "is the pipeline's own — checking and converting each event, the watermark, folding into "
      "the tiles); the JSON-text row parses each batch's text too (`PushJson`). Each batch is "
      "generated just before its push (so it is in the cache, like a body the server just "
      "parsed) and only the push is timed. Each figure is "
      "the median of %d repetitions of %lld events (%d for JSON text) after every key got its "
      "first event. Entities held: %llu; process RSS at the end %.1f GB. The same with %lld "
      "keys (%d repetitions) shows what the state's size costs: at 1M keys the state is far "
      "larger than the caches, so an event mostly waits on memory for its entity; `Apply` "
      "requests that memory ahead (the hash map slot 16 events ahead, the state's window heads "
      "and tiles 8 ahead) so that several entities' waits overlap.",
      static_cast<long long>(agg.tiles_per_entity), static_cast<long long>(agg.keys), agg.late,
      a.batch, agg.reps, static_cast<long long>(agg.events_per_rep), JsonReps(a),
      static_cast<unsigned long long>(agg.entities), agg.rss_gb, static_cast<long long>(small.keys),
      small.reps));
  L.push_back("");
  L.push_back(
      "| keys | input | events/s (wall, one thread; median) | range over repetitions | events "
      "per CPU-second (median) |");
  L.push_back("|---:|:---|---:|---:|---:|");
  for (const AggResult* r : {&agg, &small}) {
    L.push_back(
        absl::StrFormat("| %lld | pre-parsed events (`Push`), steady state | %s | %s - %s "
                        "| %s |",
                        static_cast<long long>(r->keys), Rate(r->rate_wall), Rate(r->rate_min),
                        Rate(r->rate_max), Rate(r->rate_cpu)));
    if (r->json) {
      L.push_back(absl::StrFormat("| %lld | JSON text (`PushJson`: parse + push) | %s | - | %s |",
                                  static_cast<long long>(r->keys), Rate(r->json_rate_wall),
                                  Rate(r->json_rate_cpu)));
    }
    L.push_back(absl::StrFormat("| %lld | first event of each key (state allocated) | %s | - | - |",
                                static_cast<long long>(r->keys), Rate(r->fill_rate)));
  }
  L.push_back("");
  L.push_back("### Online lookups");
  L.push_back("");
  L.push_back(absl::StrFormat(
      "20 features from two views of the same entity: the 10 count/sum windows above and 10 "
      "others (a raw field, last, last_n(5), count(field), mean, min, max over 1h and 1d). "
      "%lld entities, each built from %lld events (one every 50 min of event time, the last one "
      "within the hour before the lookup time), flushed "
      "to a RocksDB store (block cache 64 MB) and copied into Redis; stored state per entity: "
      "%zu + %zu bytes. Each lookup is one `GetOnlineFeatures` call (the function behind `POST "
      "/v1/features/online`; the ensemble `feature_lookup` step reads the same "
      "`FeaturePipeline::ReadViews`) for random entities, requests built up front (no HTTP, no "
      "JSON). \"In memory\" is the pipeline that ingested the events; the store rows use a "
      "fresh pipeline over the populated store with `read_store_on_miss`, so every lookup reads "
      "and decodes the entities' states from the store (one `MultiGet` per lookup across both "
      "views: 2 keys for 1 entity, 200 for 100; Redis: one MGET over a pooled connection). %d "
      "timed "
      "lookups of 1 entity and %d of 100 per row, after a warm-up; every value read was PRESENT "
      "unless noted.",
      static_cast<long long>(look.entities), static_cast<long long>(a.events_per_entity),
      look.state_bytes_activity, look.state_bytes_profile, a.lookups_1, a.lookups_100));
  L.push_back("");
  L.push_back(
      "| path | entities x features | p50 | p99 | mean | CPU time p50 | CPU time p99 | note |");
  L.push_back("|:---|---:|---:|---:|---:|---:|---:|:---|");
  for (const Latency& l : look.rows) {
    L.push_back(absl::StrFormat("| %s | %d x %d | %s | %s | %s | %s | %s | %s |", l.path,
                                l.entities, l.features, Us(l.p50_us), Us(l.p99_us), Us(l.mean_us),
                                Us(l.cpu_p50_us), Us(l.cpu_p99_us), l.note));
  }
  L.push_back("");
  L.push_back(
      "p50/p99/mean: wall clock per lookup. CPU time: the looking-up thread's CPU time per "
      "lookup, which leaves out time the thread waited for a CPU on this shared machine (and, "
      "for Redis, the wait for the server's reply), so the wall-clock p99s above are mostly "
      "other work's doing where the two differ much.");
  L.push_back("");
  L.push_back(
      "Baselines on the same Redis, same run: MGET alone, without decoding or evaluating "
      "anything. \"State keys\" are the keys the Redis lookup reads (one state value per view "
      "and entity, random entities for hiredis, the first request's for redis-benchmark); "
      "\"8-byte keys\" is a layout with one small key per entity and feature (20 keys, 2000 "
      "for 100 entities). hiredis: one connection, one blocking `redisCommandArgv` per MGET. "
      "redis-benchmark: one client, no pipelining. The Redis store rows above make one MGET per "
      "lookup for both views, the same keys as the state-keys baseline (one round trip). "
      "redis-benchmark repeats one fixed set of keys and uses its own bundled hiredis; the "
      "hiredis rows link Debian's hiredis 0.14, which builds a reply object per element (the gap "
      "between the two at 200 and 2000 keys was not investigated further).");
  L.push_back("");
  L.push_back("| baseline | entities | keys per MGET | p50 | p99 | mean | note |");
  L.push_back("|:---|---:|---:|---:|---:|---:|:---|");
  for (const Latency& l : look.baselines) {
    L.push_back(absl::StrFormat("| %s | %d | %d | %s | %s | %s | %s |", l.path, l.entities,
                                l.features, Us(l.p50_us), Us(l.p99_us), Us(l.mean_us), l.note));
  }
  L.push_back("");
  L.push_back("redis-benchmark commands (PORT: the bench's server; keys as listed above):");
  L.push_back("");
  for (const std::string& c : look.baseline_commands) L.push_back(absl::StrCat("- `", c, "`"));
  return absl::StrJoin(L, "\n") + "\n";
}

// Replaces the "## Feature store" section of `path` (up to the next "## " heading, leaving the
// "<!-- ... -->" marker lines right before that heading to the section they open), or appends
// it. The other benchmarks of `make bench` replace their own sections the same way.
void UpdateDoc(const std::string& path, const std::string& section) {
  std::vector<std::string> lines = absl::StrSplit(ReadFile(path), '\n');
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  size_t start = 0;
  while (start < lines.size() && lines[start] != "## Feature store") ++start;
  size_t end = start;
  if (start < lines.size()) {
    end = start + 1;
    while (end < lines.size() && !absl::StartsWith(lines[end], "## ")) ++end;
    if (end < lines.size()) {
      while (end > start + 1 && absl::StartsWith(lines[end - 1], "<!--")) --end;
    }
  }
  std::string head = absl::StrJoin(lines.begin(), lines.begin() + start, "\n");
  std::string tail = absl::StrJoin(lines.begin() + end, lines.end(), "\n");
  absl::StripTrailingAsciiWhitespace(&head);
  absl::StripLeadingAsciiWhitespace(&tail);
  std::string out = head.empty() ? "" : head + "\n\n";
  out += section;
  if (!tail.empty()) absl::StrAppend(&out, "\n", tail, "\n");
  std::ofstream(path) << out;
  std::fprintf(stderr, "wrote %s\n", path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = ParseArgs(argc, argv);
  const std::string load_start = LoadAverage();
  if (a.aggregation_only) {
    // For profiling the aggregation: its per-rep lines go to stderr.
    AggResult only = RunAggregation(a, a.keys, a.events_per_rep, a.reps, false);
    std::printf("%lld keys: %.0f events/s wall, %.0f per CPU-s (median), RSS %.2f GB\n",
                static_cast<long long>(only.keys), only.rate_wall, only.rate_cpu, only.rss_gb);
    return 0;
  }
  AggResult agg = RunAggregation(a, a.keys, a.events_per_rep, a.reps, true);
  AggResult small = RunAggregation(a, a.keys / 10, a.events_per_rep, 3, false);
  LookupReport look = RunLookups(a);
  const std::string report = Report(a, agg, small, look, load_start);
  std::fputs(report.c_str(), stdout);
  if (!a.update_doc.empty()) UpdateDoc(a.update_doc, report);
  return 0;
}
