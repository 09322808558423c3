#!/usr/bin/python3
"""What model monitoring costs the request path (`make bench` runs it after the serving bench):
the maximum throughput of the MLP ranker (examples/models/mlp_ranker, dynamic batching as
committed) served three ways in the same run:

  off    `flywheel serve --drift off`, no prediction log: monitoring does nothing
  drift  drift against the version's profile.json (made here with `flywheel monitor profile`)
  full   drift plus the prediction log at 100% (`--prediction-log-dir DIR --log-sample-rate 1`)

under two loads: `flywheel bench --url ... --concurrency N`, which sends the same bytes in every
request (so the log compresses each record to a few bytes), and wrk with a Lua script cycling
through 4,096 distinct random rows (binary tensor extension, as flywheel bench sends them), whose
records compress as real traffic does. Goals: under 5% throughput loss with drift only, under
15% with full logging. Each rep measures the three modes in a rotated order, each on a fresh
server (the log folder is removed after each full run), both loads in alternating order; the
report shows medians over reps, the median of the per-rep ratios, the server's CPU time per
request, and what the log wrote and dropped. bench/monitoring_observe_bench (when built) adds
the in-process CPU cost of one request's monitoring. The section "Model monitoring overhead" of
docs/benchmarks.md is replaced (or appended); nothing else there changes.

Usage: /usr/bin/python3 bench/monitoring_bench.py BUILD_DIR [--reps 3] [--duration 5]
       [--concurrency 64] [--max-load 1.5] [--out FILE] [--command TEXT]
"""
import argparse
import datetime
import http.client
import json
import os
import re
import shlex
import shutil
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, HERE)

from serving_bench import (WARMUP_PER_CONNECTION, WRK, Server, flywheel_load, log,  # noqa: E402
                           median, run, wait_for_quiet, wrk)
import serving_report  # noqa: E402

SECTION = "## Model monitoring overhead"
MODEL = "mlp_ranker"
MODES = ("off", "drift", "full")
LOADS = ("flywheel", "wrk")
NAMES = {"off": "off", "drift": "drift only", "full": "drift + 100% log"}
GOAL_LOSS = {"drift": 0.05, "full": 0.15}
DISTINCT_ROWS = 4096
LOG_COUNTERS = ("flywheel_prediction_log_written_total", "flywheel_prediction_log_dropped_total",
                "flywheel_prediction_log_bytes_total")

# wrk: POST the binary tensor extension's body (a JSON header, then 1,024 bytes of FP32 data),
# cycling through distinct random rows made once per wrk thread with LuaJIT's ffi.
WRK_LUA = r"""
local ffi = require("ffi")
local header = '{"inputs":[{"name":"features","shape":[1,256],"datatype":"FP32",' ..
               '"parameters":{"binary_data_size":1024}}],' ..
               '"outputs":[{"name":"score","parameters":{"binary_data":true}}]}'
local rows = %d
local bodies = {}
local next_row = 0
wrk.method = "POST"
wrk.path = "/v2/models/%s/infer"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = tostring(#header)
function init(args)
  math.randomseed(12345)
  local row = ffi.new("float[256]")
  for i = 1, rows do
    for j = 0, 255 do row[j] = math.random() * 2 - 1 end
    bodies[i] = header .. ffi.string(row, 1024)
  end
end
function request()
  next_row = next_row %% rows + 1
  return wrk.format(nil, nil, nil, bodies[next_row])
end
"""


def get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request("GET", path)
        return c.getresponse().read().decode()
    finally:
        c.close()


def log_counters(srv):
    text = get(srv.metrics_port, "/metrics")
    out = {}
    for name in LOG_COUNTERS:
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        out[name] = float(m.group(1)) if m else 0.0
    return out


def drift_rows(srv):
    v = json.loads(get(srv.http_port, f"/v1/monitor/models/{MODEL}/drift"))["versions"][0]
    return {"has_profile": v["has_profile"], "rows_seen": v["window"]["rows_seen"],
            "rows_sampled": v["window"]["rows_sampled"]}


