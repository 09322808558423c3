// The HTTP transport of `flywheel bench --url`: KServe v2 REST with the binary tensor extension.
#include <chrono>
#include <sstream>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "absl/strings/str_cat.h"
#include "cli/http_client.h"
#include "cli/load_bench_transport.h"

namespace flywheel::cli {
namespace {

namespace http = boost::beast::http;

// Long enough for a big batch on a loaded server; a hung server still ends the run.
constexpr std::chrono::milliseconds kTimeout{60000};

absl::StatusOr<const rapidjson::Value*> Member(const rapidjson::Value& object, const char* name,
                                               absl::string_view where) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": no \"", name, "\" field"));
  }
  return &it->value;
}

absl::StatusOr<std::vector<TensorSpec>> ParseTensorSpecs(const rapidjson::Value& doc,
                                                         const char* field) {
  std::vector<TensorSpec> specs;
  auto it = doc.FindMember(field);
  if (it == doc.MemberEnd()) return specs;
  if (!it->value.IsArray()) {
    return absl::InvalidArgumentError(
        absl::StrCat("model metadata: \"", field, "\" is not a list"));
  }
  for (const rapidjson::Value& t : it->value.GetArray()) {
    const std::string where = absl::StrCat("model metadata ", field, "[", specs.size(), "]");
    if (!t.IsObject()) return absl::InvalidArgumentError(absl::StrCat(where, ": not an object"));
    TensorSpec spec;
    auto name = Member(t, "name", where);
    if (!name.ok()) return name.status();
    auto datatype = Member(t, "datatype", where);
    if (!datatype.ok()) return datatype.status();
    auto shape = Member(t, "shape", where);
    if (!shape.ok()) return shape.status();
    if (!(*name)->IsString() || !(*datatype)->IsString() || !(*shape)->IsArray()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": name and datatype must be strings, shape a list"));
    }
    spec.name = (*name)->GetString();
    auto dtype = DataTypeFromName((*datatype)->GetString());
    if (!dtype.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " '", spec.name, "': unknown datatype '", (*datatype)->GetString(), "'"));
    }
    spec.dtype = *dtype;
    for (const rapidjson::Value& d : (*shape)->GetArray()) {
      if (!d.IsInt64()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, " '", spec.name, "': shape entries must be integers"));
      }
      spec.shape.push_back(d.GetInt64());
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

void AddDuration(const rapidjson::Value& stats, const char* name, StatDuration& into) {
  auto it = stats.FindMember(name);
  if (it == stats.MemberEnd() || !it->value.IsObject()) return;
  auto count = it->value.FindMember("count");
  auto ns = it->value.FindMember("ns");
  if (count != it->value.MemberEnd() && count->value.IsUint64()) {
    into.count += count->value.GetUint64();
  }
  if (ns != it->value.MemberEnd() && ns->value.IsUint64()) into.ns += ns->value.GetUint64();
}

uint64_t GetUint(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  return it != object.MemberEnd() && it->value.IsUint64() ? it->value.GetUint64() : 0;
}

absl::Status HttpError(const HttpResponse& response, absl::string_view what) {
  return HttpStatusError(response.result_int(), response.body(), what);
}

class HttpTransport : public Transport {
 public:
  HttpTransport(std::string host, int port, std::unique_ptr<HttpConnection> control)
      : host_(std::move(host)), port_(port), control_(std::move(control)) {}

  absl::StatusOr<ModelMetadata> Metadata(const std::string& model) override {
    auto response = control_->Get(absl::StrCat("/v2/models/", model));
    if (!response.ok()) return response.status();
    if (response->result() != http::status::ok) {
      return HttpError(*response, absl::StrCat("model '", model, "' metadata"));
    }
    return ParseMetadataJson(response->body());
  }

  absl::StatusOr<ServerStats> Stats(const std::string& model) override {
    auto response = control_->Get(absl::StrCat("/v2/models/", model, "/stats"));
    if (!response.ok()) return response.status();
    if (response->result() != http::status::ok) {
      return HttpError(*response, absl::StrCat("model '", model, "' statistics"));
    }
    return ParseStatsJson(response->body());
  }

  // Event loops instead of a thread per connection: on a machine shared with the server, a
  // thread per connection costs the server the CPU that its wake-ups take.
  absl::StatusOr<std::unique_ptr<LoadRun>> StartLoad(const LoadSpec& spec,
                                                     OnRequestDone done) override {
    std::ostringstream message;
    message << InferRequest(spec.model, spec.inputs, spec.outputs);
    return StartHttpLoad(host_, port_, message.str(), spec, std::move(done));
  }

  std::string Describe() const override { return absl::StrCat("http://", host_, ":", port_); }

