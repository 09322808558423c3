// libFuzzer target for the HTTP inference request decoder (api/http/infer_codec.h). Input: 4 bytes
// choosing the Inference-Header-Content-Length (0xFFFFFFFF: no header; otherwise modulo the body
// size + 1), then the body. Any input must decode or fail cleanly; a decoded request's tensors must
// own or view exactly what their shapes claim, and must encode back as a response.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include "api/http/infer_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t split;
  std::memcpy(&split, data, 4);
  auto body = std::make_shared<std::string>(reinterpret_cast<const char*>(data) + 4, size - 4);
  std::optional<size_t> header;
  if (split != 0xFFFFFFFFu) header = split % (body->size() + 1);
  flywheel::serving::InferRequest request;
  flywheel::api::http::InferEncodeOptions options;
  absl::Status status = flywheel::api::http::DecodeInferRequest(body->data(), body->size(), header,
                                                                body, &request, &options);
  if (!status.ok()) return 0;
  flywheel::serving::InferResponse response;
  bool binary = false;
  for (flywheel::serving::InferInput& input : request.inputs) {
    const flywheel::Tensor& t = input.data;
    if (t.dtype() != flywheel::DataType::kBytes) {
      // Touch every byte so that ASan checks views and copies really cover the shape.
      const uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
      volatile uint8_t sink = 0;
      for (size_t i = 0; i < t.ByteSize(); ++i) sink = sink ^ p[i];
    } else if (t.strings().size() != static_cast<size_t>(t.NumElements())) {
      __builtin_trap();
    }
    response.outputs.push_back({input.name, input.data, binary});
    binary = !binary;
  }
  auto encoded = flywheel::api::http::EncodeInferResponse(response, options);
  if (!encoded.ok()) __builtin_trap();
  return 0;
}