class Bench:
    def __init__(self, a):
        self.a = a
        self.flywheel = os.path.abspath(os.path.join(a.build, "flywheel"))
        self.observe_bench = os.path.abspath(
            os.path.join(a.build, "bench", "monitoring_observe_bench"))
        self.work = os.path.abspath(a.work or os.path.join(a.build, "bench-work", "monitoring"))
        shutil.rmtree(self.work, ignore_errors=True)
        os.makedirs(self.work)
        self.repo = os.path.join(self.work, "repo")
        self.lua = os.path.join(self.work, "distinct.lua")
        with open(self.lua, "w") as f:
            f.write(WRK_LUA % (DISTINCT_ROWS, MODEL))
        self.loads = []
        self.problems = []

    def make_repository(self):
        """mlp_ranker as committed, with a profile of reference data distributed like both loads'
        random inputs (uniform in [-1, 1))."""
        shutil.copytree(os.path.join(ROOT, "examples", "models", MODEL),
                        os.path.join(self.repo, MODEL))
        data = os.path.join(self.work, "reference.npy")
        rng = np.random.default_rng(0)
        np.save(data, rng.uniform(-1, 1, (4000, 256)).astype(np.float32))
        run([self.flywheel, "monitor", "profile", "--model-repository", self.repo, "--model", MODEL,
             "--data", data])

    def flags(self, mode):
        if mode == "off":
            return ["--drift", "off"]
        if mode == "drift":
            return ["--drift", "on"]
        return ["--drift", "on", "--prediction-log-dir", os.path.join(self.work, "log"),
                "--log-sample-rate", "1"]

    def load(self, srv, load, mode, rep):
        a = self.a
        if load == "flywheel":
            res = flywheel_load(self.flywheel, srv, MODEL, "http", a.concurrency, a.duration,
                                os.path.join(self.work, f"{mode}-{rep}.json"))
            res["answered"] = res["requests"] + WARMUP_PER_CONNECTION * a.concurrency
        else:
            res = wrk(srv.http_url, self.lua, a.wrk_threads, a.concurrency, a.duration,
                      [srv.proc.pid])
            res["throughput_infer_per_s"] = res["rps"]
            res["answered"] = res["requests"]
            if res["non2xx"] or res["socket_errors"]:
                self.problems.append(f"wrk, {mode}, rep {rep + 1}: {res['non2xx']} non-2xx "
                                     f"responses, socket errors: {res['socket_errors'] or 'none'}")
        return res

    def measure(self, mode, rep):
        out = {}
        with Server(self.flywheel, self.repo, self.flags(mode)) as srv:
            for load in (LOADS if rep % 2 == 0 else LOADS[::-1]):
                before = log_counters(srv) if mode == "full" else None
                res = self.load(srv, load, mode, rep)
                if mode == "full":
                    # Give the writer its last flush, then count what this load logged.
                    deadline = time.time() + 15
                    while True:
                        now = log_counters(srv)
                        done = sum(now[k] - before[k] for k in LOG_COUNTERS[:2])
                        if done >= res["answered"] or time.time() > deadline:
                            break
                        time.sleep(0.1)
                    res["log_written"], res["log_dropped"], res["log_bytes"] = (
                        now[k] - before[k] for k in LOG_COUNTERS)
                out[load] = res
            if mode != "off":
                rows = drift_rows(srv)
                out["drift_rows"] = rows
                if not rows["has_profile"]:
                    self.problems.append(f"{mode}, rep {rep + 1}: the drift monitor has no profile")
        shutil.rmtree(os.path.join(self.work, "log"), ignore_errors=True)
        return out

    def run(self):
        runs = {m: [] for m in MODES}
        for rep in range(self.a.reps):
            order = MODES[rep % 3:] + MODES[:rep % 3]
            self.loads.append(os.getloadavg()[0])
            for mode in order:
                log(f"   rep {rep + 1}/{self.a.reps}: {mode}")
                runs[mode].append(self.measure(mode, rep))
                for load in LOADS:
                    r = runs[mode][-1][load]
                    log(f"      {load:8s} {r['throughput_infer_per_s']:.0f}/s, p99 "
                        f"{r['p99_us']:.0f} us, server CPU {r['cpu_us_per_request']:.1f} us/req")
        self.loads.append(os.getloadavg()[0])
        return runs

    def observe_costs(self):
        """monitoring_observe_bench's process CPU per request, by mode; None when not built."""
        if not os.access(self.observe_bench, os.X_OK):
            log(f"   {self.observe_bench} not built: the in-process costs are left out")
            return None
        out = run([self.observe_bench, "--benchmark_format=json"])
        costs = {}
        for b in json.loads(out)["benchmarks"]:
            m = re.search(r"mode:(\d)/zstd_level:(-?\d+)(?:/direct_io:(\d))?", b["name"])
            mode, level = MODES[int(m.group(1))], int(m.group(2))
            # "full" is the server's default log (zstd level -1, direct I/O); other settings are
            # named after what differs.
            extras = []
            if mode == "full" and level != -1:
                extras.append(f"zstd level {level}")
            if mode == "full" and m.group(3) == "0":
                extras.append("through the page cache")
            key = ", ".join([mode] + extras)
            costs[key] = {"cpu_ns": b["process_cpu_ns_per_request"],
                          "bytes_per_record": b.get("log_bytes_per_record"),
                          "dropped": b.get("log_dropped")}
        return costs


