#include "api/http/registry_handler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "api/http/change_error.h"
#include "api/http/content_coding.h"
#include "api/http/http_message.h"
#include "api/http/json_body.h"
#include "api/http/route_check.h"
#include "api/http/url_path.h"
#include "api/http/v2_json.h"
#include "boost/asio/post.hpp"
#include "boost/asio/thread_pool.hpp"
#include "core/status.h"
#include "lifecycle/registry.h"
#include "lifecycle/registry_json.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"

namespace flywheel::api {
namespace http {
namespace {

namespace rj = rapidjson;
using lifecycle::AliasChange;
using lifecycle::ChangeAuthor;
using lifecycle::ModelInfo;
using lifecycle::Registry;
using lifecycle::VersionMetadata;

constexpr char kApiName[] = "the registry API";
constexpr char kDefaultAuthor[] = "http";

// Registry errors as HTTP statuses: a body too large or in an unknown coding as the body's
// fault, the rest as for every lifecycle change.
Reply RegistryErrorReply(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted:
      return ErrorReply(bhttp::status::payload_too_large, status.message());
    case absl::StatusCode::kUnimplemented:
      return ErrorReply(bhttp::status::unsupported_media_type, status.message());
    default:
      return ChangeErrorReply(status);
  }
}

absl::Status CheckFields(const rj::Document& doc, std::initializer_list<absl::string_view> allowed,
                         absl::string_view what) {
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    absl::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown field '", name, "' in the body of ", what,
                       "; known fields: ", absl::StrJoin(allowed, ", ")));
    }
  }
  return absl::OkStatus();
}

// A string field; `fallback` when absent.
absl::StatusOr<std::string> StringField(const rj::Document& doc, const char* name,
                                        absl::string_view fallback) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd()) return std::string(fallback);
  if (!it->value.IsString()) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' must be a string"));
  }
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

absl::StatusOr<ChangeAuthor> Author(const rj::Document& doc) {
  ChangeAuthor author;
  FW_ASSIGN_OR_RETURN(author.by, StringField(doc, "by", kDefaultAuthor));
  if (author.by.empty()) author.by = kDefaultAuthor;
  FW_ASSIGN_OR_RETURN(author.note, StringField(doc, "note", ""));
  return author;
}

class RegistryHandler : public Handler {
 public:
  RegistryHandler(std::vector<Registry*> registries, RegistryHandlerOptions options)
      : registries_(std::move(registries)),
        options_(std::move(options)),
        pool_(static_cast<size_t>(std::max(options_.worker_threads, 1))) {}

  ~RegistryHandler() override { pool_.join(); }

  void Handle(Request request, Respond respond) override {
    absl::StatusOr<std::vector<std::string>> segments = SplitPath(Target(request));
    if (!segments.ok()) return respond(ErrorReply(segments.status()));
    // {"v1", "registry", "models", model, ...}
    const std::vector<std::string>& s = *segments;
    const size_t n = s.size();
    std::string allowed;
    if (n >= 3 && s[2] == "models") {
      if (n == 3 || n == 4) {
        allowed = "GET";
      } else if (n == 5 && (s[4] == "promote" || s[4] == "rollback")) {
        allowed = "POST";
      } else if (n == 6 && s[4] == "versions") {
        allowed = "GET, POST";
      } else if (n == 6 && s[4] == "aliases") {
        allowed = "POST, DELETE";
      }
    }
    std::optional<Reply> refused = CheckRoute(
        request, {.allowed = allowed,
                  .endpoints = "the registry answers /v1/registry/models[/{model}[/versions/"
                               "{version}|/aliases/{alias}|/promote|/rollback]]",
                  .admin_token = options_.admin_token,
                  .api = kApiName});
    if (refused) return respond(*std::move(refused));
    // Every call reads registry files; changes lock them and fsync.
    boost::asio::post(pool_,
                      [this, s = std::move(*segments), request = std::move(request),
                       respond = std::move(respond)]() mutable { respond(Serve(s, request)); });
  }

