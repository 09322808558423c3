#!/usr/bin/env python3
"""End-to-end test of `flywheel log cat|export` on a prediction log written by another program.

Usage: /usr/bin/python3 tests/log_cli_test.py PATH/TO/flywheel

The log is written here, independently of flywheel's writer, from the format in
src/monitor/log_record.h and log_files.h: <dir>/<model>/<version>/<UTC start>-<seq>.jsonl.zst,
JSON lines in zstd frames made by the `zstd` command (package zstd). Data comes in both forms
("data" arrays and base64 "data_b64"); one file ends in a cut frame, as after a kill -9.
"""
import base64
import csv
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

FLYWHEEL = None
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def zstd_frame(text):
    return subprocess.run(["zstd", "-q", "-c", "--check"], input=text.encode(), check=True,
                          stdout=subprocess.PIPE).stdout


def record(i, model, version, b64):
    x = [float(i), i + 0.5, -1.25]
    tensor = {"datatype": "FP32", "shape": [1, 3]}
    if b64:
        tensor["data_b64"] = base64.b64encode(struct.pack("<3f", *x)).decode()
    else:
        tensor["data"] = x
    rec = {"id": "r%d" % i, "time": "2024-05-01T12:00:%02d.000000000Z" % i, "model": model,
           "version": version, "inputs": {"x": tensor},
           "outputs": {"label": {"datatype": "BYTES", "shape": [1], "data": ["a,\"b\""]}}}
    if i % 4 == 0:
        rec["parameters"] = {"note": "n%d" % i}
    return json.dumps(rec, separators=(",", ":")) + "\n"


def write_log(root):
    """rank/1: records 0,3,6,.. in two files; rank/2: 1,4,7,..; ads/1: 2,5,8,.. (cut last frame)."""
    streams = {("rank", 1): [], ("rank", 2): [], ("ads", 1): []}
    keys = list(streams)
    for i in range(24):
        streams[keys[i % 3]].append(record(i, keys[i % 3][0], keys[i % 3][1], b64=i % 2 == 0))
    for (model, version), lines in streams.items():
        folder = os.path.join(root, model, str(version))
        os.makedirs(folder)
        half = len(lines) // 2
        for seq, part in enumerate([lines[:half], lines[half:]]):
            name = "20240501T1200%02d.000000000Z-%06d.jsonl.zst" % (seq * 30, seq)
            with open(os.path.join(folder, name), "wb") as f:
                for k in range(0, len(part), 2):  # two records a frame
                    f.write(zstd_frame("".join(part[k:k + 2])))
    # ads/1's last file: cut inside its last frame (records 20 and 23 are lost).
    last = os.path.join(root, "ads", "1", "20240501T120030.000000000Z-000001.jsonl.zst")
    with open(last, "r+b") as f:
        f.truncate(os.path.getsize(last) - 4)
    with open(os.path.join(root, "rank", "1", "notes.txt"), "w") as f:
        f.write("not a log file\n")


def flywheel(*args):
    p = subprocess.run([FLYWHEEL, "log", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True)
    return p.returncode, p.stdout, p.stderr


def ids(stdout):
    return [json.loads(line)["id"] for line in stdout.splitlines()]


def main():
    global FLYWHEEL
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    FLYWHEEL = os.path.abspath(sys.argv[1])
    if shutil.which("zstd") is None:
        sys.exit("log_cli_test: the zstd command is needed (apt-get install zstd)")
    root = tempfile.mkdtemp(prefix="flywheel-log-cli-")
    try:
        write_log(root)

        rc, out, err = flywheel("cat", "--log-dir", root)
        check(rc == 0, "cat exits 0: %s" % err)
        expected = [i for i in range(24) if i not in (20, 23)]
        check(ids(out) == ["r%d" % i for i in expected], "cat: every complete record in time order")
        check("incomplete" in err, "cat reports the cut frame on stderr: %r" % err)
        first = json.loads(out.splitlines()[0])
        check(first["inputs"]["x"] == {"datatype": "FP32", "shape": [1, 3],
                                       "data": [0, 0.5, -1.25]}, "cat prints base64 as numbers")
        check(first["outputs"]["label"]["data"] == ["a,\"b\""], "BYTES kept")

        rc, out, _ = flywheel("cat", "--log-dir", root, "--raw", "--model", "rank", "--version",
                              "1")
        check(ids(out) == ["r%d" % i for i in range(0, 24, 3)], "cat --model --version")
        check("data_b64" in out.splitlines()[0], "cat --raw keeps the stored form")

        rc, out, _ = flywheel("cat", "--log-dir", root, "--since", "2024-05-01T12:00:05Z",
                              "--until", "2024-05-01T14:00:09+02:00")
        check(ids(out) == ["r5", "r6", "r7", "r8"], "cat --since/--until (offsets): %s" % ids(out))
        rc, out, _ = flywheel("cat", "--log-dir", root, "--since", "-1h")
        check(rc == 0 and out == "", "a relative --since in the present selects nothing old")

        csv_path = os.path.join(root, "out.csv")
        rc, _, err = flywheel("export", "--log-dir", root, "--model", "rank", "--format", "csv",
                              "--out", csv_path)
        check(rc == 0, "export csv exits 0: %s" % err)
        with open(csv_path, newline="") as f:
            rows = list(csv.reader(f))
        check(rows[0] == ["id", "time", "model", "version", "input.x[0]", "input.x[1]",
                          "input.x[2]", "output.label[0]", "parameter.note"],
              "csv header: %s" % rows[0])
        check(len(rows) == 17, "csv: 16 rank records and a header, got %d rows" % len(rows))
        check(rows[1] == ["r0", "2024-05-01T12:00:00.000000000Z", "rank", "1", "0", "0.5",
                          "-1.25", "a,\"b\"", "n0"], "csv row: %s" % rows[1])
        check(rows[2][8] == "", "a missing parameter is an empty cell")

        jsonl_path = os.path.join(root, "out.jsonl")
        rc, _, _ = flywheel("export", "--log-dir", root, "--format", "jsonl", "--out", jsonl_path)
        with open(jsonl_path) as f:
            check(len(f.readlines()) == 22, "export jsonl writes every complete record")

        rc, _, err = flywheel("cat", "--log-dir", os.path.join(root, "missing"))
        check(rc == 1 and "does not exist" in err, "a missing folder is an error: %r" % err)
        rc, _, err = flywheel("cat", "--log-dir", root, "--since", "yesterday")
        check(rc == 1 and "--since" in err, "a bad --since is an error: %r" % err)
        rc, _, err = flywheel("export", "--log-dir", root, "--format", "parquet", "--out", "x")
        check(rc != 0, "an unknown format is refused")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES))
        sys.exit(1)
    print("log_cli_test: all checks passed")


if __name__ == "__main__":
    main()