def summarize(runs):
    out = {}
    for load in LOADS:
        s = {"modes": {}, "ratio": {}, "ratios": {}}
        for mode, reps in runs.items():
            rows = [r[load] for r in reps]
            s["modes"][mode] = {k: median(r.get(k) for r in rows) for k in (
                "throughput_infer_per_s", "p50_us", "p99_us", "cpu_us_per_request", "avg_batch")}
        for mode in ("drift", "full"):
            ratios = [r[load]["throughput_infer_per_s"] / o[load]["throughput_infer_per_s"]
                      for r, o in zip(runs[mode], runs["off"])]
            s["ratios"][mode] = ratios
            s["ratio"][mode] = median(ratios)
        full = [r[load] for r in runs["full"]]
        s["log"] = {k: sum(r.get(k) or 0 for r in full)
                    for k in ("answered", "log_written", "log_dropped", "log_bytes")}
        out[load] = s
    out["drift_rows"] = {k: median(r["drift_rows"][k] for r in runs["drift"])
                         for k in ("rows_seen", "rows_sampled")}
    return out


def section(a, command, started, loads, problems, s, costs):
    fmt, us = serving_report.fmt, serving_report.us
    L = [SECTION, "",
         "What monitoring costs the request path: maximum throughput of the MLP ranker served "
         "with monitoring off, with drift only, and with drift plus a 100% prediction log, in "
         "the same run. Written by `bench/monitoring_bench.py` (`make bench` runs it).", "",
         f"- Command: `{command}`",
         f"- Machine: {serving_report.machine()}; load generator and server share it",
         f"- Date: {started.strftime('%Y-%m-%d %H:%M %Z')}",
         "- Load average (1 min) at the start of each rep and at the end: "
         + ", ".join(f"{x:.2f}" for x in loads)
         + " (other work on the machine makes absolute figures noisy; same-rep ratios hold up "
         "better)",
         f"- Server: a fresh `flywheel serve` per mode and rep; {MODEL} as committed (dynamic "
         "batching, 2 instances) with a profile.json from `flywheel monitor profile`. Requests "
         "carry no id, so no label recording (one hash-map insert under one of 16 shard locks "
         "per row when they do).",
         f"- Loads, one random FP32 [1,256] row per request, binary tensor extension: "
         f"*flywheel bench* is `flywheel bench --url ... --model {MODEL} --concurrency "
         f"{a.concurrency} --duration-secs {a.duration}`, which repeats the same bytes (so a log "
         f"record compresses to a few bytes); *wrk distinct* is `wrk -t{a.wrk_threads} "
         f"-c{a.concurrency} -d{a.duration}s` cycling through {DISTINCT_ROWS:,} distinct random "
         "rows, whose records compress as real traffic does.",
         f"- Every figure is the median of {a.reps} reps (modes in a rotated order each rep). "
         "*loss* is 1 - the median of the per-rep throughput ratios to *off*. *server CPU/req* "
         "is the server's CPU time (all threads, the log writer included) per request.", "",
         "| load | monitoring | inferences/s | loss | p50 | p99 | server CPU/req |",
         "|:---|:---|---:|---:|---:|---:|---:|"]
    load_names = {"flywheel": "flywheel bench", "wrk": "wrk distinct"}
    for load in LOADS:
        for mode in MODES:
            m = s[load]["modes"][mode]
            loss = "-" if mode == "off" else f"{100 * (1 - s[load]['ratio'][mode]):.1f}%"
            L.append(f"| {load_names[load]} | {NAMES[mode]} | "
                     f"{fmt(m['throughput_infer_per_s'])} | {loss} | {us(m['p50_us'])} | "
                     f"{us(m['p99_us'])} | {us(m['cpu_us_per_request'], 1)} |")
    L.append("")
    for load in LOADS:
        for mode in ("drift", "full"):
            loss = 1 - s[load]["ratio"][mode]
            ok = loss < GOAL_LOSS[mode]
            lg = s[load]["log"]
            share = lg["log_dropped"] / max(1, lg["log_written"] + lg["log_dropped"])
            verdict = serving_report.verdict(ok)
            if mode == "full" and share > 0.01:
                # Not 100% logging: the loss understates what logging every record costs.
                verdict = (f"**not met**: the writer fell behind and the log dropped "
                           f"{100 * share:.0f}% of the records (it sheds records rather than "
                           "slow requests down), so this was not 100% logging")
            L.append(f"- {load_names[load]}, {NAMES[mode]}: loss {100 * loss:.1f}% (per rep: "
                     + ", ".join(f"{100 * (1 - r):.1f}%" for r in s[load]["ratios"][mode])
                     + f"); goal < {100 * GOAL_LOSS[mode]:.0f}%: {verdict}.")
    for load in LOADS:
        lg = s[load]["log"]
        per_record = lg["log_bytes"] / lg["log_written"] if lg["log_written"] else None
        L.append(f"- Prediction log, {load_names[load]}, full-logging runs: "
                 f"{fmt(lg['answered'])} requests answered, {fmt(lg['log_written'])} records "
                 f"written, {fmt(lg['log_dropped'])} dropped by the full queue, "
                 f"{fmt(lg['log_bytes'] / 1e6, 1)} MB compressed ({fmt(per_record)} bytes a "
                 "record).")
    d = s["drift_rows"]
    L.append(f"- Drift (per drift-only server, both loads, median): {fmt(d['rows_seen'])} rows "
             f"seen, {fmt(d['rows_sampled'])} sampled into the window: "
             "DriftOptions::max_rows_per_second (2,000 rows/s by default) bounds the work, and "
             "sampling is uniform, so the window's distribution is unbiased.")
    L.append("- Throughput ratios on this machine move by tens of percent from rep to rep (see "
             "the per-rep figures and the load average); the in-process CPU costs below are the "
             "steadier measure of what monitoring adds to a request.")
    if costs:
        parts = []
        for key, c in costs.items():
            mode, _, rest = key.partition(", ")
            text = f"{NAMES[mode]}{', ' + rest if rest else ''}: {c['cpu_ns']:,.0f} ns"
            if c.get("bytes_per_record"):
                text += f" ({c['bytes_per_record']:,.0f} bytes a record)"
            parts.append(text)
        L.append("- In-process CPU per request (`bench/monitoring_observe_bench`: "
                 "VersionMonitor::Observe on distinct [1,256] rows, the log writer's CPU "
                 "included): " + "; ".join(parts) + ".")
        base = s["wrk"]["modes"]["off"]["cpu_us_per_request"]
        if base and "full" in costs and "drift" in costs:
            full_us, drift_us = costs["full"]["cpu_ns"] / 1e3, costs["drift"]["cpu_ns"] / 1e3
            L.append(f"- Against the {base:.1f} us of server CPU a request takes with monitoring "
                     f"off (wrk distinct), drift adds {100 * drift_us / base:.2f}% and a 100% log "
                     f"{100 * full_us / base:.0f}%: where the server is CPU-bound, that is a "
                     f"throughput loss of about {100 * full_us / (base + full_us):.0f}% for "
                     "logging every request of a model as cheap as this one (less with costlier "
                     "models or a lower sampling rate).")
    if problems:
        L += ["", "Problems in this run:", ""] + [f"- {p}" for p in problems]
    L.append("")
    return "\n".join(L)


