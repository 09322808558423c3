#!/usr/bin/env bash
# Compile-only check that the engine and core build for ARM (aarch64). We have no ARM machine, so
# every non-test source in src/core/ and src/engine/ is compiled (not linked, not run) with
# Debian's aarch64 cross compiler, with the project's warning flags and Highway's runtime dispatch
# building each SIMD kernel for the aarch64 targets. Two passes:
#   arm64      every file, HWY_DISABLED_TARGETS as src/engine/CMakeLists.txt sets it (its x86 bits
#              are no-ops here), i.e. what a native ARM build with GCC compiles: NEON plus the
#              SVE targets not disabled there, dispatched at run time;
#   neon-only  the Highway files again with every SVE target disabled: one target, so
#              HWY_DYNAMIC_DISPATCH becomes static dispatch, as in a clang or macOS ARM build.
#
#   scripts/check-arm-build.sh                   both passes, all files
#   scripts/check-arm-build.sh FILE...           both passes, only these files
#   ARM_PASSES=arm64 scripts/check-arm-build.sh  one pass only (arm64 or neon-only)
#   JOBS=4 scripts/check-arm-build.sh            parallel compiles (default 2)
#
# Include order: the cross compiler searches its own aarch64 libc/libstdc++ headers first
# (/usr/aarch64-linux-gnu/include, /usr/lib/gcc-cross/...) and falls back to /usr/include
# (-idirafter, last) only for the architecture-independent third-party headers (abseil, highway,
# onnx, protobuf, oneDNN). It never searches /usr/include/x86_64-linux-gnu, whose headers are
# x86-specific (e.g. sleef.h, generated for x86 vector types: code that includes it must be
# guarded for x86), and a check of each file's dependencies fails any compile that still ended up
# with a header from there or from the native gcc/libstdc++.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

CXX_ARM=${CXX_ARM:-aarch64-linux-gnu-g++}
JOBS=${JOBS:-2}
ARM_PASSES=${ARM_PASSES:-arm64 neon-only}

# Flags of flywheel_engine (src/engine/CMakeLists.txt, cmake/FlywheelWarnings.cmake), at -O1.
common_flags=(-std=c++20 -O1 -fPIC -Wall -Wextra -Werror -Wno-unused-parameter
              -Wno-missing-field-initializers -Wno-maybe-uninitialized -Wno-restrict
              -DHWY_SHARED_DEFINE -DONNX_ML=1 -DONNX_NAMESPACE=onnx -Isrc)
cmake_disabled=$(grep -o 'HWY_DISABLED_TARGETS=([^)]*)' src/engine/CMakeLists.txt | head -1 |
                 sed 's/^HWY_DISABLED_TARGETS=//')
cmake_disabled=${cmake_disabled:-(0)}
hwy_flags() {
  case $1 in
    arm64) echo "-DHWY_DISABLED_TARGETS=$cmake_disabled" ;;
    neon-only) echo "-DHWY_DISABLED_TARGETS=($cmake_disabled|HWY_SVE|HWY_SVE2|HWY_SVE_256|HWY_SVE2_128)" ;;
    *) echo "check-arm-build: unknown pass '$1' (arm64, neon-only)" >&2; exit 2 ;;
  esac
}
log_name() { echo "$1_${2//\//_}"; }

