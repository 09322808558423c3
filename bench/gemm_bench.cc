// Sgemm shapes of the ranker/recommender MLPs and the transformer encoder: our Highway GEMM
// (per-call packing and pre-packed weights) against oneDNN's dnnl_sgemm, single-threaded.
#include <random>
#include <vector>

#include <oneapi/dnnl/dnnl.h>

#include "benchmark/benchmark.h"
#include "core/thread_pool.h"
#include "engine/kernels/dnnl_util.h"
#include "engine/kernels/gemm.h"

namespace flywheel::engine {
namespace {

struct Operands {
  std::vector<float> a, b, c;
  Operands(int64_t m, int64_t k, int64_t n) : a(m * k), b(k * n), c(m * n) {
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1, 1);
    for (float& x : a) x = dist(rng);
    for (float& x : b) x = dist(rng);
  }
};

void SetFlops(benchmark::State& state, int64_t m, int64_t k, int64_t n) {
  state.counters["GFLOPS"] = benchmark::Counter(
      2.0 * m * k * n, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void BM_Sgemm(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  Operands o(m, k, n);
  for (auto _ : state) {
    Sgemm(false, false, m, n, k, 1.0f, o.a.data(), k, o.b.data(), n, 0.0f, o.c.data(), n, nullptr);
    benchmark::DoNotOptimize(o.c.data());
  }
  SetFlops(state, m, k, n);
}

void BM_SgemmPacked(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  Operands o(m, k, n);
  PackedB packed = PackB(false, k, n, o.b.data(), n);
  for (auto _ : state) {
    SgemmPacked(false, m, 1.0f, o.a.data(), k, packed, 0.0f, o.c.data(), n, GemmEpilogue{},
                nullptr);
    benchmark::DoNotOptimize(o.c.data());
  }
  SetFlops(state, m, k, n);
}

void BM_SgemmPacked2Threads(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  Operands o(m, k, n);
  PackedB packed = PackB(false, k, n, o.b.data(), n);
  ThreadPool pool(2);
  for (auto _ : state) {
    SgemmPacked(false, m, 1.0f, o.a.data(), k, packed, 0.0f, o.c.data(), n, GemmEpilogue{}, &pool);
    benchmark::DoNotOptimize(o.c.data());
  }
  SetFlops(state, m, k, n);
}

void BM_DnnlSgemm(benchmark::State& state) {
  const int64_t m = state.range(0), k = state.range(1), n = state.range(2);
  Operands o(m, k, n);
  SetDnnlThreads(1);
  for (auto _ : state) {
    dnnl_sgemm('N', 'N', m, n, k, 1.0f, o.a.data(), k, o.b.data(), n, 0.0f, o.c.data(), n);
    benchmark::DoNotOptimize(o.c.data());
  }
  SetFlops(state, m, k, n);
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int64_t m : {1, 8, 64, 256}) {
    for (auto [k, n] :
         {std::pair<int64_t, int64_t>{256, 512}, {512, 256}, {128, 512}, {512, 128}}) {
      b->Args({m, k, n});
    }
  }
  b->ArgNames({"M", "K", "N"});
}

BENCHMARK(BM_Sgemm)->Apply(Shapes);
BENCHMARK(BM_SgemmPacked)->Apply(Shapes);
BENCHMARK(BM_SgemmPacked2Threads)->Apply(Shapes);
BENCHMARK(BM_DnnlSgemm)->Apply(Shapes);

}  // namespace
}  // namespace flywheel::engine

BENCHMARK_MAIN();