 private:
  // POST .../infer with the binary tensor extension, keep-alive.
  HttpRequest InferRequest(const std::string& model, const std::vector<InputTensor>& inputs,
                           const std::vector<std::string>& outputs) const {
    size_t header_length = 0;
    HttpRequest request(http::verb::post, absl::StrCat("/v2/models/", model, "/infer"), 11);
    request.set(http::field::host, absl::StrCat(host_, ":", port_));
    request.set(http::field::user_agent, "flywheel-bench");
    request.set(http::field::content_type, "application/octet-stream");
    request.body() = EncodeHttpInferBody(inputs, outputs, &header_length);
    request.set("Inference-Header-Content-Length", std::to_string(header_length));
    request.keep_alive(true);
    request.prepare_payload();
    return request;
  }

  std::string host_;
  int port_;
  std::unique_ptr<HttpConnection> control_;
};

}  // namespace

absl::Status HttpStatusError(int code, absl::string_view body, absl::string_view what) {
  const std::string message = absl::StrCat(what, ": HTTP ", code, ": ", ErrorFromBody(body));
  switch (code) {
    case 400:
      return absl::InvalidArgumentError(message);
    case 404:
      return absl::NotFoundError(message);
    case 503:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

std::string EncodeHttpInferBody(const std::vector<InputTensor>& inputs,
                                const std::vector<std::string>& outputs, size_t* header_length) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("inputs");
  w.StartArray();
  for (const InputTensor& input : inputs) {
    w.StartObject();
    w.Key("name");
    w.String(input.name.data(), input.name.size());
    w.Key("shape");
    w.StartArray();
    for (int64_t d : input.shape) w.Int64(d);
    w.EndArray();
    w.Key("datatype");
    const absl::string_view type = DataTypeName(input.dtype);
    w.String(type.data(), type.size());
    w.Key("parameters");
    w.StartObject();
    w.Key("binary_data_size");
    w.Uint64(input.data.size());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.Key("outputs");
  w.StartArray();
  for (const std::string& output : outputs) {
    w.StartObject();
    w.Key("name");
    w.String(output.data(), output.size());
    w.Key("parameters");
    w.StartObject();
    w.Key("binary_data");
    w.Bool(true);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::string body(buffer.GetString(), buffer.GetSize());
  *header_length = body.size();
  for (const InputTensor& input : inputs) body += input.data;
  return body;
}

absl::StatusOr<ModelMetadata> ParseMetadataJson(absl::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::InvalidArgumentError("model metadata: the server's answer is not a JSON object");
  }
  ModelMetadata metadata;
  auto name = doc.FindMember("name");
  if (name != doc.MemberEnd() && name->value.IsString()) metadata.name = name->value.GetString();
  auto inputs = ParseTensorSpecs(doc, "inputs");
  if (!inputs.ok()) return inputs.status();
  auto outputs = ParseTensorSpecs(doc, "outputs");
  if (!outputs.ok()) return outputs.status();
  metadata.inputs = *std::move(inputs);
  metadata.outputs = *std::move(outputs);
  return metadata;
}

absl::StatusOr<ServerStats> ParseStatsJson(absl::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::InvalidArgumentError("model statistics: the server's answer is not JSON");
  }
  auto list = doc.FindMember("model_stats");
  if (list == doc.MemberEnd() || !list->value.IsArray()) {
    return absl::InvalidArgumentError("model statistics: no \"model_stats\" list");
  }
  ServerStats stats;
  for (const rapidjson::Value& model : list->value.GetArray()) {
    if (!model.IsObject()) continue;
    stats.inference_count += GetUint(model, "inference_count");
    stats.execution_count += GetUint(model, "execution_count");
    auto infer = model.FindMember("inference_stats");
    if (infer == model.MemberEnd() || !infer->value.IsObject()) continue;
    AddDuration(infer->value, "success", stats.success);
    AddDuration(infer->value, "fail", stats.fail);
    AddDuration(infer->value, "queue", stats.queue);
    AddDuration(infer->value, "compute_input", stats.compute_input);
    AddDuration(infer->value, "compute_infer", stats.compute_infer);
    AddDuration(infer->value, "compute_output", stats.compute_output);
  }
  return stats;
}

std::string ErrorFromBody(absl::string_view body) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (!doc.HasParseError() && doc.IsObject()) {
    auto error = doc.FindMember("error");
    if (error != doc.MemberEnd() && error->value.IsString()) return error->value.GetString();
  }
  constexpr size_t kMax = 200;
  if (body.empty()) return "(empty body)";
  return body.size() <= kMax ? std::string(body) : absl::StrCat(body.substr(0, kMax), "...");
}

absl::StatusOr<std::unique_ptr<Transport>> MakeHttpTransport(const std::string& host, int port) {
  auto control = HttpConnection::Open(host, port, kTimeout);
  if (!control.ok()) return control.status();
  return std::unique_ptr<Transport>(new HttpTransport(host, port, *std::move(control)));
}

}  // namespace flywheel::cli
