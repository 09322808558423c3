// What `flywheel bench --url` needs from a KServe v2 server, behind one interface with an HTTP
// (JSON + binary tensor extension) and a gRPC (GRPCInferenceService) implementation: model
// metadata, cumulative statistics, and connections that repeat one inference request.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/data_type.h"

namespace flywheel::cli {

struct TensorSpec {
  std::string name;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;  // -1 marks a variable dimension
};

struct ModelMetadata {
  std::string name;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

// A cumulative count and total duration, as the statistics extension reports them.
struct StatDuration {
  uint64_t count = 0;
  uint64_t ns = 0;
};

// A model's statistics summed over its versions.
struct ServerStats {
  StatDuration success;
  StatDuration fail;
  StatDuration queue;
  StatDuration compute_input;
  StatDuration compute_infer;
  StatDuration compute_output;
  uint64_t inference_count = 0;
  uint64_t execution_count = 0;
};

// One input of a request: concrete shape and its bytes in the wire layout (row-major; BYTES
// elements as a 4-byte little-endian length and the bytes).
struct InputTensor {
  std::string name;
  DataType dtype = DataType::kInvalid;
  std::vector<int64_t> shape;
  std::string data;
};

// One client connection sending the same prepared request again and again. Not thread-safe:
// each load thread owns one.
class InferConnection {
 public:
  virtual ~InferConnection() = default;
  // One inference; an error when the transport fails or the server answers with an error.
  virtual absl::Status Infer() = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  virtual absl::StatusOr<ModelMetadata> Metadata(const std::string& model) = 0;
  virtual absl::StatusOr<ServerStats> Stats(const std::string& model) = 0;
  // A new connection (its own TCP connection) whose Infer() sends these inputs and asks for
  // these outputs (binary where the protocol has a choice).
  virtual absl::StatusOr<std::unique_ptr<InferConnection>> Connect(
      const std::string& model, const std::vector<InputTensor>& inputs,
      const std::vector<std::string>& outputs) = 0;
  // "http://host:port", for messages.
  virtual std::string Describe() const = 0;
};

// Both check that the server answers (the HTTP transport connects; the gRPC one waits for the
// channel) so that "server down" is reported before anything else.
absl::StatusOr<std::unique_ptr<Transport>> MakeHttpTransport(const std::string& host, int port);
absl::StatusOr<std::unique_ptr<Transport>> MakeGrpcTransport(const std::string& host, int port);

// Exposed for tests. The body of a binary-extension inference request: the JSON header, then
// each input's bytes; *header_length is the JSON's length (the Inference-Header-Content-Length).
std::string EncodeHttpInferBody(const std::vector<InputTensor>& inputs,
                                const std::vector<std::string>& outputs, size_t* header_length);
// GET /v2/models/M and GET /v2/models/M/stats response bodies.
absl::StatusOr<ModelMetadata> ParseMetadataJson(absl::string_view json);
absl::StatusOr<ServerStats> ParseStatsJson(absl::string_view json);
// The "error" field of a KServe error body, or the body itself (shortened) when it has none.
std::string ErrorFromBody(absl::string_view body);

}  // namespace flywheel::cli
