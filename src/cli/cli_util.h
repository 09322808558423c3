// Helpers shared by the `flywheel` subcommands: reading `--input NAME=FILE.npy` flags into a
// session's input order, describing signatures and printing tensors for people.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "engine/session.h"

namespace flywheel::cli {

// "x FP32 [-1,256]"
std::string DescribeInfo(const engine::TensorInfo& info);
// "x FP32 [-1,256], ids INT64 [-1,8]"
std::string DescribeInfos(const std::vector<engine::TensorInfo>& infos);

// Reads the tensors named by `specs` ("NAME=FILE.npy") and returns them in the order of
// `infos`. Unknown names, duplicates and unreadable files are errors; an input without a spec is
// an error unless `allow_missing`, in which case its slot is left empty.
absl::StatusOr<std::vector<Tensor>> ReadNamedInputs(const std::vector<engine::TensorInfo>& infos,
                                                    const std::vector<std::string>& specs,
                                                    bool allow_missing);

// `--input` specs for the inputs that `specs` does not name yet, read from `dir`: each input's
// file is DIR/<name>.npy (name as OutputFileNames would make it) or else DIR/input_<k>.npy, the
// fixture layout. Inputs with neither file are left out (ReadNamedInputs reports them).
std::vector<std::string> InputDirSpecs(const std::vector<engine::TensorInfo>& infos,
                                       const std::vector<std::string>& specs,
                                       const std::string& dir);

// File names for outputs: characters outside [A-Za-z0-9._-] become '_', and names that end up
// empty, hidden ('.x') or equal to an earlier one get a unique form. One entry per name.
std::vector<std::string> OutputFileNames(const std::vector<engine::TensorInfo>& outputs);

// The first `max_values` elements of `t`, e.g. "[0.5, -1, 2.25, ...]".
std::string FormatValues(const Tensor& t, int max_values);

// Makes a Status one line ("error: ..." output stays on one line whatever the message).
std::string OneLine(const absl::Status& status);

}  // namespace flywheel::cli