 private:
  Reply Serve(const std::vector<std::string>& s, const Request& request) {
    if (s.size() == 3) return ListAll();
    const std::string& model = s[3];
    absl::StatusOr<Registry*> owner = Owner(model);
    if (!owner.ok()) return RegistryErrorReply(owner.status());
    Registry& registry = **owner;
    if (s.size() == 4) {
      absl::StatusOr<ModelInfo> info = registry.List(model);
      if (!info.ok()) return RegistryErrorReply(info.status());
      return JsonReply(bhttp::status::ok, lifecycle::ModelInfoJson(*info, false));
    }
    if (request.method() == bhttp::verb::get) {
      absl::StatusOr<lifecycle::VersionInfo> version = registry.Show(model, s[5]);
      if (!version.ok()) return RegistryErrorReply(version.status());
      return JsonReply(bhttp::status::ok, lifecycle::VersionInfoJson(model, *version, false));
    }
    rj::Document doc;
    std::shared_ptr<BodyBytes> holder;
    absl::Status parsed = ParseJsonObjectBody(request, options_.max_request_bytes, &doc, &holder,
                                              EmptyBody::kEmptyObject);
    if (!parsed.ok()) return RegistryErrorReply(parsed);
    if (s[4] == "versions") return RegisterVersion(registry, model, s[5], doc);
    absl::StatusOr<AliasChange> change = Change(registry, model, s, request.method(), doc);
    if (!change.ok()) return RegistryErrorReply(change.status());
    return JsonReply(bhttp::status::ok, lifecycle::AliasChangeJson(model, *change, false));
  }

  Reply ListAll() {
    std::vector<ModelInfo> all;
    std::set<std::string> seen;
    for (Registry* registry : registries_) {
      absl::StatusOr<std::vector<ModelInfo>> models = registry->ListAll();
      if (!models.ok()) return RegistryErrorReply(models.status());
      // A model folder in two repositories: the first one is the one Owner routes to.
      for (ModelInfo& m : *models) {
        if (seen.insert(m.model).second) all.push_back(std::move(m));
      }
    }
    std::sort(all.begin(), all.end(),
              [](const ModelInfo& a, const ModelInfo& b) { return a.model < b.model; });
    return JsonReply(bhttp::status::ok, lifecycle::ModelListJson(all, false));
  }

  // The registry whose repository has the model's folder (the first, in --model-repository
  // order). Bad names fail as the registry reports them.
  absl::StatusOr<Registry*> Owner(const std::string& model) {
    absl::Status first = absl::OkStatus();
    std::vector<std::string> repositories;
    for (Registry* registry : registries_) {
      absl::StatusOr<ModelInfo> info = registry->List(model);
      if (info.ok()) return registry;
      if (!absl::IsNotFound(info.status())) return info.status();
      if (first.ok()) first = info.status();
      repositories.push_back(registry->repository());
    }
    if (registries_.size() == 1) return first;
    return absl::NotFoundError(absl::StrCat("model '", model,
                                            "' has no folder in any model repository (",
                                            absl::StrJoin(repositories, ", "), ")"));
  }