# One compile: `check-arm-build.sh --one OUTDIR PASS FILE`, run in parallel by the main part
# below. Prints one result line; the compiler's messages go to OUTDIR/<pass>_<file>.log.
if [[ ${1:-} == --one ]]; then
  outdir=$2 pass=$3 src=$4
  name=$(log_name "$pass" "$src")
  log=$outdir/$name.log
  start=$EPOCHREALTIME
  status=ok
  if ! "$CXX_ARM" "${common_flags[@]}" "$(hwy_flags "$pass")" -idirafter /usr/include \
       -MD -MF "$outdir/$name.d" -c "$src" -o "$outdir/$name.o" >"$log" 2>&1; then
    status=FAIL
    # The same file with the native x86 compiler tells an ARM problem from a file that is broken
    # everywhere (e.g. half-written).
    if ! g++ "${common_flags[@]}" "-DHWY_DISABLED_TARGETS=$cmake_disabled" -fsyntax-only "$src" \
         >"$log.x86" 2>&1; then
      status="FAIL(x86-too)"
    fi
  elif bad=$(awk '{ for (i = 1; i <= NF; ++i) print $i }' "$outdir/$name.d" |
             grep -E '^/usr/(include/(x86_64-linux-gnu|c\+\+)/|lib/gcc/x86_64)' | sort -u) &&
       [[ -n $bad ]]; then
    status="FAIL(x86-headers)"
    printf 'x86 host headers used by the aarch64 compile:\n%s\n' "$bad" >"$log"
  fi
  rm -f "$outdir/$name.o" "$outdir/$name.d"
  printf '%-17s %-9s %-44s %5.1fs\n' "$status" "$pass" "$src" \
         "$(awk "BEGIN { print $EPOCHREALTIME - $start }")"
  exit 0
fi

if ! command -v "$CXX_ARM" >/dev/null; then
  echo "check-arm-build: $CXX_ARM not found; run scripts/install-deps.sh" \
       "(packages g++-aarch64-linux-gnu libc6-dev-arm64-cross)" >&2
  exit 1
fi

if (($# > 0)); then
  files=("$@")
else
  mapfile -t files < <({ ls src/core/*.cc; find src/engine -name '*.cc'; } |
                       grep -v -e '_test\.cc$' -e '/testing/' | sort)
fi
# When the CMake build already disables every SVE target, the arm64 pass is NEON-only itself.
sve_disabled=1
for t in HWY_SVE HWY_SVE2 HWY_SVE_256 HWY_SVE2_128; do
  grep -qw "$t" <<<"$cmake_disabled" || sve_disabled=0
done
if ((sve_disabled)) && [[ $ARM_PASSES == *arm64* ]]; then
  ARM_PASSES=${ARM_PASSES//neon-only/}
fi
jobs=()
for pass in $ARM_PASSES; do
  hwy_flags "$pass" >/dev/null
  for f in "${files[@]}"; do
    # The neon-only pass only matters for files with Highway code.
    [[ $pass == neon-only ]] && ! grep -q 'hwy/' "$f" && continue
    jobs+=("$pass $f")
  done
done

outdir=$(mktemp -d "${TMPDIR:-/tmp}/arm-check.XXXXXX")
trap 'rm -rf "$outdir"' EXIT
echo "check-arm-build: ${#jobs[@]} compiles (${#files[@]} files; passes: $ARM_PASSES)," \
     "$CXX_ARM, -j$JOBS"
start=$(date +%s)
printf '%s\n' "${jobs[@]}" | xargs -P "$JOBS" -L1 "$self" --one "$outdir" |
  tee "$outdir/results.txt"
elapsed=$(($(date +%s) - start))

failed=$(grep -c '^FAIL' "$outdir/results.txt" || true)
if ((failed == 0)); then
  echo "check-arm-build: all ${#jobs[@]} compiles for aarch64 succeeded (${elapsed}s)"
  exit 0
fi
grep '^FAIL' "$outdir/results.txt" | while read -r _ pass src _; do
  log=$outdir/$(log_name "$pass" "$src").log
  echo
  echo "===== $src, $pass (aarch64) ====="
  head -40 "$log"
  if [[ -s $log.x86 ]]; then
    echo "----- $src, native x86 compile of the same file -----"
    head -15 "$log.x86"
  fi
done
echo
echo "check-arm-build: $failed of ${#jobs[@]} compiles FAILED for aarch64 (${elapsed}s):"
grep '^FAIL' "$outdir/results.txt" | awk '{ print "  " $0 }'
exit 1
