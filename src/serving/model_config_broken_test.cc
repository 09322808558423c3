// Every configuration under tests/fixtures/configs/broken/ must be refused with an error that
// names the file and the field at fault.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "serving/model_config.h"

namespace flywheel::serving {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

fs::path BrokenDir() {
  const char* root = std::getenv("FLYWHEEL_SOURCE_DIR");
  return fs::path(root != nullptr ? root : ".") / "tests" / "fixtures" / "configs" / "broken";
}

// File -> what the error must say besides the file name.
const std::map<std::string, std::string>& Expected() {
  static const auto* expected = new std::map<std::string, std::string>{
      {"bad_enum.pbtxt", "TYPE_FLOAT32"},
      {"duplicate_field.pbtxt", "max_batch_size"},
      {"duplicate_input.pbtxt", "input 'x': declared more than once"},
      {"ensemble.pbtxt", "input: none declared (an ensemble declares every input"},
      {"fil_bad_output_class.pbtxt", "parameters.output_class: 'maybe' is not true or false"},
      {"fil_lightgbm.pbtxt", "parameters.model_type: not supported"},
      {"gpu_accelerator.pbtxt", "gpu_execution_accelerator 'tensorrt'"},
      {"gpu_instance.pbtxt", "instance_group[0].kind KIND_GPU"},
      {"latest_zero.pbtxt", "version_policy.latest.num_versions: must be at least 1"},
      {"negative_dims.pbtxt", "input 'x'.dims[1]: -5 is not a valid dimension"},
      {"negative_max_batch_size.pbtxt", "max_batch_size: -4 is negative"},
      {"no_platform.pbtxt", "platform: neither platform nor backend is set"},
      {"path_escape.pbtxt", "default_model_filename: '../../../etc/passwd'"},
      {"preferred_too_big.pbtxt",
       "dynamic_batching.preferred_batch_size[1]: 32 is larger than max_batch_size 16"},
      {"priority_out_of_range.pbtxt",
       "dynamic_batching.default_priority_level: 5 is not in [1, 3]"},
      {"queue_policy_without_levels.pbtxt",
       "dynamic_batching.priority_queue_policy: is set but priority_levels is not"},
      {"reshape_mismatch.pbtxt", "input 'x'.reshape: shape [10]"},
      {"sequence_batching.pbtxt", "sequence_batching: not supported"},
      {"specific_versions_empty.pbtxt", "version_policy.specific.versions: lists no version"},
      {"syntax_error.pbtxt", "syntax_error.pbtxt:5:"},
      {"unknown_field.pbtxt", "unknown_field.pbtxt:3:"},
      {"unsupported_platform.pbtxt", "platform 'tensorflow_savedmodel': not supported"},
      {"warmup_no_data.pbtxt", "model_warmup 'w'.inputs['x']: no data"},
      {"warmup_unknown_input.pbtxt", "model_warmup 'w'.inputs['nope']: not an input of the model"},
  };
  return *expected;
}

std::string ErrorFor(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  auto config = ParseModelConfigText(text.str(), file.string());
  if (!config.ok()) return std::string(config.status().message());
  return std::string(ValidateModelConfig(*config, file.string()).message());
}

TEST(BrokenConfigs, EachIsRefusedNamingFileAndField) {
  for (const auto& [name, expected] : Expected()) {
    const fs::path file = BrokenDir() / name;
    ASSERT_TRUE(fs::exists(file)) << file;
    EXPECT_THAT(ErrorFor(file), AllOf(HasSubstr(file.string()), HasSubstr(expected))) << name;
  }
}

TEST(BrokenConfigs, EveryFixtureHasAnExpectation) {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(BrokenDir())) {
    ++files;
    EXPECT_EQ(Expected().count(entry.path().filename().string()), 1u)
        << entry.path() << " has no expected error in this test";
  }
  EXPECT_EQ(files, static_cast<int>(Expected().size()));
}

TEST(BrokenConfigs, UnknownFieldErrorNamesTheField) {
  EXPECT_THAT(ErrorFor(BrokenDir() / "unknown_field.pbtxt"),
              HasSubstr("has no field named \"max_batch\""));
}

}  // namespace
}  // namespace flywheel::serving
