// Converts an ONNX model file into the engine's Graph: parses the protobuf, validates it with the
// ONNX checker, runs ONNX shape inference, reads initializers (external data included, confined to
// the model's folder) and turns Constant nodes into constants. Private to the engine.
#pragma once

#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "engine/graph.h"

namespace flywheel::engine {

// Loads the model at `path`; external data resolves against the file's folder.
absl::StatusOr<Graph> LoadOnnxFile(const std::string& path);
// Loads a serialized model; external data resolves against `model_dir` ("" forbids it). `what`
// names the model in errors.
absl::StatusOr<Graph> LoadOnnxBytes(absl::string_view bytes, const std::string& model_dir,
                                    absl::string_view what);

// Fails with one error listing every operator the graph uses that no kernel implements, with the
// nodes that use each.
absl::Status CheckOperatorsSupported(const Graph& graph);

}  // namespace flywheel::engine
