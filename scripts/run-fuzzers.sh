#!/usr/bin/env bash
# Runs every libFuzzer target of a FLYWHEEL_FUZZ build for a bounded time on a copy of its seed
# corpus (tests/fuzz/corpus/<target>/), prints one summary line per target and exits non-zero on
# any crash, sanitizer report, leak, timeout or out-of-memory. Crashing inputs are kept in
# BUILD_DIR/fuzz-artifacts/<target>/ (reproduce: BUILD_DIR/tests/fuzz/<target>_fuzz FILE).
#
# Usage: scripts/run-fuzzers.sh BUILD_DIR   (FUZZ_SECONDS=30 per target by default)
set -euo pipefail

build=${1:?usage: scripts/run-fuzzers.sh BUILD_DIR}
seconds=${FUZZ_SECONDS:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$build" && pwd)

# Third-party leaks at exit that are not ours to fix (see the file for each entry).
if [[ -f "$root/tests/sanitizer/lsan.supp" ]]; then
  export LSAN_OPTIONS="suppressions=$root/tests/sanitizer/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
fi
export UBSAN_OPTIONS="print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

shopt -s nullglob
targets=("$build"/tests/fuzz/*_fuzz)
if [[ ${#targets[@]} -eq 0 ]]; then
  echo "run-fuzzers: no fuzz targets in $build/tests/fuzz (configure with -DFLYWHEEL_FUZZ=ON)" >&2
  exit 1
fi

failed=0
summary=()
for bin in "${targets[@]}"; do
  name=$(basename "$bin")
  name=${name%_fuzz}
  corpus="$work/corpus-$name"
  mkdir -p "$corpus"
  if [[ -d "$root/tests/fuzz/corpus/$name" ]]; then
    cp -R "$root/tests/fuzz/corpus/$name/." "$corpus/"
  fi
  seeds=$(find "$corpus" -type f | wc -l)
  artifacts="$build/fuzz-artifacts/$name"
  mkdir -p "$artifacts"
  log="$work/$name.log"
  start=$(date +%s)
  status=ok
  # -timeout: one input taking over 10 s is a bug; -rss_limit_mb: so is one needing 2 GiB.
  # -seed: a fixed seed makes the run in `make test` repeatable (FUZZ_SEED=0 picks a random one
  # for exploratory fuzzing; crashes found that way go into the corpus as regression inputs).
  if ! "$bin" -seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1; then
    status=FAILED
    failed=1
    echo "=== $name: fuzzer failed; last lines of its log ===" >&2
    tail -n 80 "$log" >&2
    echo "=== crashing inputs: $(ls "$artifacts" | tr '\n' ' ')(in $artifacts)" >&2
  fi
  elapsed=$(($(date +%s) - start))
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2 || true)
  files=$(find "$corpus" -type f | wc -l)
  summary+=("$(printf 'fuzz %-12s %-6s %8s runs in %3ss, %5s edges, corpus %s -> %s inputs' \
    "$name" "$status" "${runs:-?}" "$elapsed" "${cov:-?}" "$seeds" "$files")")
done

printf '%s\n' "${summary[@]}"
exit $failed
