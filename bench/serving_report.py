"""The markdown for bench/serving_bench.py's results: the "Inference server" section of
docs/benchmarks.md, and its replacement in that file without touching the other sections."""
import os
import platform
import re
import subprocess

SECTION = "## Inference server"
GOAL_NGINX_RATIO = 0.7
GOAL_ENGINE_RATIO = 0.8
GOAL_P99_US = 5000.0


def fmt(x, digits=0):
    return "-" if x is None else f"{x:,.{digits}f}"


def us(x, digits=0):
    return "-" if x is None else f"{x:,.{digits}f} us"


def verdict(ok):
    return "met" if ok else "**missed**"


def machine():
    model = "?"
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    m = re.search(r"^Model name:\s*(.+)$", out, re.M)
    if m:
        model = m.group(1).strip()
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    return f"{model} (`lscpu`), nproc {nproc}, {platform.system()} {platform.release()}"


def nginx_version(nginx="/usr/sbin/nginx"):
    p = subprocess.run([nginx, "-v"], capture_output=True, text=True)
    m = re.search(r"nginx/(\S+)", p.stderr + p.stdout)
    return m.group(1) if m else "?"


def header(a, command, started, loads):
    return [
        SECTION, "",
        "`flywheel serve` under load: against nginx, against the engine alone, and HTTP against "
        "gRPC. Written by `bench/serving_bench.py` (`make bench` runs it after the engine "
        "comparison).", "",
        f"- Command: `{command}`",
        f"- Machine: {machine()}; load generator, server and peer all run on it",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M %Z')}",
        "- Load average (1 min) at the start of each part and at the end: "
        + ", ".join(f"{x:.2f}" for x in loads)
        + " (other work on the machine makes absolute figures noisy; same-run ratios hold up "
        "better)",
        f"- Every figure is the median of {a.reps} runs of {a.duration} s each (runs alternate "
        "which side goes first). *server CPU/req* is the server's own CPU time (all threads or "
        "worker processes, from /proc) divided by the requests it answered.", ""]


def part_a(a, r):
    ok = r["ratio"] is not None and r["ratio"] >= GOAL_NGINX_RATIO
    f, n = r["flywheel"], r["nginx"]
    L = ["### (a) HTTP front end vs nginx (wrk)", ""]
    L.append(f"`wrk -t{a.wrk_threads} -c{a.wrk_connections} -d{a.duration}s --latency -s "
             f"post.lua URL`, where post.lua POSTs a {r['request_bytes']} byte JSON request "
             "(`simple`: INT32 [1,16] x 2), against `POST /v2/models/simple/infer` of `flywheel "
             f"serve --http-threads {a.http_threads}` and against nginx {nginx_version()} "
             f"(`worker_processes {a.http_threads}`, access log off) answering every request with "
             f"`return 200` and the {r['body_bytes']} byte JSON body flywheel returns "
             f"(nginx sent {r['nginx_body_bytes']} bytes). Same wrk settings, same run. "
             f"Goal: flywheel >= {GOAL_NGINX_RATIO} x nginx.")
    L += ["", "| server | requests/s | p50 | p99 | server CPU/req |", "|:---|---:|---:|---:|---:|"]
    L.append(f"| flywheel serve, `simple` model | {fmt(f['rps'])} | {us(f['p50_us'])} | "
             f"{us(f['p99_us'])} | {us(f['cpu_us_per_request'], 1)} |")
    L.append(f"| nginx, static body | {fmt(n['rps'])} | {us(n['p50_us'])} | {us(n['p99_us'])} | "
             f"{us(n['cpu_us_per_request'], 1)} |")
    L += ["", f"flywheel / nginx requests/s: **{r['ratio']:.2f}** (per run: "
          + ", ".join(f"{x['ratio']:.2f}" for x in r["runs"])
          + f"); goal >= {GOAL_NGINX_RATIO}: {verdict(ok)}.", ""]
    return L


def row_meets_goal(o, best):
    tp, p99 = o.get("throughput_infer_per_s"), o.get("p99_us")
    return bool(best and tp and p99 is not None and tp / best >= GOAL_ENGINE_RATIO
                and p99 < GOAL_P99_US)


