// libFuzzer target for model configurations: any config.pbtxt text must parse or give an error,
// and a parsed one must validate or give an error, never crash. A configuration that validates
// must also survive completion against a small model, the JSON round trip of the configuration
// endpoint, and the converters the scheduler uses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "serving/model_config.h"

namespace {

using flywheel::DataType;
using flywheel::serving::BackendTensorInfo;

void Exercise(const inference::ModelConfig& config) {
  const std::string json = flywheel::serving::ModelConfigToJson(config);
  // What the config endpoint prints, the load API must read back.
  if (!flywheel::serving::ModelConfigFromJson(json).ok()) std::abort();
  (void)flywheel::serving::InputSpecs(config);
  (void)flywheel::serving::OutputSpecs(config);
  (void)flywheel::serving::SchedulerOptionsFromConfig(config, "1");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = flywheel::serving::ParseModelConfigText(text, "fuzz/config.pbtxt");
  if (!config.ok()) return 0;
  std::vector<std::string> warnings;
  if (!flywheel::serving::ValidateModelConfig(*config, "fuzz/config.pbtxt", &warnings).ok()) {
    return 0;
  }
  Exercise(*config);
  // Completion against a batching model and against one that cannot batch.
  const std::vector<std::vector<BackendTensorInfo>> inputs = {
      {{"x", DataType::kFp32, {-1, 4}}, {"ids", DataType::kInt64, {-1, -1}}},
      {{"x", DataType::kFp32, {2, 4}}}};
  const std::vector<std::vector<BackendTensorInfo>> outputs = {{{"y", DataType::kFp32, {-1, 2}}},
                                                               {{"y", DataType::kFp32, {2, 2}}}};
  for (size_t i = 0; i < inputs.size(); ++i) {
    inference::ModelConfig completed = *config;
    if (flywheel::serving::CompleteModelConfig(inputs[i], outputs[i], &completed).ok()) {
      Exercise(completed);
    }
  }
  return 0;
}
