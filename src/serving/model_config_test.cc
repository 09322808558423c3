#include "serving/model_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "google/protobuf/util/message_differencer.h"

namespace flywheel::serving {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

inference::ModelConfig Parse(const std::string& text) {
  auto config = ParseModelConfigText(text, "m/config.pbtxt");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.value_or(inference::ModelConfig());
}

// The error ValidateModelConfig gives for `text` (empty when valid).
std::string ValidationError(const std::string& text) {
  auto config = ParseModelConfigText(text, "m/config.pbtxt");
  if (!config.ok()) return "PARSE: " + std::string(config.status().message());
  absl::Status status = ValidateModelConfig(*config, "m/config.pbtxt");
  return std::string(status.message());
}

constexpr char kOnnx[] = "platform: \"onnxruntime_onnx\"\n";

// Triton's quick-start image classifier, as its docs give it.
constexpr char kDensenetOnnx[] = R"pb(
  name: "densenet_onnx"
  platform: "onnxruntime_onnx"
  max_batch_size: 0 input
  [ {
    name: "data_0"
    data_type: TYPE_FP32
    format: FORMAT_NCHW
    dims: [ 3, 224, 224 ]
    reshape { shape: [ 1, 3, 224, 224 ] }
  }] output
  [ {
    name: "fc6_1"
    data_type: TYPE_FP32
    dims: [ 1000 ]
    reshape { shape: [ 1, 1000, 1, 1 ] }
    label_filename: "densenet_labels.txt"
  }]
)pb";

// A FIL (XGBoost) model as Triton's FIL backend documents it, on CPU.
constexpr char kFilXgboost[] = R"pb(
  backend: "fil"
  max_batch_size: 32768 input
  [ {
    name: "input__0"
    data_type: TYPE_FP32
    dims: [ 500 ]
  }] output
  [ {
    name: "output__0"
    data_type: TYPE_FP32
    dims: [ 2 ]
  }] instance_group
  [ { kind: KIND_CPU }] parameters
  [ {
    key: "model_type"
    value: { string_value: "xgboost_json" }
  }
    , {
      key: "predict_proba"
      value: { string_value: "true" }
    }
    , {
      key: "output_class"
      value: { string_value: "true" }
    }
    , {
      key: "threshold"
      value: { string_value: "0.5" }
    }
    , {
      key: "storage_type"
      value: { string_value: "AUTO" }
    }]
  dynamic_batching {}
)pb";

// Every supported section at once.
constexpr char kEverything[] = R"pb(
  name: "ranker"
  backend: "onnxruntime"
  max_batch_size: 64
  version_policy: { specific: { versions: [ 1, 3 ] } } input
  [ {
    name: "dense"
    data_type: TYPE_FP32
    dims: [ 256 ]
  }
    , {
      name: "ids"
      data_type: TYPE_INT64
      dims: [ -1 ]
      optional: true
    }
    , {
      name: "text"
      data_type: TYPE_STRING
      dims: [ 1 ]
      reshape: { shape: [] }
    }] output
  [ {
    name: "score"
    data_type: TYPE_FP32
    dims: [ 1 ]
  }]
  dynamic_batching {
    preferred_batch_size: [ 16, 32, 64 ]
    max_queue_delay_microseconds: 200
    priority_levels: 3
    default_priority_level: 2
    default_queue_policy {
      timeout_action: DELAY
      default_timeout_microseconds: 5000
      allow_timeout_override: true
      max_queue_size: 100
    } priority_queue_policy
    [ {
      key: 1
      value: { timeout_action: REJECT max_queue_size: 10 }
    }
      , {
        key: 3
        value: { default_timeout_microseconds: 100 }
      }]
  } instance_group
  [ { name: "cpu" count: 2 kind: KIND_CPU }
    , { kind: KIND_AUTO }] model_warmup
  [ {
    name: "zeros"
    batch_size: 4
    count: 2
    inputs {
      key: "dense"
      value: {
        data_type: TYPE_FP32
        dims: [ 256 ]
        zero_data: true
      }
    }
    inputs {
      key: "ids"
      value: {
        data_type: TYPE_INT64
        dims: [ 7 ]
        random_data: true
      }
    }
    inputs {
      key: "text"
      value: {
        data_type: TYPE_STRING
        dims: [ 1 ]
        input_data_file: "t.bin"
      }
    }
  }]
  response_cache { enable: true }
  metric_tags { key: "team" value: "search" }
)pb";

TEST(ParseModelConfigText, TritonDocConfigsParseAndValidate) {
  for (const char* text : {kDensenetOnnx, kFilXgboost, kEverything}) {
    EXPECT_THAT(ValidationError(text), IsEmpty()) << text;
  }
  inference::ModelConfig config = Parse(kEverything);
  EXPECT_EQ(config.name(), "ranker");
  EXPECT_EQ(config.input(2).data_type(), inference::TYPE_STRING);
  EXPECT_TRUE(config.input(2).has_reshape());
  EXPECT_EQ(config.input(2).reshape().shape_size(), 0);
  EXPECT_EQ(config.dynamic_batching().priority_queue_policy().at(1).max_queue_size(), 10u);
  EXPECT_EQ(config.model_warmup(0).inputs().at("text").input_data_file(), "t.bin");
}

