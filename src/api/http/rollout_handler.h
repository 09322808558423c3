// The rollout controller's admin HTTP API on the inference port, under /v1/rollouts (the JSON of
// lifecycle::RolloutStatusToJson; see docs/lifecycle.md, "Rollouts"):
//   GET    /v1/rollouts                     every model's rollout
//   GET    /v1/rollouts/{model}             one, with its window's figures
//   POST   /v1/rollouts/{model}             start one: a spec (policy, versions, thresholds...)
//   POST   /v1/rollouts/{model}/promote     {"by", "note"}: the candidate takes all traffic
//   POST   /v1/rollouts/{model}/rollback    {"by", "note"}: the stable version takes it back
//   DELETE /v1/rollouts/{model}             forget it: default routing again
// Reads are open; changes need the admin token when the server has one. Transport only.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace flywheel::lifecycle {
class RolloutController;
}  // namespace flywheel::lifecycle

namespace flywheel::api {

namespace http {
class Handler;
}  // namespace http

struct RolloutHandlerOptions {
  // When set, POST and DELETE need `Authorization: Bearer <admin_token>` (401 without, 403 with
  // another token), as the registry and model repository endpoints do.
  std::string admin_token;
  // Larger bodies (after gzip/deflate inflation) are refused with 413.
  size_t max_request_bytes = size_t{1} << 20;
  // Threads that run the controller's calls (file locks, fsync), off the I/O threads.
  int worker_threads = 1;
};

// The handler for HttpRoutes {"rollouts", ...}. `controller` must outlive it; destroying the
// handler waits for the calls it started.
std::shared_ptr<http::Handler> MakeRolloutHandler(lifecycle::RolloutController* controller,
                                                  RolloutHandlerOptions options = {});

}  // namespace flywheel::api
