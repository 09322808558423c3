// The HTTP transport's message types: the request body (one aligned buffer that binary tensors can
// view without a copy), the response payload (JSON text plus zero-copy binary sections), and the
// Handler interface that routes implement. Internal to api/http.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "boost/asio/buffer.hpp"
#include "boost/beast/core/buffers_range.hpp"
#include "boost/beast/core/error.hpp"
#include "boost/beast/http/message.hpp"
#include "boost/beast/http/status.hpp"
#include "boost/optional.hpp"

namespace flywheel::api::http {

namespace bhttp = boost::beast::http;

// A request body in one buffer. The buffer is placed so that byte `aligned_at` (the start of the
// binary tensor section, when the client announced one) falls on a 64-byte boundary.
class BodyBytes {
 public:
  BodyBytes(size_t capacity, size_t aligned_at);
  ~BodyBytes();
  BodyBytes(const BodyBytes&) = delete;
  BodyBytes& operator=(const BodyBytes&) = delete;

  const char* data() const { return data_; }
  size_t size() const { return size_; }
  absl::string_view view() const { return {data_, size_}; }
  void Append(const char* p, size_t n);

 private:
  void Reserve(size_t capacity);

  char* storage_ = nullptr;
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t offset_ = 0;  // data_ - storage_
};

// Beast body type for requests: the parser has already refused bodies above the size limit when
// init() runs, so the buffer is allocated once at its final size (chunked bodies grow).
struct RequestBody {
  using value_type = std::shared_ptr<BodyBytes>;

  static std::uint64_t size(const value_type& body) { return body ? body->size() : 0; }

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(bhttp::header<isRequest, Fields>& header, value_type& body) : body_(body) {
      auto it = header.find("Inference-Header-Content-Length");
      // Only a placement hint here; the codec validates the header properly.
      if (it != header.end()) {
        size_t n = 0;
        if (absl::SimpleAtoi(absl::string_view(it->value().data(), it->value().size()), &n)) {
          aligned_at_ = n;
        }
      }
    }
    void init(const boost::optional<std::uint64_t>& length, boost::beast::error_code& ec) {
      // Chunked bodies start at 64 KiB and grow geometrically up to the parser's body limit.
      body_ = std::make_shared<BodyBytes>(length ? static_cast<size_t>(*length) : 64 << 10,
                                          aligned_at_);
      ec = {};
    }
    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      size_t n = 0;
      for (auto b : boost::beast::buffers_range_ref(buffers)) {
        body_->Append(static_cast<const char*>(b.data()), b.size());
        n += b.size();
      }
      ec = {};
      return n;
    }
    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
    size_t aligned_at_ = 0;
  };
};

// A response body: text, then buffers that point into memory `keep_alive` owns (output tensors),
// written with one gather write and no copy.
struct Payload {
  std::string text;
  std::vector<boost::asio::const_buffer> tail;
  std::shared_ptr<const void> keep_alive;
};

struct PayloadBody {
  using value_type = Payload;

  static std::uint64_t size(const value_type& body) {
    std::uint64_t n = body.text.size();
    for (const auto& b : body.tail) n += b.size();
    return n;
  }

  class writer {
   public:
    using const_buffers_type = std::vector<boost::asio::const_buffer>;

    template <bool isRequest, class Fields>
    writer(const bhttp::header<isRequest, Fields>&, const value_type& body) : body_(body) {}
    void init(boost::beast::error_code& ec) { ec = {}; }
    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
      ec = {};
      if (done_) return boost::none;
      done_ = true;
      const_buffers_type buffers;
      buffers.reserve(1 + body_.tail.size());
      buffers.emplace_back(body_.text.data(), body_.text.size());
      buffers.insert(buffers.end(), body_.tail.begin(), body_.tail.end());
      return std::make_pair(std::move(buffers), false);
    }

   private:
    const value_type& body_;
    bool done_ = false;
  };
};

using Request = bhttp::request<RequestBody>;

// What a handler answers. An empty content_type means no Content-Type header (empty bodies).
struct Reply {
  bhttp::status status = bhttp::status::ok;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  Payload body;
};

// Called exactly once per request, from any thread; the transport writes the reply on the
// connection's own executor.
using Respond = std::function<void(Reply)>;

class Handler {
 public:
  virtual ~Handler() = default;
  // Runs on an I/O thread: must not block. Work that blocks goes elsewhere and calls `respond`.
  virtual void Handle(Request request, Respond respond) = 0;
};

}  // namespace flywheel::api::http
