// The feature store's HTTP endpoints on the inference port, under /v1/features/:
//   POST /v1/features/push    {"source": "clicks", "events": [{...}, ...]}  (all or nothing)
//   POST /v1/features/online  {"features": ["view:feature", ...], "entities": [...]}
//   GET  /v1/features/views   the definitions
// Transport only: decoding, the FeatureService call, encoding (see docs/features.md).
#pragma once

#include <cstddef>
#include <memory>

namespace flywheel::features {
class FeatureService;
}  // namespace flywheel::features

namespace flywheel::api {

namespace http {
class Handler;
}  // namespace http

struct FeaturesHandlerOptions {
  // Larger bodies (after gzip/deflate inflation) are refused with 413.
  size_t max_request_bytes = size_t{64} << 20;
  // Threads that run pushes (they wait for the event log's fsync) and lookups that may read a
  // remote store, off the I/O threads.
  int worker_threads = 2;
};

// The handler for HttpRoutes {"features", ...}. `service` must outlive it; destroying the handler
// waits for the calls it started.
std::shared_ptr<http::Handler> MakeFeaturesHandler(features::FeatureService* service,
                                                   const FeaturesHandlerOptions& options = {});

}  // namespace flywheel::api
