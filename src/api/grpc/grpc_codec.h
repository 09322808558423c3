// Conversion between the KServe v2 gRPC messages (grpc_service.proto) and serving's
// transport-neutral InferRequest / InferResponse, plus the status mapping. No I/O here, so the
// rules (typed versus raw contents, element counts, BYTES framing) are unit tested on their own.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpc_service.pb.h"
#include "grpcpp/support/status.h"
#include "serving/infer.h"

namespace flywheel::api {

// Decodes a ModelInferRequest. Numeric inputs (typed or raw) become views into `message`, which
// the returned request keeps alive through InferRequest::body; BYTES inputs are copied into
// strings. Every malformed input is INVALID_ARGUMENT naming the model and the input.
absl::StatusOr<std::unique_ptr<serving::InferRequest>> DecodeInferRequest(
    std::shared_ptr<const inference::ModelInferRequest> message);

// Fills `out` from `response`; every output goes to raw_output_contents (as Triton's gRPC
// front end does), BYTES elements framed with a 4-byte little-endian length.
absl::Status EncodeInferResponse(const serving::InferResponse& response,
                                 inference::ModelInferResponse* out);

// absl and gRPC share the canonical status codes, so the code carries over unchanged.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace flywheel::api
