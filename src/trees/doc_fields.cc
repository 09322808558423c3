#include "trees/doc_fields.h"

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace flywheel::trees {
namespace {

absl::Status FieldError(absl::string_view where, absl::string_view key, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": field '", key, "': ", what));
}

absl::Status WrongKind(absl::string_view where, absl::string_view key, absl::string_view expected,
                       const Value& got) {
  return FieldError(where, key, absl::StrCat("expected ", expected, ", got ", got.kind_name()));
}

// A parameter's number: the string's text ("3", "5E-1") or the number itself.
absl::StatusOr<NumberRef> ParamNumber(const Value& obj, absl::string_view key,
                                      absl::string_view where) {
  FW_ASSIGN_OR_RETURN(const Value* v, RequireField(obj, key, where));
  if (v->kind() == Value::Kind::kNumber) return v->number();
  if (v->kind() != Value::Kind::kString) return WrongKind(where, key, "a number or string", *v);
  absl::string_view s = v->string_value();
  // XGBoost 2 writes base_score as "[5E-1]".
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  return NumberRef{NumEncoding::kText, s.data(), static_cast<uint32_t>(s.size())};
}

absl::StatusOr<const Value*> RequireNumberList(const Value& obj, absl::string_view key,
                                               absl::string_view where) {
  FW_ASSIGN_OR_RETURN(const Value* v, RequireField(obj, key, where));
  if (v->IsNumberList()) return v;
  if (v->kind() == Value::Kind::kArray) {
    for (size_t i = 0; i < v->items().size(); ++i) {
      const Value& item = v->items()[i];
      if (item.kind() != Value::Kind::kNumber && item.kind() != Value::Kind::kBool) {
        return FieldError(
            where, key, absl::StrCat("element ", i, ": expected a number, got ", item.kind_name()));
      }
    }
    return v;
  }
  return WrongKind(where, key, "an array of numbers", *v);
}

}  // namespace

absl::StatusOr<const Value*> RequireField(const Value& obj, absl::string_view key,
                                          absl::string_view where) {
  if (!obj.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected an object, got ", obj.kind_name()));
  }
  const Value* v = obj.Find(key);
  if (v == nullptr)
    return absl::InvalidArgumentError(absl::StrCat(where, ": missing field '", key, "'"));
  return v;
}

absl::StatusOr<const Value*> RequireObject(const Value& obj, absl::string_view key,
                                           absl::string_view where) {
  FW_ASSIGN_OR_RETURN(const Value* v, RequireField(obj, key, where));
  if (!v->is_object()) return WrongKind(where, key, "an object", *v);
  return v;
}

absl::StatusOr<absl::string_view> ReadString(const Value& obj, absl::string_view key,
                                             absl::string_view where) {
  FW_ASSIGN_OR_RETURN(const Value* v, RequireField(obj, key, where));
  if (v->kind() != Value::Kind::kString) return WrongKind(where, key, "a string", *v);
  return v->string_value();
}

absl::StatusOr<int64_t> ReadIntParam(const Value& obj, absl::string_view key,
                                     absl::string_view where, int64_t min, int64_t max) {
  FW_ASSIGN_OR_RETURN(NumberRef n, ParamNumber(obj, key, where));
  auto i = n.ToInt64();
  if (!i.ok()) return FieldError(where, key, i.status().message());
  if (*i < min || *i > max) {
    return FieldError(where, key, absl::StrCat(*i, " is outside [", min, ", ", max, "]"));
  }
  return *i;
}

absl::StatusOr<float> ReadFloatParam(const Value& obj, absl::string_view key,
                                     absl::string_view where) {
  FW_ASSIGN_OR_RETURN(NumberRef n, ParamNumber(obj, key, where));
  auto f = n.ToFloat();
  if (!f.ok()) return FieldError(where, key, f.status().message());
  return *f;
}

absl::Status ReadIntArray(const Value& obj, absl::string_view key, absl::string_view where,
                          int64_t min, int64_t max, std::vector<int32_t>* out) {
  FW_ASSIGN_OR_RETURN(const Value* v, RequireNumberList(obj, key, where));
  const bool items = v->kind() == Value::Kind::kArray;
  const size_t n = items ? v->items().size() : v->NumberCount();
  out->resize(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t x;
    if (items && v->items()[i].kind() == Value::Kind::kBool) {
      x = v->items()[i].bool_value() ? 1 : 0;
    } else {
      auto r = v->NumberAt(i).ToInt64();
      if (!r.ok())
        return FieldError(where, key, absl::StrCat("element ", i, ": ", r.status().message()));
      x = *r;
    }
    if (x < min || x > max) {
      return FieldError(where, key,
                        absl::StrCat("element ", i, ": ", x, " is outside [", min, ", ", max, "]"));
    }
    (*out)[i] = static_cast<int32_t>(x);
  }
  return absl::OkStatus();
}

absl::Status ReadFloatArray(const Value& obj, absl::string_view key, absl::string_view where,
                            std::vector<float>* out) {
  FW_ASSIGN_OR_RETURN(const Value* v, RequireNumberList(obj, key, where));
  const bool items = v->kind() == Value::Kind::kArray;
  const size_t n = items ? v->items().size() : v->NumberCount();
  out->resize(n);
  for (size_t i = 0; i < n; ++i) {
    if (items && v->items()[i].kind() == Value::Kind::kBool) {
      return FieldError(where, key,
                        absl::StrCat("element ", i, ": expected a number, got boolean"));
    }
    auto r = v->NumberAt(i).ToFloat();
    if (!r.ok())
      return FieldError(where, key, absl::StrCat("element ", i, ": ", r.status().message()));
    (*out)[i] = *r;
  }
  return absl::OkStatus();
}

absl::Status ReadStringArray(const Value& obj, absl::string_view key, absl::string_view where,
                             std::vector<std::string>* out) {
  FW_ASSIGN_OR_RETURN(const Value* v, RequireField(obj, key, where));
  out->clear();
  if (v->kind() == Value::Kind::kNumberArray && v->NumberCount() == 0) return absl::OkStatus();
  if (v->kind() != Value::Kind::kArray) return WrongKind(where, key, "an array of strings", *v);
  for (size_t i = 0; i < v->items().size(); ++i) {
    const Value& item = v->items()[i];
    if (item.kind() != Value::Kind::kString) {
      return FieldError(where, key,
                        absl::StrCat("element ", i, ": expected a string, got ", item.kind_name()));
    }
    out->emplace_back(item.string_value());
  }
  return absl::OkStatus();
}

}  // namespace flywheel::trees