def replace_section(path, text):
    """Replaces this benchmark's section of `path` (up to the next '## ' heading or the end), or
    appends it."""
    doc = ""
    if os.path.exists(path):
        with open(path) as f:
            doc = f.read()
    lines = doc.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        head, tail = doc.rstrip("\n"), ""
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        head = "\n".join(lines[:start]).rstrip("\n")
        tail = "\n".join(lines[end:]).strip("\n")
    out = (head + "\n\n" if head else "") + text.rstrip("\n") + "\n"
    if tail:
        out += "\n" + tail + "\n"
    with open(path, "w") as f:
        f.write(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build", nargs="?", default="build",
                    help="build folder holding the flywheel binary")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5, help="seconds per measurement")
    ap.add_argument("--concurrency", type=int, default=64,
                    help="connections of both load generators")
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--max-load", type=float, default=0.0,
                    help="first wait (up to --max-wait s) for the 1-min load average to fall "
                    "below this")
    ap.add_argument("--max-wait", type=int, default=900)
    ap.add_argument("--work", default=None,
                    help="scratch folder (default BUILD/bench-work/monitoring)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "benchmarks.md"),
                    help=f"markdown file whose '{SECTION[3:]}' section is replaced ('' for none)")
    ap.add_argument("--command", default=None, help="command line to record in the report")
    ap.add_argument("--render", metavar="RESULTS_JSON", default=None,
                    help="measure nothing: rewrite the section from a results.json of an "
                    "earlier run")
    a = ap.parse_args()
    if a.render:
        with open(a.render) as f:
            doc = json.load(f)
        for k, v in doc["settings"].items():
            setattr(a, k, v)
        text = section(a, doc["command"], datetime.datetime.fromisoformat(doc["started"]),
                       doc["loads"], doc["problems"], summarize(doc["runs"]),
                       doc["observe_costs"])
        print(text)
        if a.out:
            replace_section(a.out, text)
            log(f"wrote the '{SECTION[3:]}' section of {a.out}")
        return
    if not os.access(os.path.join(a.build, "flywheel"), os.X_OK):
        sys.exit(f"monitoring_bench: {a.build}/flywheel not found; run 'make build' first")
    if not os.access(WRK, os.X_OK):
        sys.exit(f"monitoring_bench: {WRK} is missing: run scripts/install-deps.sh")

    wait_for_quiet(a.max_load, a.max_wait)
    started = datetime.datetime.now().astimezone()
    bench = Bench(a)
    log("== monitoring overhead: mlp_ranker, monitoring off / drift / drift + 100% log")
    bench.make_repository()
    runs = bench.run()
    costs = bench.observe_costs()
    s = summarize(runs)
    command = a.command or "/usr/bin/python3 bench/monitoring_bench.py " + " ".join(
        shlex.quote(x) for x in sys.argv[1:])
    with open(os.path.join(bench.work, "results.json"), "w") as f:
        settings = {k: getattr(a, k) for k in ("reps", "duration", "concurrency", "wrk_threads")}
        json.dump({"command": command, "started": started.isoformat(), "settings": settings,
                   "runs": runs,
                   "summary": s, "observe_costs": costs, "loads": bench.loads,
                   "problems": bench.problems}, f, indent=1)
    text = section(a, command, started, bench.loads, bench.problems, s, costs)
    print(text)
    if a.out:
        replace_section(a.out, text)
        log(f"wrote the '{SECTION[3:]}' section of {a.out}")
    if bench.problems:
        log("PROBLEMS:\n" + "\n".join(f"  - {p}" for p in bench.problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
