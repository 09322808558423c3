# flywheel build entry points. `make serve` and `make test` work from a clean clone on Debian:
# both install the dependencies first (scripts/install-deps.sh, idempotent).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
export CCACHE_DIR ?= $(HOME)/.cache/ccache
export CCACHE_NOHASHDIR := 1
# Paths under the checkout are hashed relative to it, so clones in other folders share the cache.
export CCACHE_BASEDIR := $(CURDIR)

.PHONY: all deps build asan serve test unit-test asan-test fuzz-test arm-check bench format clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

# A clang tree with ASan+UBSan on everything, plus the libFuzzer targets.
$(ASAN_BUILD)/build.ninja:
	CC=clang CXX=clang++ cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DFLYWHEEL_SANITIZE=ON \
	  -DFLYWHEEL_FUZZ=ON -DFLYWHEEL_BUILD_BENCH=OFF

asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)

serve: build
	@scripts/serve.sh $(BUILD)

unit-test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

asan-test: asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -LE slow

fuzz-test: asan
	@scripts/run-fuzzers.sh $(ASAN_BUILD)

# Compile-only check that core and engine build for aarch64 (NEON, SVE) with the cross compiler.
arm-check: deps
	@JOBS=$(JOBS) scripts/check-arm-build.sh

test: arm-check unit-test asan-test fuzz-test

bench: build
	@scripts/bench.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
