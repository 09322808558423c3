#include "cli/cli_util.h"

#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "core/npy.h"
#include "core/shape.h"

namespace flywheel::cli {
namespace {

// IEEE half and bfloat16 to float, for printing only.
float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t mant = h & 0x3ff;
  float f;
  if (exp == 0) {
    f = static_cast<float>(mant) * (1.0f / 16777216.0f);  // subnormal: mant * 2^-24
    return sign ? -f : f;
  }
  uint32_t bits =
      exp == 31 ? (sign | 0x7f800000u | (mant << 13)) : (sign | ((exp + 112) << 23) | (mant << 13));
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

float Bf16ToFloat(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

std::string FormatElement(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DataType::kBool:
      return t.data<bool>()[i] ? "true" : "false";
    case DataType::kUint8:
      return absl::StrCat(t.data<uint8_t>()[i]);
    case DataType::kUint16:
      return absl::StrCat(t.data<uint16_t>()[i]);
    case DataType::kUint32:
      return absl::StrCat(t.data<uint32_t>()[i]);
    case DataType::kUint64:
      return absl::StrCat(t.data<uint64_t>()[i]);
    case DataType::kInt8:
      return absl::StrCat(t.data<int8_t>()[i]);
    case DataType::kInt16:
      return absl::StrCat(t.data<int16_t>()[i]);
    case DataType::kInt32:
      return absl::StrCat(t.data<int32_t>()[i]);
    case DataType::kInt64:
      return absl::StrCat(t.data<int64_t>()[i]);
    case DataType::kFp16:
      return absl::StrCat(HalfToFloat(t.data<uint16_t>()[i]));
    case DataType::kBf16:
      return absl::StrCat(Bf16ToFloat(t.data<uint16_t>()[i]));
    case DataType::kFp32:
      return absl::StrCat(t.data<float>()[i]);
    case DataType::kFp64:
      return absl::StrCat(t.data<double>()[i]);
    case DataType::kBytes:
      return absl::StrCat("\"", absl::CEscape(t.strings()[i]), "\"");
    case DataType::kInvalid:
      break;
  }
  return "?";
}

}  // namespace

std::string DescribeInfo(const engine::TensorInfo& info) {
  return absl::StrCat(info.name, " ", DataTypeName(info.dtype), " ",
                      Shape(absl::MakeConstSpan(info.dims)).ToString());
}

std::string DescribeInfos(const std::vector<engine::TensorInfo>& infos) {
  std::vector<std::string> parts;
  for (const engine::TensorInfo& info : infos) parts.push_back(DescribeInfo(info));
  return absl::StrJoin(parts, ", ");
}

absl::StatusOr<std::vector<Tensor>> ReadNamedInputs(const std::vector<engine::TensorInfo>& infos,
                                                    const std::vector<std::string>& specs,
                                                    bool allow_missing) {
  std::vector<Tensor> tensors(infos.size());
  std::vector<bool> given(infos.size(), false);
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--input '", spec, "': expected NAME=FILE.npy"));
    }
    const std::string name = spec.substr(0, eq);
    const std::string path = spec.substr(eq + 1);
    size_t index = infos.size();
    for (size_t i = 0; i < infos.size(); ++i) {
      if (infos[i].name == name) index = i;
    }
    if (index == infos.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown input '", name, "'; the model's inputs are: ", DescribeInfos(infos)));
    }
    if (given[index]) {
      return absl::InvalidArgumentError(absl::StrCat("input '", name, "' given twice"));
    }
    absl::StatusOr<Tensor> tensor = ReadNpy(path);
    if (!tensor.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", name, "': ", tensor.status().message()));
    }
    tensors[index] = *std::move(tensor);
    given[index] = true;
  }
  if (!allow_missing) {
    for (size_t i = 0; i < infos.size(); ++i) {
      if (given[i]) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          "missing input ", DescribeInfo(infos[i]), ": pass --input ", infos[i].name, "=FILE.npy"));
    }
  }
  return tensors;
}

std::vector<std::string> InputDirSpecs(const std::vector<engine::TensorInfo>& infos,
                                       const std::vector<std::string>& specs,
                                       const std::string& dir) {
  std::set<std::string> named;
  for (const std::string& spec : specs) named.insert(spec.substr(0, spec.find('=')));
  const std::vector<std::string> files = OutputFileNames(infos);
  std::vector<std::string> out = specs;
  for (size_t k = 0; k < infos.size(); ++k) {
    if (named.count(infos[k].name)) continue;
    for (const std::string& file : {files[k] + ".npy", absl::StrCat("input_", k, ".npy")}) {
      const std::filesystem::path path = std::filesystem::path(dir) / file;
      std::error_code ec;
      if (!std::filesystem::is_regular_file(path, ec)) continue;
      out.push_back(absl::StrCat(infos[k].name, "=", path.string()));
      break;
    }
  }
  return out;
}

std::vector<std::string> OutputFileNames(const std::vector<engine::TensorInfo>& outputs) {
  std::vector<std::string> names;
  std::set<std::string> used;
  for (size_t k = 0; k < outputs.size(); ++k) {
    std::string name = outputs[k].name;
    for (char& c : name) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-';
      if (!ok) c = '_';
    }
    if (name.empty() || name[0] == '.') name = absl::StrCat("output_", k, name);
    if (used.count(name)) name = absl::StrCat(name, "_", k);
    while (used.count(name)) name += "_";
    used.insert(name);
    names.push_back(name);
  }
  return names;
}

std::string FormatValues(const Tensor& t, int max_values) {
  const int64_t n = t.NumElements();
  std::string out = "[";
  for (int64_t i = 0; i < n && i < max_values; ++i) {
    if (i > 0) out += ", ";
    out += FormatElement(t, i);
  }
  if (n > max_values) out += ", ...";
  out += "]";
  return out;
}

std::string OneLine(const absl::Status& status) {
  return absl::StrReplaceAll(status.message(), {{"\n", "; "}});
}

}  // namespace flywheel::cli
