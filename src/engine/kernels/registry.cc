#include "engine/kernels/registry.h"

#include "absl/strings/str_cat.h"

namespace flywheel::engine {

const KernelRegistry& KernelRegistry::Global() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();
    RegisterElementwiseKernels(*r);
    RegisterTensorKernels(*r);
    RegisterLinalgKernels(*r);
    RegisterConvKernels(*r);
    return r;
  }();
  return *registry;
}

void KernelRegistry::Register(absl::string_view domain, absl::string_view op_type,
                              KernelFactory factory) {
  factories_[absl::StrCat(domain, ":", op_type)] = factory;
}

KernelFactory KernelRegistry::Find(absl::string_view domain, absl::string_view op_type) const {
  // "ai.onnx" is the explicit spelling of the default domain.
  if (domain == "ai.onnx") domain = "";
  auto it = factories_.find(absl::StrCat(domain, ":", op_type));
  return it == factories_.end() ? nullptr : it->second;
}

}  // namespace flywheel::engine