def part_b(a, r, nginx_rps):
    t, best = r["table"], r["engine_best"]
    on64 = t["on"][64]
    ratio = on64["throughput_infer_per_s"] / best if best else None
    ok_tp = ratio is not None and ratio >= GOAL_ENGINE_RATIO
    ok_p99 = on64["p99_us"] is not None and on64["p99_us"] < GOAL_P99_US
    L = ["### (b) mlp_ranker: concurrency sweep, dynamic batching off and on", ""]
    L.append("`flywheel bench --url http://127.0.0.1:PORT --model mlp_ranker --concurrency C "
             f"--duration-secs {a.duration} --json FILE` for C = "
             + ", ".join(str(c) for c in t["on"])
             + " (HTTP keep-alive, binary tensors, one FP32 [1,256] row per request, closed "
             "loop; the connections run on one event loop per core, `--client-threads 0`) "
             "against `flywheel serve` on two private copies of `examples/models/mlp_ranker` "
             "(2 instances, 1 intra-op thread each) whose config.pbtxt differ only in "
             f"`{r['batching_block']}` (present = on, removed = off). *queue* and *compute* are "
             "the server's own averages per request (statistics extension); *batch* = inferences "
             "/ executions.")
    L += ["", "| concurrency | off: infer/s | off: p50 | off: p99 | off: CPU/req | on: infer/s "
          "| on: p50 | on: p99 | on: queue | on: compute | on: batch | on: CPU/req |",
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for c in t["on"]:
        f, o = t["off"][c], t["on"][c]
        L.append(f"| {c} | {fmt(f['throughput_infer_per_s'])} | {us(f['p50_us'])} | "
                 f"{us(f['p99_us'])} | {us(f['cpu_us_per_request'], 1)} | "
                 f"{fmt(o['throughput_infer_per_s'])} | {us(o['p50_us'])} | {us(o['p99_us'])} | "
                 f"{us(o['server_queue_us'])} | {us(o['server_compute_us'])} | "
                 f"{fmt(o['avg_batch'], 1)} | {us(o['cpu_us_per_request'], 1)} |")
    cells = ", ".join(f"batch {b}: {fmt(v)}/s" for b, v in sorted(r["engine_cells"].items()))
    L += ["", "Engine alone: `flywheel bench examples/models/mlp_ranker/1/model.onnx --batch "
          f"1,8,64 --threads 1 --json` gives (medians) {cells}; the engine's best, the median "
          f"over runs of each run's fastest cell, is **{fmt(best)} inferences/s** (batch "
          f"{r['engine_best_batch']}).", ""]
    L.append(f"- One row per request, concurrency 64, batching on: "
             f"{fmt(on64['throughput_infer_per_s'])} infer/s = **{ratio:.2f}** x the engine's "
             f"best (goal >= {GOAL_ENGINE_RATIO}: {verdict(ok_tp)}); p99 {us(on64['p99_us'])} "
             f"(goal < {GOAL_P99_US / 1000:g} ms: {verdict(ok_p99)}).")
    if nginx_rps:
        L.append(f"- With one row per request, throughput cannot exceed the request rate the "
                 f"machine sustains over HTTP: nginx returning a static body managed "
                 f"{fmt(nginx_rps)} requests/s in (a), {nginx_rps / best:.2f} x the engine's best.")
    L.append("")
    rows = r.get("rows_per_request")
    if rows:
        met = [b for b, o in rows.items() if row_meets_goal(o, best)]
        L += ["Rows per request at concurrency 64, batching on (`--concurrency 64 --batch R`), the "
              "way a ranker scores a user's candidates in one request: the cost per request, not "
              "the engine, is what separates the server from the engine. *goal*: throughput >= "
              f"{GOAL_ENGINE_RATIO} x the engine's best and p99 < {GOAL_P99_US / 1000:g} ms.", "",
              "| rows/request | infer/s | x engine best | requests/s | p50 | p99 | queue | batch "
              "| CPU/req | goal |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---|"]
        for b, o in rows.items():
            x = o["throughput_infer_per_s"] / best if best and o["throughput_infer_per_s"] else None
            L.append(f"| {b} | {fmt(o['throughput_infer_per_s'])} | {fmt(x, 2)} | "
                     f"{fmt(o['throughput_req_per_s'])} | {us(o['p50_us'])} | {us(o['p99_us'])} | "
                     f"{us(o['server_queue_us'])} | {fmt(o['avg_batch'], 1)} | "
                     f"{us(o['cpu_us_per_request'], 1)} | {verdict(row_meets_goal(o, best))} |")
        L += ["", "- Goal at concurrency 64 met with "
              + (", ".join(str(b) for b in met) + " rows per request." if met
                 else "no request size measured: **missed**."), ""]
    return L


def part_c(a, r):
    h, g = r["http"], r["grpc"]
    L = ["### (c) HTTP vs gRPC per-request overhead (`simple`, concurrency 1)", ""]
    L.append("`flywheel bench --url URL --model simple --protocol http|grpc --concurrency 1 "
             f"--duration-secs {a.duration}` against one `flywheel serve`: one connection, one "
             "request at a time (HTTP/1.1 keep-alive with binary tensors; gRPC ModelInfer with "
             "raw_input_contents), so the latency is the whole per-request cost of client, "
             "transport and server (the model itself takes about a microsecond).")
    L += ["", "| protocol | requests/s | p50 | p99 | mean | server queue | server compute | "
          "server CPU/req |", "|:---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, x in (("HTTP", h), ("gRPC", g)):
        L.append(f"| {name} | {fmt(x['throughput_req_per_s'])} | {us(x['p50_us'], 1)} | "
                 f"{us(x['p99_us'])} | {us(x['mean_us'], 1)} | {us(x['server_queue_us'], 1)} | "
                 f"{us(x['server_compute_us'], 1)} | {us(x['cpu_us_per_request'], 1)} |")
    diff = g["p50_us"] - h["p50_us"]
    per_req = 1e6 / g["throughput_req_per_s"] - 1e6 / h["throughput_req_per_s"]
    L += ["", f"gRPC minus HTTP: p50 {diff:+.1f} us; time per request (1 / throughput) "
          f"{per_req:+.1f} us; server CPU per request "
          f"{g['cpu_us_per_request'] - h['cpu_us_per_request']:+.1f} us.", ""]
    return L


def section(a, command, started, loads, problems, results):
    L = header(a, command, started, loads)
    if "a" in results:
        L += part_a(a, results["a"])
    if "b" in results:
        L += part_b(a, results["b"], results["a"]["nginx"]["rps"] if "a" in results else None)
    if "c" in results:
        L += part_c(a, results["c"])
    if problems:
        L += ["Problems in this run:", ""] + [f"- {p}" for p in problems] + [""]
    return "\n".join(L)


def replace_section(path, text):
    """Replaces the '## Inference server' section of `path` (up to the next '## ' heading or the
    end of the file), or appends it."""
    doc = ""
    if os.path.exists(path):
        with open(path) as f:
            doc = f.read()
    lines = doc.split("\n")
    start = next((i for i, l in enumerate(lines) if l.strip() == SECTION), None)
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
