#!/usr/bin/python3
"""flywheel's engine against ONNX Runtime on the example models, side by side in one run.

For every model x batch x threads cell, ONNX Runtime (through ../shared/peers/ort-bench.js) and
`flywheel bench` time the same saved inputs, alternating, several repetitions; the medians of
their p50 latencies are compared. flywheel's outputs are checked against ONNX Runtime's on those
inputs (1e-4 relative / 1e-5 absolute). The peak memory that loading and running the transformer
adds is measured against its weight size. Results go to stdout and to docs/benchmarks.md.

Run by scripts/bench.sh (`make bench`); needs Debian's /usr/bin/python3 with numpy, node, and the
peer installed by ../shared/peers/setup.sh.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys

import numpy as np

MODELS = ["mlp_ranker", "recommender", "cnn", "transformer"]
# Sequence length for the transformer's dynamic 'seq' dimension (every non-batch dynamic dim).
SEQ_LEN = 32
RTOL, ATOL = 1e-4, 1e-5
# Ratio goals: flywheel p50 / ORT p50.
GOAL_RATIO, GOAL_RATIO_BATCH1 = 1.0, 0.8
GOAL_MEMORY = 1.5


def log(msg):
    print(msg, flush=True)


def run(cmd, timeout=900):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        return 127, "", f"{cmd[0]}: {e}"
    return p.returncode, p.stdout, p.stderr


def last_line(text):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1] if lines else "(no output)"


def sanitize(name):
    """The file name `flywheel infer --output-dir` gives an output (see src/cli/cli_util.cc)."""
    s = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return s


class Driver:
    def __init__(self, args):
        self.args = args
        self.flywheel = os.path.abspath(args.flywheel)
        self.ort_bench = os.path.abspath(args.ort_bench)
        self.work = os.path.abspath(args.work)
        os.makedirs(self.work, exist_ok=True)
        self.problems = []  # loud: mismatches and failures
        self.ort_version = "?"
        self.loadavg = [os.getloadavg()[0], 0.0]

    # --- flywheel -------------------------------------------------------------------------------
    def signature(self, model, dim):
        """Inputs/outputs (with index_bound) from a one-iteration `flywheel bench --json`."""
        rc, so, se = run([self.flywheel, "bench", model, "--iters", "1", "--warmup", "1",
                          "--dim", str(dim), "--json"])
        if rc != 0:
            return None, last_line(se)
        return json.loads(so), None

    def flywheel_bench(self, model, inputs, batch, threads, iters, extra=()):
        cmd = [self.flywheel, "bench", model, "--batch", str(batch), "--threads", str(threads),
               "--iters", str(iters), "--json", *extra]
        for name, path in inputs.items():
            cmd += ["--input", f"{name}={path}"]
        rc, so, se = run(cmd)
        if rc != 0:
            return None, last_line(se)
        return json.loads(so), None

    # --- ONNX Runtime ---------------------------------------------------------------------------
    def ort(self, model, batch, threads, iters, int_max, dim, inputs=None, save_inputs=None,
            save_outputs=None):
        cmd = ["node", self.ort_bench, model, "--batch", str(batch), "--threads", str(threads),
               "--iters", str(iters), "--int-max", str(int_max), "--dim", str(dim), "--json"]
        for name, path in (inputs or {}).items():
            cmd += ["--input", f"{name}={path}"]
        if save_inputs:
            cmd += ["--save-inputs", save_inputs]
        if save_outputs:
            cmd += ["--save-outputs", save_outputs]
        rc, so, se = run(cmd)
        if rc != 0:
            return None, last_line(se)
        return json.loads(last_line(so))[0], None

    # --- one model ------------------------------------------------------------------------------
    def bench_model(self, name):
        a = self.args
        model = os.path.join(a.models_dir, name, "model.onnx")
        dim = SEQ_LEN if name.startswith("transformer") else 1
        out = {"name": name, "model": model, "dim": dim, "cells": [], "checks": [], "error": None}
        if not os.path.isfile(model):
            out["error"] = f"{model} not found"
            self.problems.append(f"{name}: {out['error']}")
            return out
        sig, err = self.signature(model, dim)
        if err:
            out["error"] = f"flywheel cannot run it: {err}"
            self.problems.append(f"{name}: {out['error']}")
        bounds = [i["index_bound"] for i in (sig or {}).get("inputs", []) if i["index_bound"] > 0]
        int_max = min(bounds) if bounds else 100
        out["int_max"] = int_max
        if sig:
            out["weight_bytes"] = sig["weight_bytes"]
        log(f"== {name}: {model} (int-max {int_max}, dim {dim})")

        for batch in a.batches:
            # ONNX Runtime draws the inputs once per batch and saves them with its outputs;
            # every later run of both engines reads these files.
            wdir = os.path.join(self.work, name, f"b{batch}")
            in_dir, ort_dir = os.path.join(wdir, "inputs"), os.path.join(wdir, "ort_outputs")
            probe, err = self.ort(model, batch, 1, 5, int_max, dim, save_inputs=in_dir,
                                  save_outputs=ort_dir)
            if err:
                self.problems.append(f"{name} batch {batch}: ONNX Runtime failed: {err}")
                continue
            suffix = f".b{batch}.npy"
            inputs = {f[:-len(suffix)]: os.path.join(in_dir, f) for f in sorted(os.listdir(in_dir))
                      if f.endswith(suffix)}
            # About a second of timed runs per measurement and engine, within [20, max-iters].
            iters = {"ort": self.iters_for(probe["p50_us"]), "fw": 0}
            if not out["error"]:
                out["checks"].append(self.check_outputs(name, model, batch, inputs, ort_dir, wdir))
                fw_probe, err = self.flywheel_bench(model, inputs, batch, 1, 3, ["--warmup", "1"])
                if fw_probe:
                    iters["fw"] = self.iters_for(fw_probe["results"][0]["p50_us"])
            for threads in a.threads:
                out["cells"].append(self.time_cell(name, model, batch, threads, iters, inputs,
                                                   int_max, dim, run_flywheel=iters["fw"] > 0))
        return out

    def iters_for(self, p50_us):
        return int(min(self.args.max_iters, max(20, 1e6 / max(p50_us, 1.0))))

    def check_outputs(self, name, model, batch, inputs, ort_dir, wdir):
        fw_dir = os.path.join(wdir, "flywheel_outputs")
        cmd = [self.flywheel, "infer", model, "--output-dir", fw_dir]
        for n, path in inputs.items():
            cmd += ["--input", f"{n}={path}"]
        rc, so, se = run(cmd)
        res = {"batch": batch, "ok": False, "detail": ""}
        if rc != 0:
            res["detail"] = f"flywheel infer failed: {last_line(se)}"
        else:
            details = []
            ok = True
            suffix = f".b{batch}.npy"
            for f in sorted(os.listdir(ort_dir)):
                if not f.endswith(suffix):
                    continue
                oname = f[:-len(suffix)]
                want = np.load(os.path.join(ort_dir, f))
                path = os.path.join(fw_dir, sanitize(oname) + ".npy")
                if not os.path.isfile(path):
                    ok = False
                    details.append(f"{oname}: flywheel wrote no such output")
                    continue
                got = np.load(path)
                if got.shape != want.shape:
                    ok = False
                    details.append(f"{oname}: shape {got.shape} vs ORT {want.shape}")
                    continue
                g, w = got.astype(np.float64), want.astype(np.float64)
                err = np.abs(g - w)
                bad = int(np.sum(~(err <= ATOL + RTOL * np.abs(w))))
                worst = float(err.max()) if err.size else 0.0
                if bad:
                    ok = False
                details.append(f"{oname}: max abs diff {worst:.2e}" +
                               (f", {bad} of {err.size} values out of tolerance" if bad else ""))
            res["ok"] = ok
            res["detail"] = "; ".join(details)
        if not res["ok"]:
            msg = f"{name} batch {batch}: OUTPUT MISMATCH vs ONNX Runtime: {res['detail']}"
            self.problems.append(msg)
            log("!" * 100 + "\n!! " + msg + "\n" + "!" * 100)
        else:
            log(f"   batch {batch}: outputs match ONNX Runtime ({res['detail']})")
        return res

    def time_cell(self, name, model, batch, threads, iters, inputs, int_max, dim, run_flywheel):
        fw, ort, fw_err = [], [], None
        for rep in range(self.args.reps):
            # Alternate which engine goes first, so drift in machine load hits both alike.
            order = ["ort", "fw"] if rep % 2 == 0 else ["fw", "ort"]
            for engine in order:
                if engine == "ort":
                    r, err = self.ort(model, batch, threads, iters["ort"], int_max, dim,
                                      inputs=inputs)
                    if err:
                        self.problems.append(f"{name} b{batch} t{threads}: ORT failed: {err}")
                    else:
                        ort.append(r["p50_us"])
                elif run_flywheel and fw_err is None:
                    r, err = self.flywheel_bench(model, inputs, batch, threads, iters["fw"])
                    if err:
                        fw_err = err
                        self.problems.append(f"{name} b{batch} t{threads}: flywheel failed: {err}")
                    else:
                        fw.append(r["results"][0]["p50_us"])
        cell = {"batch": batch, "threads": threads, "iters": iters,
                "fw_p50": statistics.median(fw) if fw else None,
                "ort_p50": statistics.median(ort) if ort else None, "fw_runs": fw, "ort_runs": ort}
        if cell["fw_p50"] and cell["ort_p50"]:
            cell["ratio"] = cell["fw_p50"] / cell["ort_p50"]
        log(f"   batch {batch:>3} threads {threads}: flywheel p50 {fmt_us(cell['fw_p50'])}  "
            f"ORT p50 {fmt_us(cell['ort_p50'])}  ratio {fmt_ratio(cell.get('ratio'))}")
        return cell

    # --- memory ---------------------------------------------------------------------------------
    def memory(self):
        name = "transformer"
        model = os.path.join(self.args.models_dir, name, "model.onnx")
        rows = []
        for batch in (1, 64):
            r, err = self.flywheel_bench(model, {}, batch, 1, 20,
                                         extra=["--dim", str(SEQ_LEN), "--report-memory"])
            if err:
                rows.append({"batch": batch, "error": err})
                self.problems.append(f"memory ({name} batch {batch}): {err}")
                continue
            m = r["memory"][0]
            row = {"batch": batch, "weights": r["weight_bytes"], "file": r["file_bytes"],
                   "before": m["rss_before_bytes"], "peak": m["peak_rss_bytes"],
                   "added": m["added_bytes"], "peak_reset": m["peak_reset"],
                   "after_load": m["after_load_bytes"] - m["rss_before_bytes"],
                   "load_peak": m["load_peak_bytes"] - m["rss_before_bytes"]}
            row["ratio"] = row["added"] / row["weights"] if row["weights"] else None
            # ONNX Runtime on the same inputs (saved by the latency runs), measured the same way.
            in_dir = os.path.join(self.work, name, f"b{batch}", "inputs")
            suffix = f".b{batch}.npy"
            cmd = ["node", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "ort_memory.js"), model, "--runs", "20"]
            if os.path.isdir(in_dir):
                for f in sorted(os.listdir(in_dir)):
                    if f.endswith(suffix):
                        cmd += ["--input", f"{f[:-len(suffix)]}={os.path.join(in_dir, f)}"]
            rc, so, se = run(cmd)
            row["ort_added"] = json.loads(so)["added_bytes"] if rc == 0 else None
            if rc != 0:
                self.problems.append(f"memory ({name} batch {batch}): ONNX Runtime: "
                                     f"{last_line(se)}")
            rows.append(row)
            log(f"   memory transformer batch {batch}: added {mib(row['added'])} MiB, weights "
                f"{mib(row['weights'])} MiB, ratio {fmt_ratio(row['ratio'])}")
        return rows


def fmt_us(v):
    if v is None:
        return "-"
    if v >= 10000:
        return f"{v / 1000:.1f} ms"
    return f"{v:.0f} us" if v >= 100 else f"{v:.1f} us"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}"


def mib(b):
    return f"{b / 1048576:.2f}"


def machine():
    info = {}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            k, _, v = line.partition(":")
            info[k.strip()] = v.strip()
    except OSError:
        pass
    return (f"{info.get('Model name', platform.processor() or '?')}, "
            f"{info.get('CPU(s)', os.cpu_count())} CPUs "
            f"({info.get('Thread(s) per core', '?')} thread(s) per core), "
            f"{platform.system()} {platform.release()}")


def write_doc(path, driver, results, memory, command):
    a = driver.args
    L = []
    L.append("# Benchmarks: flywheel engine vs ONNX Runtime")
    L.append("")
    L.append("Measured figures, with the command that made them. Regenerate with `make bench` "
             "(runs `scripts/bench.sh build`, which drives `bench/engine_vs_ort.py`).")
    L.append("")
    L.append(f"- Machine: {machine()}")
    L.append(f"- Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}")
    L.append(f"- Command: `{command}`")
    L.append(f"- Peer: onnxruntime-node {driver.ort_version} (CPU, graph optimisation level "
             "`all`, sequential execution, intra-op threads as listed), via "
             "`../shared/peers/ort-bench.js`")
    L.append(f"- Method: for each model, batch and thread count both engines time the same "
             f"inputs (drawn once by ort-bench.js and saved as .npy; floats uniform in [-1,1), "
             f"integer ids in [0, smallest embedding table)). {a.reps} repetitions, alternating "
             f"which engine goes first; each repetition is one process that warms up (10 runs) "
             f"and then times about one second of runs (20 to {a.max_iters}); the table shows the "
             f"median over repetitions of each repetition's p50 latency per Run() call. ORT's "
             f"times include the Node binding's own overhead (a few microseconds), which favours "
             f"flywheel slightly at tiny latencies.")
    L.append(f"- Transformer sequence length: {SEQ_LEN} (the `seq` dimension; other models have "
             "no dynamic dimension besides the batch).")
    L.append("- Ratio = flywheel p50 / ORT p50 (lower is better). Goals: every ratio <= "
             f"{GOAL_RATIO:.1f}; at batch 1 <= {GOAL_RATIO_BATCH1:.1f}.")
    load = driver.loadavg
    L.append(f"- Load average (1 min) at start / end of the run: {load[0]:.2f} / {load[1]:.2f} "
             "(other work on the machine makes the figures noisier; compare ratios, not "
             "absolute times, across machines).")
    L.append("")
    L.append("## Summary")
    L.append("")
    cells = [(m["name"], c) for m in results for c in m["cells"] if c.get("ratio") is not None]
    missed = [(n, c) for n, c in cells
              if c["ratio"] > (GOAL_RATIO_BATCH1 if c["batch"] == 1 else GOAL_RATIO)]
    all_cells = sum(len(m["cells"]) for m in results)
    L.append(f"- Latency goals met in {len(cells) - len(missed)} of {all_cells} cells" +
             (": missed " + ", ".join(f"{n} batch {c['batch']} threads {c['threads']} "
                                      f"({c['ratio']:.2f})" for n, c in missed)
              if missed else "") + ".")
    mismatches = [m["name"] for m in results for c in m["checks"] if not c["ok"]]
    L.append("- Outputs vs ONNX Runtime: " +
             ("all match" if not mismatches and all(m["checks"] for m in results)
              else "**see problems below**") + ".")
    mem = [r for r in memory if "error" not in r and r["ratio"] is not None]
    L.append("- Transformer memory (added peak RSS / weights): " +
             (", ".join(f"batch {r['batch']}: {r['ratio']:.2f}" for r in mem) or "not measured") +
             f" (goal < {GOAL_MEMORY} at batch 1; ONNX Runtime adds " +
             (", ".join(f"{mib(r['ort_added'])} MiB at batch {r['batch']}" for r in mem
                        if r.get("ort_added") is not None) or "-") + ").")
    L.append("")
    L.append("## Latency")
    L.append("")
    for m in results:
        L.append(f"### {m['name']}")
        L.append("")
        if m.get("error"):
            L.append(f"flywheel: **{m['error']}**")
            L.append("")
        L.append("| batch | threads | flywheel p50 | ORT p50 | flywheel/ORT | goal |")
        L.append("|---:|---:|---:|---:|---:|:---|")
        for c in m["cells"]:
            r = c.get("ratio")
            goal = GOAL_RATIO_BATCH1 if c["batch"] == 1 else GOAL_RATIO
            verdict = "-" if r is None else ("met" if r <= goal else f"**missed** (<= {goal})")
            L.append(f"| {c['batch']} | {c['threads']} | {fmt_us(c['fw_p50'])} | "
                     f"{fmt_us(c['ort_p50'])} | {fmt_ratio(r)} | {verdict} |")
        L.append("")
        for chk in m["checks"]:
            status = "match" if chk["ok"] else "**MISMATCH**"
            L.append(f"- Outputs vs ORT, batch {chk['batch']}: {status} ({chk['detail']})")
        if m["checks"]:
            L.append("")
    L.append("## Memory")
    L.append("")
    L.append("Peak resident memory added by loading and running the transformer (seq "
             f"{SEQ_LEN}, 1 thread, 20 runs after warm-up) in `flywheel bench --report-memory`: "
             "VmHWM after the runs (reset through /proc/self/clear_refs just before the load) "
             "minus VmRSS just before the load, against `Session::WeightBytes()`; \"held after load\" "
             "is VmRSS right after `Session::Load` minus the same baseline. "
             f"Goal: < {GOAL_MEMORY}x the weights.")
    L.append("")
    L.append("The goal is about the load (the parsed file must not linger beside the engine's "
             "copy), so it is judged at batch 1. At batch 64 the activations alone are larger "
             "than 1.5x these weights (the feed-forward intermediate and two hidden tensors, "
             "6 MiB live at once), so that row is shown for what a large batch costs. ONNX "
             "Runtime's added peak is measured the same way on the same inputs (`bench/"
             "ort_memory.js`: a session created and run 20 times in a fresh Node process).")
    L.append("")
    L.append("| batch | weights | model file | held after load (load peak) | added peak RSS "
             "| added / weights | ORT added peak RSS | goal |")
    L.append("|---:|---:|---:|---:|---:|---:|---:|:---|")
    for r in memory:
        if "error" in r:
            L.append(f"| {r['batch']} | - | - | - | - | - | flywheel failed: {r['error']} |")
            continue
        verdict = "met" if r["ratio"] is not None and r["ratio"] < GOAL_MEMORY else "**missed**"
        if r["batch"] != 1:
            verdict = "- (activations)"
        if not r["peak_reset"]:
            verdict += " (peak not resettable: process-wide peak)"
        ort_added = f"{mib(r['ort_added'])} MiB" if r.get("ort_added") is not None else "-"
        L.append(f"| {r['batch']} | {mib(r['weights'])} MiB | {mib(r['file'])} MiB | "
                 f"{mib(r['after_load'])} MiB ({mib(r['load_peak'])} MiB) | "
                 f"{mib(r['added'])} MiB | {fmt_ratio(r['ratio'])} | {ort_added} | {verdict} |")
    L.append("")
    L.append("## Problems in this run")
    L.append("")
    if driver.problems:
        for p in driver.problems:
            L.append(f"- {p}")
    else:
        L.append("None: every flywheel output matched ONNX Runtime within "
                 f"{RTOL:g} relative / {ATOL:g} absolute.")
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--flywheel", required=True, help="path to the flywheel binary")
    ap.add_argument("--ort-bench", default=os.path.join(root, "..", "shared", "peers",
                                                          "ort-bench.js"))
    ap.add_argument("--models-dir", default=os.path.join(root, "tests", "fixtures", "models"))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--max-iters", type=int, default=500)
    ap.add_argument("--work", default=os.path.join(root, "build", "bench-work"))
    ap.add_argument("--out", default=os.path.join(root, "docs", "benchmarks.md"),
                    help="markdown report ('' for none)")
    ap.add_argument("--command", default=None, help="command line to record in the report")
    a = ap.parse_args()
    a.batches = [int(x) for x in a.batches.split(",")]
    a.threads = [int(x) for x in a.threads.split(",")]

    driver = Driver(a)
    rc, so, _ = run(["node", "-e", "const p=require('path');console.log(require(p.join("
                     "process.env.FLYWHEEL_PEERS_DIR||p.join(require('os').homedir(),"
                     "'.cache/flywheel-peers'),'node_modules/onnxruntime-node/package.json'))"
                     ".version)"])
    if rc == 0:
        driver.ort_version = so.strip()
    results = [driver.bench_model(m) for m in a.models.split(",")]
    log("== memory")
    memory = driver.memory()
    driver.loadavg[1] = os.getloadavg()[0]
    command = a.command or " ".join(shlex.quote(x) for x in sys.argv)
    if a.out:
        write_doc(a.out, driver, results, memory, command)
        log(f"wrote {a.out}")
    if driver.problems:
        log("\nPROBLEMS:\n" + "\n".join(f"  - {p}" for p in driver.problems))
        sys.exit(1)


if __name__ == "__main__":
    main()
