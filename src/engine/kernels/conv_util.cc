#include "engine/kernels/conv_util.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace flywheel::engine {
namespace {

absl::Status Err(const Node& node, const std::string& msg) {
  return absl::InvalidArgumentError(absl::StrCat(node.Describe(), ": ", msg));
}

std::string Join(const IntList& v) { return absl::StrCat("[", absl::StrJoin(v, ","), "]"); }

}  // namespace

absl::StatusOr<WindowAttrs> ParseWindowAttrs(const Node& node) {
  WindowAttrs a;
  auto read = [&](const char* name, IntList* out) {
    std::vector<int64_t> v = node.GetInts(name);
    out->assign(v.begin(), v.end());
  };
  read("kernel_shape", &a.kernel_shape);
  read("strides", &a.strides);
  read("dilations", &a.dilations);
  read("pads", &a.pads);
  for (int64_t k : a.kernel_shape) {
    if (k <= 0)
      return Err(node, absl::StrCat("kernel_shape ", Join(a.kernel_shape), " must be positive"));
  }
  for (int64_t s : a.strides) {
    if (s <= 0) return Err(node, absl::StrCat("strides ", Join(a.strides), " must be positive"));
  }
  for (int64_t d : a.dilations) {
    if (d <= 0)
      return Err(node, absl::StrCat("dilations ", Join(a.dilations), " must be positive"));
  }
  for (int64_t p : a.pads) {
    if (p < 0) return Err(node, absl::StrCat("pads ", Join(a.pads), " must not be negative"));
  }
  if (a.pads.size() % 2 != 0) {
    return Err(node, absl::StrCat("pads ", Join(a.pads), " must have an even length"));
  }
  std::string auto_pad = node.GetString("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET" || auto_pad.empty()) {
    a.auto_pad = AutoPad::kNotSet;
  } else if (auto_pad == "SAME_UPPER") {
    a.auto_pad = AutoPad::kSameUpper;
  } else if (auto_pad == "SAME_LOWER") {
    a.auto_pad = AutoPad::kSameLower;
  } else if (auto_pad == "VALID") {
    a.auto_pad = AutoPad::kValid;
  } else {
    return Err(node, absl::StrCat("unknown auto_pad '", auto_pad, "'"));
  }
  int64_t ceil_mode = node.GetInt("ceil_mode", 0);
  if (ceil_mode != 0 && ceil_mode != 1) {
    return Err(node, absl::StrCat("ceil_mode must be 0 or 1, got ", ceil_mode));
  }
  a.ceil_mode = ceil_mode == 1;
  return a;
}

absl::StatusOr<WindowGeometry> ComputeWindow(const Node& node, const WindowAttrs& a, int spatial,
                                             const int64_t* in_spatial, const int64_t* kernel) {
  auto check_len = [&](const IntList& v, size_t want, const char* name) -> absl::Status {
    if (!v.empty() && v.size() != want) {
      return Err(node, absl::StrCat(name, " ", Join(v), " has ", v.size(), " values, expected ",
                                    want, " for ", spatial, " spatial axes"));
    }
    return absl::OkStatus();
  };
  FW_RETURN_IF_ERROR(check_len(a.strides, spatial, "strides"));
  FW_RETURN_IF_ERROR(check_len(a.dilations, spatial, "dilations"));
  FW_RETURN_IF_ERROR(check_len(a.pads, 2 * spatial, "pads"));
  WindowGeometry g;
  g.spatial = spatial;
  for (int i = 0; i < spatial; ++i) {
    const int64_t in = in_spatial[i];
    const int64_t k = kernel[i];
    const int64_t s = a.strides.empty() ? 1 : a.strides[i];
    const int64_t d = a.dilations.empty() ? 1 : a.dilations[i];
    if (k <= 0)
      return Err(node, absl::StrCat("kernel size ", k, " on axis ", i, " must be positive"));
    if (in < 0) return Err(node, absl::StrCat("negative input size on spatial axis ", i));
    const int64_t keff = (k - 1) * d + 1;
    int64_t pb = 0, pe = 0, out = 0;
    switch (a.auto_pad) {
      case AutoPad::kNotSet:
        pb = a.pads.empty() ? 0 : a.pads[i];
        pe = a.pads.empty() ? 0 : a.pads[i + spatial];
        break;
      case AutoPad::kValid:
        break;
      case AutoPad::kSameUpper:
      case AutoPad::kSameLower: {
        out = (in + s - 1) / s;
        int64_t total = std::max<int64_t>(0, (out - 1) * s + keff - in);
        int64_t small = total / 2, big = total - small;
        pb = a.auto_pad == AutoPad::kSameUpper ? small : big;
        pe = total - pb;
        break;
      }
    }
    const int64_t span = in + pb + pe - keff;
    if (span < 0) {
      return Err(node,
                 absl::StrCat("kernel of effective size ", keff, " on spatial axis ", i,
                              " is larger than the padded input (", in, " + ", pb, " + ", pe, ")"));
    }
    if (a.auto_pad == AutoPad::kNotSet || a.auto_pad == AutoPad::kValid) {
      out = a.ceil_mode ? (span + s - 1) / s + 1 : span / s + 1;
      // The last window must start inside the input or the leading padding.
      if (a.ceil_mode && (out - 1) * s >= in + pb) --out;
    }
    g.kernel.push_back(k);
    g.strides.push_back(s);
    g.dilations.push_back(d);
    g.pad_begin.push_back(pb);
    g.pad_end.push_back(pe);
    g.in.push_back(in);
    g.out.push_back(out);
  }
  return g;
}

}  // namespace flywheel::engine
