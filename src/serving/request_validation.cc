// ValidateRequest (declared in scheduler.h): a request checked against the model's declared
// inputs and outputs before it is queued, so that the scheduler and the backend only ever see
// tensors of the declared types and shapes.
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "serving/scheduler.h"

namespace flywheel::serving {
namespace {

// "FP32 [-1,256]": the declared type and shape, the batch dimension as -1.
std::string Declared(const IOSpec& spec, bool batched) {
  std::vector<int64_t> dims;
  if (batched) dims.push_back(-1);
  dims.insert(dims.end(), spec.dims.begin(), spec.dims.end());
  return absl::StrCat(DataTypeName(spec.dtype), " [", absl::StrJoin(dims, ","), "]");
}

std::string Names(const std::vector<IOSpec>& specs) {
  if (specs.empty()) return "none";
  return absl::StrJoin(specs, ", ", [](std::string* out, const IOSpec& spec) {
    absl::StrAppend(out, "'", spec.name, "'");
  });
}

std::string Names(const std::vector<InferInput>& inputs) {
  if (inputs.empty()) return "none";
  return absl::StrJoin(inputs, ", ", [](std::string* out, const InferInput& input) {
    absl::StrAppend(out, "'", input.name, "'");
  });
}

int FindSpec(const std::vector<IOSpec>& specs, const std::string& name) {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

bool ShapeMatches(const IOSpec& spec, const Shape& shape, bool batched) {
  const int offset = batched ? 1 : 0;
  if (shape.rank() != static_cast<int>(spec.dims.size()) + offset) return false;
  for (size_t k = 0; k < spec.dims.size(); ++k) {
    if (spec.dims[k] >= 0 && spec.dims[k] != shape[static_cast<int>(k) + offset]) return false;
  }
  return true;
}

absl::Status InputError(const std::string& model, const std::string& input,
                        absl::string_view problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("model '", model, "' input '", input, "': ", problem));
}

// The shape the backend receives for an input with a configured reshape. A single variable
// dimension in the reshape is inferred from the element count; several take the request's sizes
// of the declared variable dimensions, in order.
absl::StatusOr<Shape> ReshapedShape(const std::string& model, const IOSpec& spec,
                                    const Shape& shape, bool batched) {
  const int offset = batched ? 1 : 0;
  const int64_t count = shape.Product(offset, shape.rank());
  absl::InlinedVector<int64_t, 6> variable;
  for (size_t k = 0; k < spec.dims.size(); ++k) {
    if (spec.dims[k] < 0) variable.push_back(shape[static_cast<int>(k) + offset]);
  }
  int unknown = 0;
  int64_t known = 1;
  for (int64_t d : spec.reshape) {
    if (d < 0) {
      ++unknown;
    } else {
      known *= d;
    }
  }
  Shape out;
  if (batched) out.push_back(shape[0]);
  size_t next_variable = 0;
  for (int64_t d : spec.reshape) {
    if (d >= 0) {
      out.push_back(d);
    } else if (unknown == 1 && known > 0 && count % known == 0) {
      out.push_back(count / known);
    } else if (unknown == 1 && known == 0 && count == 0) {
      out.push_back(0);
    } else if (unknown > 1 && unknown == static_cast<int>(variable.size())) {
      out.push_back(variable[next_variable++]);
    } else {
      out.push_back(-1);
    }
  }
  if (!out.IsFullyDefined() || out.Product(offset, out.rank()) != count) {
    std::vector<int64_t> reshape(spec.reshape.begin(), spec.reshape.end());
    return InputError(
        model, spec.name,
        absl::StrCat("shape ", shape.ToString(), " cannot take the configured reshape [",
                     absl::StrJoin(reshape, ","), "]"));
  }
  return out;
}

absl::Status CheckInput(const std::string& model, int max_batch_size, const IOSpec& spec,
                        const InferInput& input) {
  const bool batched = max_batch_size > 0;
  const Tensor& t = input.data;
  if (t.empty()) return InputError(model, spec.name, "the request carries no data");
  if (t.dtype() != spec.dtype || !ShapeMatches(spec, t.shape(), batched)) {
    return InputError(
        model, spec.name,
        absl::StrCat("expected ", Declared(spec, batched), ", got ", t.DebugString()));
  }
  // The error's context is built only for a shape that fails (this runs on every request).
  if (!Shape::Checked(t.shape().dims(), "").ok()) {
    return Shape::Checked(t.shape().dims(),
                          absl::StrCat("model '", model, "' input '", spec.name, "'"))
        .status();
  }
  if (batched) {
    const int64_t batch = t.dim(0);
    if (batch < 1 || batch > max_batch_size) {
      return InputError(
          model, spec.name,
          absl::StrCat("batch size ", batch, " (the first dimension of ", t.shape().ToString(),
                       ") is outside [1, ", max_batch_size, "] (max_batch_size)"));
    }
  }
  if (t.dtype() == DataType::kBytes) {
    const int64_t strings = static_cast<int64_t>(t.strings().size());
    if (strings != t.NumElements()) {
      return InputError(model, spec.name,
                        absl::StrCat("shape ", t.shape().ToString(), " needs ", t.NumElements(),
                                     " BYTES elements, the data holds ", strings));
    }
  } else if (t.ByteSize() > 0 && t.raw_data() == nullptr) {
    return InputError(
        model, spec.name,
        absl::StrCat("shape ", t.shape().ToString(), " needs ", t.ByteSize(), " bytes of ",
                     DataTypeName(t.dtype()), " data, the request has none"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRequest(const std::string& model_name, int max_batch_size,
                             const std::vector<IOSpec>& inputs, const std::vector<IOSpec>& outputs,
                             InferRequest* request) {
  const bool batched = max_batch_size > 0;
  std::vector<InferInput>& given = request->inputs;
  // spec_of[i]: the declared input that request input i is.
  absl::InlinedVector<int, 8> spec_of(given.size());
  absl::InlinedVector<int, 8> given_of(inputs.size(), -1);
  for (size_t i = 0; i < given.size(); ++i) {
    const int j = FindSpec(inputs, given[i].name);
    if (j < 0) {
      return absl::InvalidArgumentError(absl::StrCat("model '", model_name, "': unknown input '",
                                                     given[i].name, "'; the model's inputs are ",
                                                     Names(inputs)));
    }
    if (given_of[j] >= 0) {
      return InputError(model_name, given[i].name, "given more than once in the request");
    }
    given_of[j] = static_cast<int>(i);
    spec_of[i] = j;
  }
  for (size_t j = 0; j < inputs.size(); ++j) {
    if (given_of[j] < 0 && !inputs[j].optional) {
      return InputError(
          model_name, inputs[j].name,
          absl::StrCat("required but missing from the request (it has ", Names(given), ")"));
    }
  }

  int64_t batch = 0;
  const std::string* batch_input = nullptr;
  for (size_t i = 0; i < given.size(); ++i) {
    const IOSpec& spec = inputs[spec_of[i]];
    absl::Status status = CheckInput(model_name, max_batch_size, spec, given[i]);
    if (!status.ok()) return status;
    if (batched) {
      const int64_t b = given[i].data.dim(0);
      if (batch_input == nullptr) {
        batch = b;
        batch_input = &given[i].name;
      } else if (b != batch) {
        return InputError(model_name, spec.name,
                          absl::StrCat("batch size ", b, " differs from input '", *batch_input,
                                       "' batch size ", batch));
      }
    }
  }

  for (size_t i = 0; i < given.size(); ++i) {
    const IOSpec& spec = inputs[spec_of[i]];
    if (!spec.has_reshape) continue;
    absl::StatusOr<Shape> shape = ReshapedShape(model_name, spec, given[i].data.shape(), batched);
    if (!shape.ok()) return shape.status();
    given[i].data = given[i].data.Reshaped(*std::move(shape));
  }

  // Declaration order, which is the order the backend takes its inputs in.
  bool ordered = true;
  for (size_t i = 0; i < given.size(); ++i)
    ordered = ordered && (i == 0 || spec_of[i - 1] < spec_of[i]);
  if (!ordered) {
    std::vector<InferInput> sorted;
    sorted.reserve(given.size());
    for (int i : given_of) {
      if (i >= 0) sorted.push_back(std::move(given[i]));
    }
    given = std::move(sorted);
  }

  for (size_t k = 0; k < request->outputs.size(); ++k) {
    const std::string& name = request->outputs[k].name;
    if (FindSpec(outputs, name) < 0) {
      return absl::InvalidArgumentError(absl::StrCat("model '", model_name, "': unknown output '",
                                                     name, "' requested; the model's outputs are ",
                                                     Names(outputs)));
    }
    for (size_t m = 0; m < k; ++m) {
      if (request->outputs[m].name == name) {
        return absl::InvalidArgumentError(
            absl::StrCat("model '", model_name, "' output '", name, "': requested more than once"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace flywheel::serving
