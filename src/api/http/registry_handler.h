// The model registry's admin HTTP API on the inference port, under /v1/registry/ (the same JSON as
// `flywheel models ... --json`; see docs/lifecycle.md):
//   GET    /v1/registry/models                          every model: versions, aliases, history
//   GET    /v1/registry/models/{m}                      one model
//   GET    /v1/registry/models/{m}/versions/{v}         one version, by number or alias
//   POST   /v1/registry/models/{m}/versions/{v}         register (or "update"/"replace") metadata
//   POST   /v1/registry/models/{m}/aliases/{alias}      {"version": "3"}: point the alias
//   DELETE /v1/registry/models/{m}/aliases/{alias}
//   POST   /v1/registry/models/{m}/promote              {"version": "3", "alias": "production"}
//   POST   /v1/registry/models/{m}/rollback             {"alias": "production"}
// Reads are open; changes need the admin token when the server has one. Transport only.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace flywheel::lifecycle {
class Registry;
}  // namespace flywheel::lifecycle

namespace flywheel::api {

namespace http {
class Handler;
}  // namespace http

struct RegistryHandlerOptions {
  // When set, POST and DELETE need `Authorization: Bearer <admin_token>` (401 without, 403 with
  // another token), as the model repository endpoints do.
  std::string admin_token;
  // Larger bodies (after gzip/deflate inflation) are refused with 413.
  size_t max_request_bytes = size_t{1} << 20;
  // Threads that read and write registry files (file locks, fsync), off the I/O threads.
  int worker_threads = 1;
};

// The handler for HttpRoutes {"registry", ...}, over the registries of the served repositories
// (each must outlive it). A model is looked up in the registry whose repository has its folder.
// Destroying the handler waits for the calls it started.
std::shared_ptr<http::Handler> MakeRegistryHandler(std::vector<lifecycle::Registry*> registries,
                                                   RegistryHandlerOptions options = {});

}  // namespace flywheel::api
