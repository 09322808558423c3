// Registers the linear-algebra family: MatMul, Gemm, the fused com.flywheel GEMMs, Attention and
// LayerNormalization. The kernels live in matmul.cc, fused_gemm.cc, attention.cc and
// layer_norm.cc, all on the shared GEMM of gemm.h.
#include "engine/kernels/registry.h"

namespace flywheel::engine {

absl::StatusOr<std::unique_ptr<Kernel>> MakeMatMul(const Node& node, const Graph& graph);
absl::StatusOr<std::unique_ptr<Kernel>> MakeFusedMatMul(const Node& node, const Graph& graph);
absl::StatusOr<std::unique_ptr<Kernel>> MakeGemm(const Node& node, const Graph& graph);
absl::StatusOr<std::unique_ptr<Kernel>> MakeFusedGemm(const Node& node, const Graph& graph);
absl::StatusOr<std::unique_ptr<Kernel>> MakeAttention(const Node& node, const Graph& graph);
absl::StatusOr<std::unique_ptr<Kernel>> MakeLayerNorm(const Node& node, const Graph& graph);

void RegisterLinalgKernels(KernelRegistry& registry) {
  registry.Register("", "MatMul", MakeMatMul);
  registry.Register("", "Gemm", MakeGemm);
  registry.Register("", "LayerNormalization", MakeLayerNorm);
  registry.Register(kFlywheelDomain, "FusedMatMul", MakeFusedMatMul);
  registry.Register(kFlywheelDomain, "FusedGemm", MakeFusedGemm);
  registry.Register(kFlywheelDomain, "Attention", MakeAttention);
}

}  // namespace flywheel::engine
