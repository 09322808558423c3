// KServe v2 inference request/response codec for HTTP: the JSON body plus Triton's binary tensor
// data extension (Inference-Header-Content-Length, binary_data_size, binary_data). Pure functions
// with no I/O, so that they can be unit-tested and fuzzed on their own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/tensor.h"
#include "serving/infer.h"

namespace flywheel::api::http {

// The header giving the length of the JSON part of a body that carries binary tensors.
inline constexpr absl::string_view kInferHeaderLengthHeader = "Inference-Header-Content-Length";

// What the decoder learned about how the client wants its outputs.
struct InferEncodeOptions {
  // binary_data_output was set and the request named no outputs: every output goes binary.
  bool all_outputs_binary = false;
};

// Parses the value of Inference-Header-Content-Length against a body of `body_size` bytes.
absl::StatusOr<size_t> ParseInferHeaderLength(absl::string_view value, size_t body_size);

// Decodes an inference request body into `request` (model name and version are the caller's, from
// the URL). `json_size` is the Inference-Header-Content-Length (nullopt: the whole body is JSON).
// Binary inputs become views on `body`, kept alive through `request->body = owner`; a binary input
// that is not aligned for its element type is copied. Every error is INVALID_ARGUMENT (or
// UNIMPLEMENTED for an unsupported feature) and names the offending input or field.
absl::Status DecodeInferRequest(const char* body, size_t body_size, std::optional<size_t> json_size,
                                std::shared_ptr<const void> owner, serving::InferRequest* request,
                                InferEncodeOptions* options);

// An encoded response: the JSON part, then binary sections in output order. Binary sections point
// into tensors or strings this object owns, so the bytes can be written without a copy.
struct EncodedInferResponse {
  std::string json;
  struct Chunk {
    const char* data;
    size_t size;
  };
  std::vector<Chunk> binary;
  size_t binary_size = 0;
  // What the chunks point into.
  std::vector<Tensor> tensors;
  // A list: its elements never move, and an empty one allocates nothing (unlike std::deque).
  std::list<std::string> strings;

  bool has_binary() const { return !binary.empty(); }
  // JSON and binary sections in one string (tests and small responses).
  std::string Flatten() const;
};

// Encodes a response. An output goes binary when it asked for it, when `options` says all do, when
// it is FP16/BF16 (JSON has no such numbers), or when it is BYTES that is not valid UTF-8.
absl::StatusOr<EncodedInferResponse> EncodeInferResponse(const serving::InferResponse& response,
                                                         const InferEncodeOptions& options);

}  // namespace flywheel::api::http
