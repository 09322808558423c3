// What `flywheel bench --url` needs from a KServe v2 server, behind one interface with an HTTP
// (JSON + binary tensor extension) and a gRPC (GRPCInferenceService) implementation: model
// metadata, cumulative statistics, and connections that repeat one inference request.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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

// The clock of a load run's timestamps, in nanoseconds.
inline int64_t SteadyNs(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// Called after each finished request of a load run, on the thread that drives that connection
// (never on two threads at once for one connection): the connection's index, the request's start
// and end (SteadyNs) and its result. Returning false stops that connection.
using OnRequestDone =
    std::function<bool(int connection, int64_t start_ns, int64_t end_ns, const absl::Status&)>;

// Connections sending one request again and again, each as soon as its previous one is answered.
class LoadRun {
 public:
  virtual ~LoadRun() = default;
  // Waits until every connection has stopped (its callback returned false).
  virtual void Join() = 0;
};

struct LoadSpec {
  std::string model;
  std::vector<InputTensor> inputs;
  std::vector<std::string> outputs;
  int concurrency = 1;
  // Threads that drive the connections, where the transport multiplexes them (HTTP); 0: one per
  // core, at most one per connection.
  int threads = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Opens spec.concurrency connections (each its own TCP connection) that send spec.inputs and
  // ask for spec.outputs (binary where the protocol has a choice), and starts them.
  virtual absl::StatusOr<std::unique_ptr<LoadRun>> StartLoad(const LoadSpec& spec,
                                                             OnRequestDone done) = 0;
  virtual absl::StatusOr<ModelMetadata> Metadata(const std::string& model) = 0;
  virtual absl::StatusOr<ServerStats> Stats(const std::string& model) = 0;
  // "http://host:port", for messages.
  virtual std::string Describe() const = 0;
};

// One client connection sending the same prepared request again and again, for a blocking
// client. Not thread-safe: each load thread owns one.
class InferConnection {
 public:
  virtual ~InferConnection() = default;
  // One inference; an error when the transport fails or the server answers with an error.
  virtual absl::Status Infer() = 0;
};

// A load run for a blocking client (gRPC's): `concurrency` connections made by `connect`, each
// driven by its own thread.
absl::StatusOr<std::unique_ptr<LoadRun>> StartThreadPerConnectionLoad(
    int concurrency,
    const std::function<absl::StatusOr<std::unique_ptr<InferConnection>>()>& connect,
    OnRequestDone done);

// Both check that the server answers (the HTTP transport connects; the gRPC one waits for the
// channel) so that "server down" is reported before anything else.
absl::StatusOr<std::unique_ptr<Transport>> MakeHttpTransport(const std::string& host, int port);
absl::StatusOr<std::unique_ptr<Transport>> MakeGrpcTransport(const std::string& host, int port);

// Exposed for tests. The body of a binary-extension inference request: the JSON header, then
// each input's bytes; *header_length is the JSON's length (the Inference-Header-Content-Length).
std::string EncodeHttpInferBody(const std::vector<InputTensor>& inputs,
                                const std::vector<std::string>& outputs, size_t* header_length);
// Multiplexes the connections of a load run on spec.threads event loops, each sending
// `request` (a whole HTTP/1.1 message) in closed loop.
absl::StatusOr<std::unique_ptr<LoadRun>> StartHttpLoad(const std::string& host, int port,
                                                       std::string request, const LoadSpec& spec,
                                                       OnRequestDone done);
// GET /v2/models/M and GET /v2/models/M/stats response bodies.
absl::StatusOr<ModelMetadata> ParseMetadataJson(absl::string_view json);
absl::StatusOr<ServerStats> ParseStatsJson(absl::string_view json);
// The error for a non-200 answer to `what` (UNAVAILABLE for 503, NOT_FOUND for 404, ...).
absl::Status HttpStatusError(int code, absl::string_view body, absl::string_view what);
// The "error" field of a KServe error body, or the body itself (shortened) when it has none.
std::string ErrorFromBody(absl::string_view body);

}  // namespace flywheel::cli
