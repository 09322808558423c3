#include "engine/onnx_shape_guard.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "absl/container/flat_hash_set.h"

namespace flywheel::engine {
namespace {

// Rank of input i when its shape is known, else -1.
int InputRank(onnx::InferenceContext& ctx, size_t i) {
  if (i >= ctx.getNumInputs()) return -1;
  const onnx::TypeProto* t = ctx.getInputType(i);
  if (t == nullptr || !t->has_tensor_type() || !t->tensor_type().has_shape()) return -1;
  return t->tensor_type().shape().dim_size();
}

bool AttrLengthIs(onnx::InferenceContext& ctx, const char* name, int want) {
  const onnx::AttributeProto* a = ctx.getAttribute(name);
  return a == nullptr || a->ints_size() == want;
}

// Strides, dilations and groups are divisors in the inference functions: 0 is a SIGFPE.
bool AttrAllPositive(onnx::InferenceContext& ctx, const char* name) {
  const onnx::AttributeProto* a = ctx.getAttribute(name);
  if (a == nullptr) return true;
  if (a->has_i() && a->i() <= 0) return false;
  for (int64_t v : a->ints()) {
    if (v <= 0) return false;
  }
  return true;
}

// Conv, ConvTranspose and the pools: X is [N, C, spatial...]; W (when present) has X's rank;
// per-axis attributes have one value per spatial axis (pads two). Inference runs only when all of
// that holds and the shapes it reads are known.
bool ConvPoolSafe(onnx::InferenceContext& ctx, bool has_weight) {
  for (const char* name : {"strides", "dilations", "kernel_shape", "group"}) {
    if (!AttrAllPositive(ctx, name)) return false;
  }
  int rank = InputRank(ctx, 0);
  if (rank < 0) return true;  // the inference functions return early without X's shape
  if (rank < 3) return false;
  if (has_weight && InputRank(ctx, 1) != rank) return false;
  const int spatial = rank - 2;
  for (const char* name :
       {"kernel_shape", "strides", "dilations", "output_padding", "output_shape"}) {
    if (!AttrLengthIs(ctx, name, spatial)) return false;
  }
  return AttrLengthIs(ctx, "pads", 2 * spatial);
}

bool Safe(const std::string& op, onnx::InferenceContext& ctx) {
  static const absl::flat_hash_set<std::string> kConvWithWeight = {"Conv", "ConvTranspose",
                                                                   "ConvInteger", "DeformConv"};
  static const absl::flat_hash_set<std::string> kPool = {"MaxPool", "AveragePool", "LpPool",
                                                         "MaxUnpool"};
  if (kConvWithWeight.contains(op)) return ConvPoolSafe(ctx, /*has_weight=*/true);
  if (kPool.contains(op)) return ConvPoolSafe(ctx, /*has_weight=*/false);
  return true;
}

bool Guarded(const std::string& op) {
  static const absl::flat_hash_set<std::string> kOps = {
      "Conv",    "ConvTranspose", "ConvInteger", "DeformConv",
      "MaxPool", "AveragePool",   "LpPool",      "MaxUnpool"};
  return kOps.contains(op);
}

class GuardedRegistry final : public onnx::ISchemaRegistry {
 public:
  const onnx::OpSchema* GetSchema(const std::string& key, const int max_inclusive_version,
                                  const std::string& domain) const override {
    const onnx::OpSchema* schema =
        onnx::OpSchemaRegistry::Instance()->GetSchema(key, max_inclusive_version, domain);
    if (schema == nullptr || !(domain.empty() || domain == "ai.onnx") || !Guarded(key) ||
        !schema->has_type_and_shape_inference_function()) {
      return schema;
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto& copy = guarded_[std::make_tuple(key, schema->since_version())];
    if (copy == nullptr) {
      copy = std::make_unique<onnx::OpSchema>(*schema);
      onnx::InferenceFunction inner = schema->GetTypeAndShapeInferenceFunction();
      copy->TypeAndShapeInferenceFunction([inner, key](onnx::InferenceContext& ctx) {
        if (Safe(key, ctx)) inner(ctx);
      });
    }
    return copy.get();
  }

 private:
  mutable std::mutex mu_;
  mutable std::map<std::tuple<std::string, int>, std::unique_ptr<onnx::OpSchema>> guarded_;
};

}  // namespace

const onnx::ISchemaRegistry* GuardedSchemaRegistry() {
  static const GuardedRegistry* registry = new GuardedRegistry();
  return registry;
}

}  // namespace flywheel::engine