TEST(ParseModelConfigText, EveryTritonSectionParses) {
  // Fields flywheel refuses must still parse, so that the validator can name them.
  constexpr char kText[] = R"pb(
    name: "x"
    platform: "tensorrt_plan"
    runtime: "libtriton_custom.so"
    max_batch_size: 8 input
    [ {
      name: "a"
      data_type: TYPE_BF16
      dims: [ 2 ]
      is_shape_tensor: true
      allow_ragged_batch: true
      is_non_linear_format_io: true
    }] output
    [ {
      name: "b"
      data_type: TYPE_FP16
      dims: [ 2 ]
      is_shape_tensor: false
    }] batch_input
    [ {
      kind: BATCH_ITEM_SHAPE
      target_name: "t"
      data_type: TYPE_INT32
      source_input: "a"
    }] batch_output
    [ { target_name: "b" kind: BATCH_SCATTER_WITH_INPUT_SHAPE source_input: "a" }]
    optimization {
      graph { level: 1 }
      priority: PRIORITY_MAX
      cuda {
        graphs: true
        busy_wait_events: true
        output_copy_stream: true graph_spec
        [ {
          batch_size: 4
          input {
            key: "a"
            value { dim: [ 2 ] }
          }
          graph_lower_bound {
            batch_size: 1
            input {
              key: "a"
              value { dim: [ 1 ] }
            }
          }
        }]
      }
      execution_accelerators { gpu_execution_accelerator
                               [ {
                                 name: "tensorrt"
                                 parameters { key: "precision_mode" value: "FP16" }
                               }] cpu_execution_accelerator
                               [ { name: "openvino" }] }
      input_pinned_memory { enable: false }
      output_pinned_memory { enable: true }
      gather_kernel_buffer_threshold: 2
      eager_batching: true
    }
    sequence_batching {
      max_sequence_idle_microseconds: 5000000
      oldest {
        max_candidate_sequences: 4
        preferred_batch_size: [ 2 ]
        max_queue_delay_microseconds: 10
        preserve_ordering: true
      } control_input
      [ {
        name: "START" control
        [ {
          kind: CONTROL_SEQUENCE_START
          fp32_false_true: [ 0, 1 ]
        }]
      }
        , {
          name: "CORRID" control
          [ { kind: CONTROL_SEQUENCE_CORRID data_type: TYPE_UINT64 }]
        }] state
      [ {
        input_name: "in"
        output_name: "out"
        data_type: TYPE_FP32
        dims: [ -1 ] initial_state
        [ {
          data_type: TYPE_FP32
          dims: [ 1 ]
          zero_data: true
          name: "init"
        }]
        use_same_buffer_for_input_output: true
        use_growable_memory: true
      }]
      iterative_sequence: true
    } instance_group
    [ {
      name: "g"
      kind: KIND_GPU
      count: 2
      gpus: [ 0, 1 ]
      rate_limiter {
        resources
        [ { name: "R1" global: True count: 4 }]
        priority: 2
      } secondary_devices
      [ { kind: KIND_NVDLA device_id: 0 }]
      profile: [ "0" ]
      passive: true
      host_policy: "policy_0"
    }]
    default_model_filename: "model.plan" cc_model_filenames
    [ { key: "7.5" value: "t4.plan" }] metric_tags
    [ { key: "k" value: "v" }] parameters
    [ {
      key: "p"
      value: { string_value: "v" }
    }]
    model_operations { op_library_filename: [ "libops.so" ] }
    model_transaction_policy { decoupled: true }
    model_repository_agents { agents
                              [ {
                                name: "checksum"
                                parameters { key: "MD5:x" value: "abc" }
                              }] }
    response_cache { enable: true }
    model_metrics { metric_control
                    [ {
                      metric_identifier { family: "nv_inference_first_response_histogram_ms" }
                      histogram_options { buckets: [ 1, 10, 100 ] }
                    }] }
  )pb";
  ASSERT_TRUE(ParseModelConfigText(kText, "x").ok());
  constexpr char kEnsemble[] = R"pb(
    name: "pipe"
    platform: "ensemble"
    ensemble_scheduling {
      step
      [ {
        model_name: "pre"
        model_version: -1
        input_map { key: "IN" value: "raw" }
        output_map { key: "OUT" value: "mid" }
      }]
      max_inflight_responses: 4
    }
    version_policy: { all {} }
  )pb";
  ASSERT_TRUE(ParseModelConfigText(kEnsemble, "x").ok());
}

TEST(ParseModelConfigText, UnknownFieldIsLocatedAndNamed) {
  auto config = ParseModelConfigText("name: \"a\"\nmax_batch_size: 4\n  max_batchsize: 8\n",
                                     "repo/a/config.pbtxt");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("repo/a/config.pbtxt:3:"), HasSubstr("max_batchsize")));
}

TEST(ParseModelConfigText, SyntaxErrorsAreLocated) {
  auto config = ParseModelConfigText("input [ { name: \"x\" dims: [ 1, ] } ]", "c.pbtxt");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("c.pbtxt:1:"));

  config = ParseModelConfigText("instance_group [ { kind: KIND_TPU } ]", "c.pbtxt");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), AllOf(HasSubstr("c.pbtxt:1:"), HasSubstr("KIND_TPU")));

  config = ParseModelConfigText("max_batch_size: 1\nmax_batch_size: 2", "c.pbtxt");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), AllOf(HasSubstr("c.pbtxt:2:"), HasSubstr("max_batch")));

  config = ParseModelConfigText("max_batch_size: \"eight\"", "c.pbtxt");
  EXPECT_FALSE(config.ok());
}

TEST(ValidateModelConfig, PlatformAndBackend) {
  EXPECT_THAT(ValidationError("max_batch_size: 1"),
              AllOf(HasSubstr("m/config.pbtxt: platform: neither platform nor backend"),
                    HasSubstr("onnxruntime_onnx")));
  EXPECT_THAT(ValidationError("platform: \"tensorflow_savedmodel\""),
              AllOf(HasSubstr("platform 'tensorflow_savedmodel'"), HasSubstr("not supported")));
  EXPECT_THAT(ValidationError("backend: \"python\""),
              AllOf(HasSubstr("backend 'python'"), HasSubstr("not supported")));
  EXPECT_THAT(ValidationError("platform: \"onnxruntime_onnx\" backend: \"fil\""),
              HasSubstr("name different runtimes"));
  EXPECT_THAT(ValidationError("backend: \"onnxruntime\""), IsEmpty());
  EXPECT_THAT(ValidationError("platform: \"onnxruntime_onnx\" backend: \"onnxruntime\""),
              IsEmpty());
}

