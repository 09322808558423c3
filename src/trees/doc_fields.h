// Typed reads of fields from a ModelDoc object, with errors that say which field of what was
// wrong ("tree 3: field 'left_children': element 5: 1.5 is not an integer").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "trees/model_doc.h"

namespace flywheel::trees {

// The member `key` of object `obj`; `where` names obj in errors ("learner", "tree 3").
absl::StatusOr<const Value*> RequireField(const Value& obj, absl::string_view key,
                                          absl::string_view where);
absl::StatusOr<const Value*> RequireObject(const Value& obj, absl::string_view key,
                                           absl::string_view where);
absl::StatusOr<absl::string_view> ReadString(const Value& obj, absl::string_view key,
                                             absl::string_view where);

// XGBoost writes parameters as strings ("num_class": "3"); numbers are accepted too.
absl::StatusOr<int64_t> ReadIntParam(const Value& obj, absl::string_view key,
                                     absl::string_view where, int64_t min, int64_t max);
absl::StatusOr<float> ReadFloatParam(const Value& obj, absl::string_view key,
                                     absl::string_view where);

// Arrays of numbers (booleans read as 0/1). Integers outside [min, max] are refused.
absl::Status ReadIntArray(const Value& obj, absl::string_view key, absl::string_view where,
                          int64_t min, int64_t max, std::vector<int32_t>* out);
absl::Status ReadFloatArray(const Value& obj, absl::string_view key, absl::string_view where,
                            std::vector<float>* out);
absl::Status ReadStringArray(const Value& obj, absl::string_view key, absl::string_view where,
                             std::vector<std::string>* out);

}  // namespace flywheel::trees
