// The retraining loops' HTTP API on the inference port, under /v1/loops/:
//   GET  /v1/loops                 every loop's state (running, step, last outcome, new labels)
//   GET  /v1/loops/{loop}          one loop's state and its recorded history
//   POST /v1/loops/{loop}/run      start a run now, whatever the trigger ({"reason": "..."})
// Reads are open; starting a run needs the admin token when the server has one. Transport only.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace flywheel::lifecycle {
class LoopRunner;
}  // namespace flywheel::lifecycle

namespace flywheel::api {

namespace http {
class Handler;
}  // namespace http

struct LoopHandlerOptions {
  std::string admin_token;
  size_t max_request_bytes = size_t{1} << 20;
};

// The handler for HttpRoutes {"loops", ...}; `runner` must outlive it.
std::shared_ptr<http::Handler> MakeLoopHandler(lifecycle::LoopRunner* runner,
                                               LoopHandlerOptions options = {});

}  // namespace flywheel::api