TEST(ValidateModelConfig, FilParameters) {
  const std::string fil = "backend: \"fil\"\n";
  auto param = [](const std::string& key, const std::string& value) {
    return "parameters { key: \"" + key + "\" value { string_value: \"" + value + "\" } }\n";
  };
  EXPECT_THAT(ValidationError(fil), HasSubstr("parameters.model_type: not set"));
  EXPECT_THAT(ValidationError(fil + param("model_type", "xgboost_ubj")), IsEmpty());
  EXPECT_THAT(ValidationError(fil + param("model_type", "lightgbm")),
              AllOf(HasSubstr("parameters.model_type"), HasSubstr("not supported")));
  EXPECT_THAT(ValidationError(fil + param("model_type", "sklearn")),
              HasSubstr("'sklearn' is not a FIL model type"));
  const std::string json = fil + param("model_type", "xgboost_json");
  EXPECT_THAT(ValidationError(json + param("output_class", "yes")),
              HasSubstr("parameters.output_class: 'yes' is not true or false"));
  EXPECT_THAT(ValidationError(json + param("predict_proba", "1")),
              HasSubstr("parameters.predict_proba"));
  EXPECT_THAT(ValidationError(json + param("threshold", "half")),
              HasSubstr("parameters.threshold: 'half' is not a number"));
  EXPECT_THAT(ValidationError(json + param("threshold", "nan")), HasSubstr("parameters.threshold"));

  std::vector<std::string> warnings;
  auto config = ParseModelConfigText(json + param("storage_type", "DENSE"), "f");
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(ValidateModelConfig(*config, "f", &warnings).ok());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("parameters.storage_type"));
}

TEST(ValidateModelConfig, TensorsAndDims) {
  const std::string o = kOnnx;
  EXPECT_THAT(ValidationError(o + "max_batch_size: -1"),
              HasSubstr("max_batch_size: -1 is negative"));
  EXPECT_THAT(ValidationError(o + "input [ { name: \"x\" data_type: TYPE_FP32 dims: [ 3, 0 ] } ]"),
              HasSubstr("input 'x'.dims[1]: 0 is not a valid dimension"));
  EXPECT_THAT(ValidationError(o + "output [ { name: \"y\" data_type: TYPE_FP32 dims: [ -2 ] } ]"),
              HasSubstr("output 'y'.dims[0]: -2 is not a valid dimension"));
  EXPECT_THAT(ValidationError(o + "input [ { name: \"x\" dims: [ 1000000, 1000000, 1000000 ] } ]"),
              HasSubstr("more than 2^40 elements"));
  EXPECT_THAT(ValidationError(o + "input [ { name: \"x\" }, { name: \"x\" } ]"),
              HasSubstr("input 'x': declared more than once"));
  EXPECT_THAT(ValidationError(o + "output [ { name: \"y\" }, { name: \"y\" } ]"),
              HasSubstr("output 'y': declared more than once"));
  EXPECT_THAT(ValidationError(o + "input [ { data_type: TYPE_FP32 dims: [ 1 ] } ]"),
              HasSubstr("input[0]: name is not set"));
  EXPECT_THAT(ValidationError(o + "input [ { name: \"x\" data_type: 99 dims: [ 1 ] } ]"),
              HasSubstr("input 'x'.data_type: 99 is not a valid data type"));
  EXPECT_THAT(
      ValidationError(o + "input [ { name: \"x\" dims: [ 2, 3 ] reshape { shape: [ 5 ] } } ]"),
      HasSubstr("input 'x'.reshape: shape [5] does not hold the same number of elements as dims "
                "[2,3]"));
  EXPECT_THAT(
      ValidationError(o + "input [ { name: \"x\" dims: [ -1, 3 ] reshape { shape: [ 6 ] } } ]"),
      HasSubstr("input 'x'.reshape"));
  EXPECT_THAT(
      ValidationError(o + "input [ { name: \"x\" dims: [ -1, 3 ] reshape { shape: [ 3, -1 ] } } ]"),
      IsEmpty());
  EXPECT_THAT(ValidationError(o + "input [ { name: \"x\" format: FORMAT_NHWC dims: [ 3, 4 ] } ]"),
              HasSubstr("input 'x'.format: FORMAT_NHWC needs 3 dims"));
  EXPECT_THAT(ValidationError(o + "input [ { name: \"x\" dims: [ 1 ] allow_ragged_batch: true } ]"),
              AllOf(HasSubstr("input 'x'.allow_ragged_batch"), HasSubstr("not supported")));
  EXPECT_THAT(
      ValidationError(o + "output [ { name: \"y\" label_filename: \"../../etc/passwd\" } ]"),
      HasSubstr("output 'y'.label_filename"));
  EXPECT_THAT(ValidationError(o + "default_model_filename: \"/abs/model.onnx\""),
              HasSubstr("default_model_filename"));
  EXPECT_THAT(ValidationError(o + "default_model_filename: \"sub/../../x.onnx\""),
              HasSubstr("default_model_filename"));
  EXPECT_THAT(ValidationError(o + "default_model_filename: \"my model.onnx\""), IsEmpty());
  // Types and dims may be left for completion.
  EXPECT_THAT(ValidationError(o + "input [ { name: \"x\" } ] output [ { name: \"y\" } ]"),
              IsEmpty());
}

