// libFuzzer target for the tree model loaders (XGBoost JSON and UBJSON, trees::Forest): any byte
// string must load or fail with an error, never crash, read out of bounds or allocate without
// bound; a model that loads must predict (rows of zeros, NaN and the input's own bytes) safely.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "trees/forest.h"

namespace {

using flywheel::trees::Forest;
using flywheel::trees::LoadOptions;
using flywheel::trees::ModelFormat;

void Exercise(const Forest& f, const uint8_t* data, size_t size) {
  const int cols = f.num_features();
  if (cols > 4096) return;   // a wide model is valid; predicting it here only costs memory
  constexpr int kRows = 20;  // more than one group of rows, fewer than a block
  std::vector<float> x(static_cast<size_t>(kRows) * cols, 0.0f);
  for (size_t i = 0; i < x.size(); ++i) {
    if (i % 3 == 1) x[i] = NAN;
    if (i % 3 == 2 && size >= 4) std::memcpy(&x[i], data + (i * 4) % (size - 3), 4);
  }
  for (bool margin : {true, false}) {
    std::vector<float> out(static_cast<size_t>(kRows) * f.num_outputs(margin));
    flywheel::trees::PredictOptions o;
    o.output_margin = margin;
    (void)f.Predict(x.data(), kRows, cols, o, out.data());  // the batch path
    (void)f.Predict(x.data(), 1, cols, o, out.data());      // the single-row path
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  for (ModelFormat format : {ModelFormat::kXgboostJson, ModelFormat::kXgboostUbjson}) {
    LoadOptions options;
    options.format = format;
    auto forest = Forest::LoadFromMemory(bytes, options, "fuzz");
    if (forest.ok()) Exercise(**forest, data, size);
  }
  return 0;
}