  // A version number, or an alias naming one ("point staging at production's version").
  absl::StatusOr<int64_t> VersionField(Registry& registry, const std::string& model,
                                       const rj::Document& doc) {
    auto it = doc.FindMember("version");
    if (it == doc.MemberEnd()) {
      return absl::InvalidArgumentError("'version' is missing: give a version number or an alias");
    }
    if (it->value.IsInt64()) {
      if (it->value.GetInt64() <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("'version' ", it->value.GetInt64(), " is not a positive number"));
      }
      return it->value.GetInt64();
    }
    if (!it->value.IsString()) {
      return absl::InvalidArgumentError("'version' must be a version number or an alias name");
    }
    absl::string_view text(it->value.GetString(), it->value.GetStringLength());
    if (!text.empty() && absl::ascii_isdigit(static_cast<unsigned char>(text[0]))) {
      return lifecycle::ParseVersionNumber(text);
    }
    FW_ASSIGN_OR_RETURN(lifecycle::VersionInfo version, registry.Show(model, text));
    return version.version;
  }

  absl::StatusOr<AliasChange> Change(Registry& registry, const std::string& model,
                                     const std::vector<std::string>& s, bhttp::verb method,
                                     const rj::Document& doc) {
    const std::string& what = s[4];
    if (what == "aliases" && method == bhttp::verb::delete_) {
      FW_RETURN_IF_ERROR(CheckFields(doc, {"by", "note"}, "an alias removal"));
      FW_ASSIGN_OR_RETURN(ChangeAuthor author, Author(doc));
      return registry.RemoveAlias(model, s[5], author);
    }
    if (what == "aliases") {
      FW_RETURN_IF_ERROR(CheckFields(doc, {"version", "by", "note"}, "an alias change"));
      FW_ASSIGN_OR_RETURN(ChangeAuthor author, Author(doc));
      FW_RETURN_IF_ERROR(lifecycle::ValidateAliasName(s[5]));
      FW_ASSIGN_OR_RETURN(int64_t version, VersionField(registry, model, doc));
      return registry.SetAlias(model, s[5], version, author);
    }
    if (what == "promote") {
      FW_RETURN_IF_ERROR(CheckFields(doc, {"version", "alias", "by", "note"}, "a promotion"));
      FW_ASSIGN_OR_RETURN(ChangeAuthor author, Author(doc));
      FW_ASSIGN_OR_RETURN(std::string alias, StringField(doc, "alias", "production"));
      FW_RETURN_IF_ERROR(lifecycle::ValidateAliasName(alias));
      FW_ASSIGN_OR_RETURN(int64_t version, VersionField(registry, model, doc));
      return registry.Promote(model, version, author, alias);
    }
    FW_RETURN_IF_ERROR(CheckFields(doc, {"alias", "by", "note"}, "a rollback"));
    FW_ASSIGN_OR_RETURN(ChangeAuthor author, Author(doc));
    FW_ASSIGN_OR_RETURN(std::string alias, StringField(doc, "alias", "production"));
    return registry.Rollback(model, author, alias);
  }

  Reply RegisterVersion(Registry& registry, const std::string& model, const std::string& text,
                        const rj::Document& doc) {
    absl::StatusOr<int64_t> version = lifecycle::ParseVersionNumber(text);
    if (!version.ok()) {
      return ErrorReply(bhttp::status::bad_request,
                        absl::StrCat("model '", model,
                                     "': metadata is registered per version "
                                     "number: ",
                                     version.status().message()));
    }
    absl::Status fields = CheckFields(doc,
                                      {"training_data", "code_revision", "parameters", "metrics",
                                       "parent", "description", "update", "replace", "by"},
                                      "a version registration");
    if (!fields.ok()) return ErrorReply(fields);
    absl::StatusOr<bool> update = BoolField(doc, "update");
    absl::StatusOr<bool> replace = BoolField(doc, "replace");
    if (!update.ok()) return ErrorReply(update.status());
    if (!replace.ok()) return ErrorReply(replace.status());
    if (*update && *replace) {
      return ErrorReply(bhttp::status::bad_request, "'update' and 'replace' exclude each other");
    }
    absl::StatusOr<ChangeAuthor> author = Author(doc);
    if (!author.ok()) return ErrorReply(author.status());
    // Check the body before the registry file is locked.
    VersionMetadata scratch;
    if (absl::Status ok = ApplyMetadata(doc, scratch); !ok.ok()) return ErrorReply(ok);
    absl::StatusOr<VersionMetadata> done;
    if (*update) {
      done = registry.Update(
          model, *version, [&doc](VersionMetadata& m) { ApplyMetadata(doc, m).IgnoreError(); },
          *author);
    } else {
      VersionMetadata m;
      m.version = *version;
      ApplyMetadata(doc, m).IgnoreError();
      done = registry.Register(model, std::move(m), *author, *replace);
    }
    if (!done.ok()) return RegistryErrorReply(done.status());
    return JsonReply(bhttp::status::ok, lifecycle::VersionMetadataJson(model, *done, false));
  }

  static absl::StatusOr<bool> BoolField(const rj::Document& doc, const char* name) {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd()) return false;
    if (!it->value.IsBool()) {
      return absl::InvalidArgumentError(absl::StrCat("'", name, "' must be true or false"));
    }
    return it->value.GetBool();
  }

  // Sets the metadata fields the body has; with "update", parameters and metrics are merged
  // into the existing ones (a key given again is overwritten).
  static absl::Status ApplyMetadata(const rj::Document& doc, VersionMetadata& m) {
    for (const char* name : {"training_data", "code_revision", "description"}) {
      auto it = doc.FindMember(name);
      if (it == doc.MemberEnd()) continue;
      if (!it->value.IsString()) {
        return absl::InvalidArgumentError(absl::StrCat("'", name, "' must be a string"));
      }
      std::string value(it->value.GetString(), it->value.GetStringLength());
      if (absl::string_view(name) == "training_data") {
        m.training_data = std::move(value);
      } else if (absl::string_view(name) == "code_revision") {
        m.code_revision = std::move(value);
      } else {
        m.description = std::move(value);
      }
    }
    if (auto it = doc.FindMember("parent"); it != doc.MemberEnd()) {
      if (!it->value.IsInt64() || it->value.GetInt64() < 0) {
        return absl::InvalidArgumentError(
            "'parent' must be a version number (an integer; 0 for none)");
      }
      m.parent = it->value.GetInt64();
    }
    if (auto it = doc.FindMember("parameters"); it != doc.MemberEnd()) {
      if (!it->value.IsObject()) {
        return absl::InvalidArgumentError(
            "'parameters' must be an object of strings, e.g. {\"learning_rate\": \"0.1\"}");
      }
      for (auto p = it->value.MemberBegin(); p != it->value.MemberEnd(); ++p) {
        absl::string_view key(p->name.GetString(), p->name.GetStringLength());
        if (!p->value.IsString()) {
          return absl::InvalidArgumentError(
              absl::StrCat("parameter '", key, "' must be a string (parameters are kept as text)"));
        }
        m.parameters[std::string(key)] =
            std::string(p->value.GetString(), p->value.GetStringLength());
      }
    }
    if (auto it = doc.FindMember("metrics"); it != doc.MemberEnd()) {
      if (!it->value.IsObject()) {
        return absl::InvalidArgumentError(
            "'metrics' must be an object of numbers, e.g. {\"auc\": 0.91}");
      }
      for (auto p = it->value.MemberBegin(); p != it->value.MemberEnd(); ++p) {
        absl::string_view key(p->name.GetString(), p->name.GetStringLength());
        if (!p->value.IsNumber() || !std::isfinite(p->value.GetDouble())) {
          return absl::InvalidArgumentError(
              absl::StrCat("metric '", key, "' must be a finite number"));
        }
        m.metrics[std::string(key)] = p->value.GetDouble();
      }
    }
    return absl::OkStatus();
  }

  const std::vector<Registry*> registries_;
  const RegistryHandlerOptions options_;
  boost::asio::thread_pool pool_;
};

}  // namespace
}  // namespace http

std::shared_ptr<http::Handler> MakeRegistryHandler(std::vector<lifecycle::Registry*> registries,
                                                   RegistryHandlerOptions options) {
  return std::make_shared<http::RegistryHandler>(std::move(registries), std::move(options));
}

}  // namespace flywheel::api