TEST(ValidateModelConfig, DynamicBatching) {
  const std::string o = std::string(kOnnx) + "max_batch_size: 8\n";
  EXPECT_THAT(ValidationError(o + "dynamic_batching { preferred_batch_size: [ 4, 16 ] }"),
              HasSubstr("dynamic_batching.preferred_batch_size[1]: 16 is larger than "
                        "max_batch_size 8"));
  EXPECT_THAT(ValidationError(o + "dynamic_batching { preferred_batch_size: [ 0 ] }"),
              HasSubstr("0 is not a positive batch size"));
  EXPECT_THAT(ValidationError(o + "dynamic_batching { preferred_batch_size: [ 4, 4 ] }"),
              HasSubstr("4 is listed twice"));
  EXPECT_THAT(ValidationError(o + "dynamic_batching { priority_levels: 2 }"),
              HasSubstr("dynamic_batching.default_priority_level: 0 is not in [1, 2]"));
  EXPECT_THAT(
      ValidationError(o + "dynamic_batching { priority_levels: 2 default_priority_level: 3 }"),
      HasSubstr("3 is not in [1, 2]"));
  EXPECT_THAT(ValidationError(o + "dynamic_batching { default_priority_level: 1 }"),
              HasSubstr("default_priority_level: 1 is set but priority_levels is not"));
  EXPECT_THAT(ValidationError(o + "dynamic_batching { priority_queue_policy { key: 1 value {} } }"),
              HasSubstr("priority_queue_policy: is set but priority_levels is not"));
  EXPECT_THAT(ValidationError(o + "dynamic_batching { priority_levels: 2 default_priority_level: 1 "
                                  "priority_queue_policy { key: 5 value {} } }"),
              HasSubstr("priority_queue_policy[5]: level 5 is not in [1, 2]"));
  EXPECT_THAT(
      ValidationError(o + "dynamic_batching { default_queue_policy { timeout_action: 7 } }"),
      HasSubstr("default_queue_policy.timeout_action: 7 is not REJECT or DELAY"));
  EXPECT_THAT(ValidationError(o + "dynamic_batching { priority_levels: 100000000 "
                                  "default_priority_level: 1 }"),
              HasSubstr("priority_levels: 100000000 is more than"));
  std::vector<std::string> warnings;
  auto config = ParseModelConfigText(o + "dynamic_batching { preserve_ordering: true }", "f");
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(ValidateModelConfig(*config, "f", &warnings).ok());
  EXPECT_THAT(warnings, ::testing::ElementsAre(HasSubstr("preserve_ordering")));
}

TEST(ValidateModelConfig, VersionPolicy) {
  const std::string o = kOnnx;
  EXPECT_THAT(ValidationError(o + "version_policy { latest { num_versions: 0 } }"),
              HasSubstr("version_policy.latest.num_versions: must be at least 1"));
  EXPECT_THAT(ValidationError(o + "version_policy { specific {} }"),
              HasSubstr("version_policy.specific.versions: lists no version"));
  EXPECT_THAT(ValidationError(o + "version_policy { specific { versions: [ 0 ] } }"),
              HasSubstr("0 is not a version"));
  EXPECT_THAT(ValidationError(o + "version_policy { specific { versions: [ 2, 2 ] } }"),
              HasSubstr("version 2 is listed twice"));
  EXPECT_THAT(ValidationError(o + "version_policy { all {} }"), IsEmpty());
  EXPECT_THAT(ValidationError(o + "version_policy { latest { num_versions: 3 } }"), IsEmpty());
}

TEST(ValidateModelConfig, InstanceGroups) {
  const std::string o = kOnnx;
  EXPECT_THAT(ValidationError(o + "instance_group [ { kind: KIND_GPU } ]"),
              AllOf(HasSubstr("instance_group[0].kind KIND_GPU"), HasSubstr("not supported"),
                    HasSubstr("KIND_CPU")));
  EXPECT_THAT(ValidationError(o + "instance_group [ { count: -1 } ]"),
              HasSubstr("instance_group[0].count: -1 is negative"));
  EXPECT_THAT(ValidationError(o + "instance_group [ { count: 5000 kind: KIND_CPU } ]"),
              HasSubstr("5000 instances is more than 1024"));
  EXPECT_THAT(ValidationError(o + "instance_group [ { kind: 9 } ]"),
              HasSubstr("instance_group[0].kind: 9 is not a valid kind"));
  EXPECT_THAT(ValidationError(o + "instance_group [ { kind: KIND_CPU passive: true } ]"),
              HasSubstr("instance_group[0].passive"));
  EXPECT_THAT(ValidationError(o + "instance_group [ { kind: KIND_MODEL count: 3 } ]"), IsEmpty());
}

TEST(ValidateModelConfig, UnsupportedFieldsAreAllNamedInOneError) {
  const std::string error = ValidationError(std::string(kOnnx) + R"pb(
    max_batch_size: 4
    sequence_batching {}
    optimization {
      cuda { graphs: true }
      execution_accelerators { gpu_execution_accelerator
                               [ { name: "tensorrt" }] cpu_execution_accelerator
                               [ { name: "openvino" }] }
    } batch_input
    [ { kind: BATCH_ELEMENT_COUNT }]
    model_transaction_policy { decoupled: true }
    model_repository_agents { agents
                              [ { name: "checksum" }] }
    model_operations { op_library_filename: "libcustom.so" }
    runtime: "model.py"
  )pb");
  EXPECT_THAT(
      error, AllOf(HasSubstr("m/config.pbtxt: "), HasSubstr("sequence_batching"),
                   HasSubstr("optimization.cuda"), HasSubstr("'tensorrt'"), HasSubstr("'openvino'"),
                   HasSubstr("batch_input"), HasSubstr("model_transaction_policy.decoupled"),
                   HasSubstr("repository agent 'checksum'"), HasSubstr("model_operations"),
                   HasSubstr("runtime")));
  EXPECT_THAT(ValidationError(std::string(kOnnx) + "ensemble_scheduling { step [ {} ] }"),
              HasSubstr("ensemble_scheduling: set, but the model is not an ensemble"));
  // Present but empty GPU settings change nothing and are accepted.
  EXPECT_THAT(ValidationError(std::string(kOnnx) + "optimization { cuda {} }"), IsEmpty());
}

