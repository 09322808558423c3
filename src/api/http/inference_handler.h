// Routes of the KServe v2 HTTP API (health, metadata, infer, model configuration, statistics,
// model repository) onto serving::Server. Internal to api/http.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "api/http/http_message.h"
#include "boost/asio/thread_pool.hpp"
#include "serving/server.h"

namespace flywheel::api::http {

class InferenceHandler : public Handler {
 public:
  // `blocking` runs the calls that wait (model load and unload) off the I/O threads; it and
  // `server` must outlive every call to Handle. `max_request_bytes` also bounds a compressed
  // body once inflated.
  // `routes`: handlers of other endpoint families, each answering `/v1/<prefix>/...`.
  InferenceHandler(serving::Server* server, std::string admin_token, size_t max_request_bytes,
                   boost::asio::thread_pool* blocking,
                   std::vector<std::pair<std::string, std::shared_ptr<Handler>>> routes = {});

  void Handle(Request request, Respond respond) override;

 private:
  // Which endpoint a path names, with its model and version.
  struct Route;
  Route Match(const std::vector<std::string>& segments) const;

  void Infer(const Request& request, const Route& route, Respond respond);
  Reply ModelReady(const Route& route);
  Reply ModelConfig(const Route& route);
  Reply Statistics(const Route& route);
  void Repository(const Request& request, const Route& route, Respond respond);
  // OK when no admin token is set or the request carries it.
  absl::Status CheckAdmin(const Request& request) const;

  serving::Server* server_;
  std::string admin_token_;
  size_t max_request_bytes_;
  boost::asio::thread_pool* blocking_;
  std::vector<std::pair<std::string, std::shared_ptr<Handler>>> routes_;
};

}  // namespace flywheel::api::http