TEST(ValidateModelConfig, WarningsForFieldsWithoutEffect) {
  auto config = ParseModelConfigText(std::string(kOnnx) + R"pb(
                                       optimization {
                                         graph { level: -1 }
                                         input_pinned_memory { enable: false }
                                       } instance_group
                                       [ {
                                         kind: KIND_CPU
                                         rate_limiter { priority: 2 }
                                         host_policy: "numa0"
                                       }]
                                       cc_model_filenames { key: "8.0" value: "a100.onnx" }
                                       model_metrics {}
                                       parameters {
                                         key: "intra_op_thread_count"
                                         value { string_value: "4" }
                                       }
                                     )pb",
                                     "m/config.pbtxt");
  ASSERT_TRUE(config.ok()) << config.status();
  std::vector<std::string> warnings;
  EXPECT_TRUE(ValidateModelConfig(*config, "m/config.pbtxt", &warnings).ok());
  const std::string all = ::testing::PrintToString(warnings);
  EXPECT_THAT(all, AllOf(HasSubstr("optimization.graph.level"), HasSubstr("rate_limiter"),
                         HasSubstr("host_policy"), HasSubstr("cc_model_filenames"),
                         HasSubstr("model_metrics"), HasSubstr("intra_op_thread_count"),
                         HasSubstr("m/config.pbtxt: ")));
}

TEST(ValidateModelConfig, Warmup) {
  const std::string o = std::string(kOnnx) +
                        "max_batch_size: 4\n"
                        "input [ { name: \"x\" data_type: TYPE_FP32 dims: [ -1, 3 ] } ]\n";
  auto warmup = [&](const std::string& body) { return o + "model_warmup [ { " + body + " } ]"; };
  const std::string ok_input =
      "inputs { key: \"x\" value { data_type: TYPE_FP32 dims: [ 2, 3 ] zero_data: true } }";
  EXPECT_THAT(ValidationError(warmup("name: \"w\" batch_size: 2 " + ok_input)), IsEmpty());
  EXPECT_THAT(ValidationError(warmup("name: \"w\" " + ok_input)),
              HasSubstr("model_warmup 'w'.batch_size: must be at least 1"));
  EXPECT_THAT(ValidationError(warmup("name: \"w\" batch_size: 5 " + ok_input)),
              HasSubstr("5 is larger than max_batch_size 4"));
  EXPECT_THAT(ValidationError(warmup("batch_size: 1 " + ok_input)),
              HasSubstr("model_warmup[0].name: not set"));
  EXPECT_THAT(ValidationError(warmup("name: \"w\" batch_size: 1")),
              AllOf(HasSubstr("model_warmup 'w'.inputs: no input is given"),
                    HasSubstr("no data for input 'x'")));
  EXPECT_THAT(
      ValidationError(warmup("name: \"w\" batch_size: 1 inputs { key: \"x\" value { data_type: "
                             "TYPE_FP32 dims: [ 2, 3 ] } }")),
      HasSubstr("model_warmup 'w'.inputs['x']: no data"));
  EXPECT_THAT(
      ValidationError(warmup("name: \"w\" batch_size: 1 inputs { key: \"x\" value { data_type: "
                             "TYPE_INT32 dims: [ 2, 3 ] zero_data: true } }")),
      HasSubstr("inputs['x'].data_type: TYPE_INT32, but input 'x' is TYPE_FP32"));
  EXPECT_THAT(
      ValidationError(warmup("name: \"w\" batch_size: 1 inputs { key: \"x\" value { data_type: "
                             "TYPE_FP32 dims: [ 2, 4 ] zero_data: true } }")),
      HasSubstr("inputs['x'].dims: [2,4] do not fit input 'x' dims [-1,3]"));
  EXPECT_THAT(
      ValidationError(warmup("name: \"w\" batch_size: 1 inputs { key: \"x\" value { data_type: "
                             "TYPE_FP32 dims: [ -1, 3 ] zero_data: true } }")),
      HasSubstr("inputs['x'].dims[0]: -1 is not a valid dimension (a positive size)"));
  EXPECT_THAT(ValidationError(warmup("name: \"w\" batch_size: 1 " + ok_input +
                                     " inputs { key: \"z\" value { data_type: TYPE_FP32 dims: "
                                     "[ 1 ] zero_data: true } }")),
              HasSubstr("inputs['z']: not an input of the model"));
  EXPECT_THAT(
      ValidationError(warmup("name: \"w\" batch_size: 1 inputs { key: \"x\" value { data_type: "
                             "TYPE_FP32 dims: [ 2, 3 ] input_data_file: \"../../secret\" } }")),
      HasSubstr("inputs['x'].input_data_file: '../../secret' is not a file inside"));
  EXPECT_THAT(ValidationError(o + "model_warmup [ { name: \"w\" batch_size: 1 " + ok_input +
                              " }, { name: \"w\" batch_size: 1 " + ok_input + " } ]"),
              HasSubstr("model_warmup 'w': the name is used twice"));
}

TEST(ValidateModelConfig, StringsMustBeUtf8) {
  inference::ModelConfig config = Parse(kOnnx);
  config.add_input()->set_name("caf\xc3\xa9");
  EXPECT_TRUE(ValidateModelConfig(config, "f").ok());
  config.add_output()->set_name("bad\xff");
  EXPECT_THAT(ValidateModelConfig(config, "f").message(),
              HasSubstr("output[0].name: not valid UTF-8"));
  // The JSON stays valid even so.
  auto back = ModelConfigFromJson(ModelConfigToJson(config));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->output(0).name(), "bad\xef\xbf\xbd");
  for (const char* bad : {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    config.mutable_output(0)->set_name(bad);
    EXPECT_FALSE(ValidateModelConfig(config, "f").ok()) << bad;
  }
  config.mutable_output(0)->set_name("\xf0\x9f\x98\x80");
  EXPECT_TRUE(ValidateModelConfig(config, "f").ok());
}

TEST(ValidateModelConfig, MapKeysGivenTwice) {
  EXPECT_THAT(ValidationError(std::string(kOnnx) +
                              "parameters { key: \"a\" value {} } parameters { key: \"a\" "
                              "value {} }"),
              HasSubstr("parameters: key \"a\" is given more than once"));
  EXPECT_THAT(ValidationError(std::string(kOnnx) +
                              "max_batch_size: 2 dynamic_batching { priority_levels: 2 "
                              "default_priority_level: 1 priority_queue_policy [ { key: 1 value "
                              "{} }, { key: 1 value {} } ] }"),
              HasSubstr("dynamic_batching.priority_queue_policy: key 1 is given more than once"));
  inference::ModelConfig config = Parse(
      "parameters { key: \"a\" value { string_value: \"1\" } } "
      "parameters { key: \"a\" value { string_value: \"2\" } }");
  auto back = ModelConfigFromJson(ModelConfigToJson(config));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->parameters().at("a").string_value(), config.parameters().at("a").string_value());
}

TEST(ValidateModelConfig, LongListsAreCut) {
  std::string text = kOnnx;
  for (int i = 0; i < 30; ++i) text += "input [ { name: \"x\" dims: [ 0 ] } ]\n";
  EXPECT_THAT(ValidationError(text), HasSubstr("more problems"));
}

BackendTensorInfo T(const std::string& name, DataType type, std::vector<int64_t> dims) {
  return {name, type, std::move(dims)};
}

TEST(CompleteModelConfig, EmptyConfigIsCompletedFromABatchingModel) {
  inference::ModelConfig config = Parse("name: \"m\" platform: \"onnxruntime_onnx\"");
  ASSERT_TRUE(
      CompleteModelConfig({T("x", DataType::kFp32, {-1, 3}), T("ids", DataType::kInt64, {-1, -1})},
                          {T("y", DataType::kFp32, {-1, 2})}, &config)
          .ok());
  EXPECT_EQ(config.max_batch_size(), kDefaultMaxBatchSize);
  ASSERT_EQ(config.input_size(), 2);
  EXPECT_EQ(config.input(0).name(), "x");
  EXPECT_EQ(config.input(0).data_type(), inference::TYPE_FP32);
  EXPECT_THAT(config.input(0).dims(), ::testing::ElementsAre(3));
  EXPECT_EQ(config.input(1).data_type(), inference::TYPE_INT64);
  EXPECT_THAT(config.input(1).dims(), ::testing::ElementsAre(-1));
  ASSERT_EQ(config.output_size(), 1);
  EXPECT_THAT(config.output(0).dims(), ::testing::ElementsAre(2));
  EXPECT_TRUE(config.has_dynamic_batching());
  ASSERT_EQ(config.instance_group_size(), 1);
  EXPECT_EQ(config.instance_group(0).count(), 1);
  EXPECT_EQ(config.instance_group(0).kind(), inference::ModelInstanceGroup::KIND_CPU);
  EXPECT_EQ(config.instance_group(0).name(), "m_0");
  EXPECT_EQ(config.version_policy().latest().num_versions(), 1u);
  EXPECT_TRUE(ValidateModelConfig(config, "completed").ok());
}

TEST(CompleteModelConfig, FixedBatchModelIsNotBatched) {
  inference::ModelConfig config = Parse(kOnnx);
  ASSERT_TRUE(CompleteModelConfig({T("x", DataType::kFp32, {1, 3, 224, 224})},
                                  {T("y", DataType::kFp32, {1, 1000})}, &config)
                  .ok());
  EXPECT_EQ(config.max_batch_size(), 0);
  EXPECT_THAT(config.input(0).dims(), ::testing::ElementsAre(1, 3, 224, 224));
  EXPECT_FALSE(config.has_dynamic_batching());
}

TEST(CompleteModelConfig, FullShapesInTheConfigMeanNoBatching) {
  inference::ModelConfig config =
      Parse(std::string(kOnnx) + "input [ { name: \"x\" data_type: TYPE_FP32 dims: [ -1, 3 ] } ]");
  ASSERT_TRUE(CompleteModelConfig({T("x", DataType::kFp32, {-1, 3})},
                                  {T("y", DataType::kFp32, {-1})}, &config)
                  .ok());
  EXPECT_EQ(config.max_batch_size(), 0);
  EXPECT_THAT(config.output(0).dims(), ::testing::ElementsAre(-1));
}

TEST(CompleteModelConfig, ExplicitSettingsAreKept) {
  inference::ModelConfig config = Parse(std::string(kOnnx) + R"pb(
    max_batch_size: 1 instance_group
    [ { count: 3 kind: KIND_CPU name: "mine" }
      , { kind: KIND_AUTO }]
    version_policy { all {} }
  )pb");
  ASSERT_TRUE(CompleteModelConfig({T("x", DataType::kFp32, {-1, 3})},
                                  {T("y", DataType::kFp32, {-1, 2})}, &config)
                  .ok());
  EXPECT_EQ(config.max_batch_size(), 1);
  EXPECT_FALSE(config.has_dynamic_batching());  // max_batch_size 1: nothing to batch
  EXPECT_EQ(config.instance_group(0).count(), 3);
  EXPECT_EQ(config.instance_group(0).name(), "mine");
  EXPECT_EQ(config.instance_group(1).count(), 1);
  EXPECT_EQ(config.instance_group(1).kind(), inference::ModelInstanceGroup::KIND_CPU);
  EXPECT_TRUE(config.version_policy().has_all());
}

TEST(CompleteModelConfig, StricterDimsAndOutputSubsetsAreAccepted) {
  inference::ModelConfig config = Parse(std::string(kOnnx) + R"pb(
    max_batch_size: 8 input
    [ {
      name: "x"
      dims: [ 16 ]
    }] output
    [ {
      name: "b"
      data_type: TYPE_INT64
      dims: [ 1 ]
      reshape { shape: [] }
    }]
  )pb");
  ASSERT_TRUE(CompleteModelConfig(
                  {T("x", DataType::kFp32, {-1, -1})},
                  {T("a", DataType::kFp32, {-1, 4}), T("b", DataType::kInt64, {-1})}, &config)
                  .ok());
  EXPECT_EQ(config.input(0).data_type(), inference::TYPE_FP32);
  EXPECT_EQ(config.output_size(), 1);
  EXPECT_TRUE(config.has_dynamic_batching());
}

TEST(CompleteModelConfig, MismatchesNameTheTensorAndBothShapes) {
  auto complete = [](const std::string& text) {
    inference::ModelConfig config = Parse("name: \"rank\" " + std::string(kOnnx) + text);
    return std::string(CompleteModelConfig({T("x", DataType::kFp32, {-1, 256})},
                                           {T("y", DataType::kFp32, {-1, 1})}, &config)
                           .message());
  };
  EXPECT_THAT(
      complete("max_batch_size: 4 input [ { name: \"x\" data_type: TYPE_INT64 } ]"),
      HasSubstr("model 'rank': input 'x': config says TYPE_INT64, the model has TYPE_FP32"));
  EXPECT_THAT(complete("max_batch_size: 4 input [ { name: \"x\" dims: [ 128 ] } ]"),
              HasSubstr("input 'x': config shape [-1,128] (with the batch dimension) does not fit "
                        "the model's [-1,256]"));
  EXPECT_THAT(complete("max_batch_size: 4 input [ { name: \"x\" dims: [ 2, 128 ] } ]"),
              HasSubstr("does not fit the model's [-1,256]"));
  EXPECT_THAT(complete("max_batch_size: 4 output [ { name: \"y\" dims: [ -1 ] } ]"),
              HasSubstr("output 'y': config shape [-1,-1]"));
  EXPECT_THAT(complete("input [ { name: \"z\" } ]"),
              AllOf(HasSubstr("input 'z': not an input of the model (its inputs: x FP32 [-1,256])"),
                    HasSubstr("input 'x': the model needs it")));
  EXPECT_THAT(complete("output [ { name: \"q\" } ]"),
              HasSubstr("output 'q': not an output of the model (its outputs: y FP32 [-1,1])"));
  EXPECT_THAT(complete("input [ { name: \"x\" reshape { shape: [ 256 ] } } ]"),
              HasSubstr("input 'x'.dims: not set (needed with reshape)"));
}

TEST(CompleteModelConfig, BatchingAModelThatCannotBatchIsAnError) {
  inference::ModelConfig config = Parse("name: \"m\" max_batch_size: 8 " + std::string(kOnnx));
  absl::Status status = CompleteModelConfig({T("x", DataType::kFp32, {1, 3})},
                                            {T("y", DataType::kFp32, {1, 2})}, &config);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("model 'm': max_batch_size is 8"), HasSubstr("'x' has shape [1,3]"),
                    HasSubstr("max_batch_size: 0")));
}

TEST(CompleteModelConfig, ChecksThatNeedTheCompletedConfig) {
  inference::ModelConfig config = Parse(std::string(kOnnx) + R"pb(
    input
    [ {
      name: "x"
      data_type: TYPE_FP32
      dims: [ 2 ]
    }]
    dynamic_batching { preferred_batch_size: [ 2 ] } model_warmup
    [ {
      name: "w"
      batch_size: 2
      inputs {
        key: "x"
        value {
          data_type: TYPE_FP32
          dims: [ 2 ]
          zero_data: true
        }
      }
    }]
  )pb");
  absl::Status status =
      CompleteModelConfig({T("x", DataType::kFp32, {2})}, {T("y", DataType::kFp32, {2})}, &config);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("dynamic_batching.preferred_batch_size: set, but the model does not "
                              "batch"),
                    HasSubstr("model_warmup 'w'.batch_size: 2, but the model does not batch")));

  // Warm-up inputs are checked against inputs that completion added.
  config = Parse(std::string(kOnnx) + R"pb(
    model_warmup
    [ {
      name: "w"
      batch_size: 1
      inputs {
        key: "x"
        value {
          data_type: TYPE_FP64
          dims: [ 3 ]
          zero_data: true
        }
      }
    }]
  )pb");
  status = CompleteModelConfig({T("x", DataType::kFp32, {-1, 3})},
                               {T("y", DataType::kFp32, {-1, 2})}, &config);
  EXPECT_THAT(status.message(), HasSubstr("TYPE_FP64, but input 'x' is TYPE_FP32"));
}

TEST(ModelConfigJson, TritonShape) {
  inference::ModelConfig config = Parse(kEverything);
  const std::string json = ModelConfigToJson(config);
  EXPECT_THAT(
      json,
      AllOf(HasSubstr("\"name\":\"ranker\""), HasSubstr("\"max_batch_size\":64"),
            HasSubstr("\"dims\":[256]"), HasSubstr("\"data_type\":\"TYPE_FP32\""),
            HasSubstr("\"max_queue_delay_microseconds\":200"), HasSubstr("\"priority_levels\":3"),
            HasSubstr("\"versions\":[1,3]"), HasSubstr("\"default_timeout_microseconds\":5000"),
            HasSubstr("\"priority_queue_policy\":{\"1\":{\"timeout_action\":\"REJECT\""),
            HasSubstr("\"3\":{\"timeout_action\":\"REJECT\",\"default_timeout_"),
            // Defaults are printed too, as Triton's endpoint does.
            HasSubstr("\"label_filename\":\"\""), HasSubstr("\"optional\":false")));
  EXPECT_THAT(json, Not(HasSubstr("\"256\"")));
  auto back = ModelConfigFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(config, *back));
}

TEST(ModelConfigJson, EveryKindOfFieldRoundTrips) {
  inference::ModelConfig config = Parse(R"pb(
    name: "quote\" back\\ nl\n tab\t bell\x07 caf\303\251"
    sequence_batching {
      control_input
      [ {
        name: "S" control
        [ { fp32_false_true: [ 0, 0.1, -2.5e-7 ] }]
      }]
      direct { minimum_slot_utilization: 0.3 }
    }
    model_metrics { metric_control
                    [ { histogram_options { buckets: [ 0.1, 1e300, -5 ] } }] }
    version_policy { specific { versions: [ 9007199254740993, -1 ] } } input
    [ { name: "x" data_type: 77 }]
  )pb");
  const std::string json = ModelConfigToJson(config);
  EXPECT_THAT(json, AllOf(HasSubstr("\"versions\":[9007199254740993,-1]"),
                          HasSubstr("\"data_type\":77"), HasSubstr("\\\"")));
  auto back = ModelConfigFromJson(json);
  ASSERT_TRUE(back.ok()) << back.status() << "\n" << json;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(config, *back)) << json;

  (*config.mutable_dynamic_batching()->mutable_priority_queue_policy())[10];
  (*config.mutable_dynamic_batching()->mutable_priority_queue_policy())[2];
  EXPECT_THAT(ModelConfigToJson(config), HasSubstr("\"priority_queue_policy\":{\"2\":{"));
}

TEST(ModelConfigJson, LoadApiConfig) {
  auto config = ModelConfigFromJson(
      R"({"name":"m","backend":"onnxruntime","max_batch_size":2,
          "input":[{"name":"x","data_type":"TYPE_FP32","dims":[4]}],
          "dynamic_batching":{"max_queue_delay_microseconds":"100"}})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->input(0).dims(0), 4);
  EXPECT_EQ(config->dynamic_batching().max_queue_delay_microseconds(), 100u);

  auto unknown = ModelConfigFromJson(R"({"name":"m","max_batchsize":2})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(),
              AllOf(HasSubstr("model configuration JSON"), HasSubstr("max_batchsize")));
  EXPECT_FALSE(ModelConfigFromJson("{\"name\":").ok());
  EXPECT_FALSE(ModelConfigFromJson(R"({"max_batch_size":"many"})").ok());
}

TEST(DataTypes, RoundTripEveryType) {
  for (int i = inference::DataType_MIN; i <= inference::DataType_MAX; ++i) {
    const auto type = static_cast<inference::DataType>(i);
    if (type == inference::TYPE_INVALID) {
      EXPECT_FALSE(DataTypeFromConfig(type).ok());
      continue;
    }
    auto ours = DataTypeFromConfig(type);
    ASSERT_TRUE(ours.ok()) << ConfigDataTypeName(type);
    EXPECT_EQ(DataTypeToConfig(*ours), type);
  }
  EXPECT_EQ(*DataTypeFromConfig(inference::TYPE_STRING), DataType::kBytes);
  EXPECT_EQ(DataTypeToConfig(DataType::kInvalid), inference::TYPE_INVALID);
  EXPECT_FALSE(DataTypeFromConfig(static_cast<inference::DataType>(99)).ok());
  EXPECT_EQ(ConfigDataTypeName(static_cast<inference::DataType>(99)), "99");
}

TEST(Converters, SpecsAndSchedulerOptions) {
  inference::ModelConfig config = Parse(kEverything);
  const std::vector<IOSpec> inputs = InputSpecs(config);
  ASSERT_EQ(inputs.size(), 3u);
  EXPECT_EQ(inputs[0].name, "dense");
  EXPECT_EQ(inputs[0].dtype, DataType::kFp32);
  EXPECT_THAT(inputs[0].dims, ::testing::ElementsAre(256));
  EXPECT_FALSE(inputs[0].has_reshape);
  EXPECT_TRUE(inputs[1].optional);
  EXPECT_EQ(inputs[2].dtype, DataType::kBytes);
  EXPECT_TRUE(inputs[2].has_reshape);
  EXPECT_THAT(inputs[2].reshape, IsEmpty());
  const std::vector<IOSpec> outputs = OutputSpecs(config);
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].name, "score");

  const SchedulerOptions options = SchedulerOptionsFromConfig(config, "3");
  EXPECT_EQ(options.model_name, "ranker");
  EXPECT_EQ(options.model_version, "3");
  EXPECT_EQ(options.max_batch_size, 64);
  EXPECT_TRUE(options.dynamic_batching);
  EXPECT_THAT(options.preferred_batch_sizes, ::testing::ElementsAre(16, 32, 64));
  EXPECT_EQ(options.max_queue_delay_us, 200u);
  EXPECT_EQ(options.priority_levels, 3u);
  EXPECT_EQ(options.default_priority_level, 2u);
  EXPECT_EQ(options.default_queue_policy.timeout_action, QueuePolicy::TimeoutAction::kDelay);
  EXPECT_EQ(options.default_queue_policy.default_timeout_us, 5000u);
  EXPECT_TRUE(options.default_queue_policy.allow_timeout_override);
  EXPECT_EQ(options.default_queue_policy.max_queue_size, 100u);
  ASSERT_EQ(options.priority_queue_policy.size(), 2u);
  EXPECT_EQ(options.priority_queue_policy.at(1).max_queue_size, 10u);
  EXPECT_EQ(options.priority_queue_policy.at(1).timeout_action,
            QueuePolicy::TimeoutAction::kReject);
  EXPECT_EQ(options.priority_queue_policy.at(3).default_timeout_us, 100u);

  const SchedulerOptions plain = SchedulerOptionsFromConfig(Parse(kDensenetOnnx), "1");
  EXPECT_FALSE(plain.dynamic_batching);
  EXPECT_EQ(plain.max_batch_size, 0);
}

TEST(PlatformOf, Names) {
  EXPECT_EQ(PlatformOf(Parse("platform: \"onnxruntime_onnx\"")), ModelPlatform::kOnnx);
  EXPECT_EQ(PlatformOf(Parse("backend: \"onnxruntime\"")), ModelPlatform::kOnnx);
  EXPECT_EQ(PlatformOf(Parse("backend: \"fil\"")), ModelPlatform::kFil);
  EXPECT_EQ(PlatformOf(Parse("backend: \"fil\" platform: \"onnxruntime_onnx\"")),
            ModelPlatform::kUnknown);
  EXPECT_EQ(PlatformOf(Parse("backend: \"pytorch\"")), ModelPlatform::kUnknown);
  EXPECT_EQ(PlatformOf(Parse("")), ModelPlatform::kUnknown);
}

}  // namespace
}  // namespace flywheel::serving
