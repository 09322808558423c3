// Test-only (header-only): calls an api/http Handler directly, without a socket, and waits for its
// reply, for the tests of the /v1 handlers; HandlerTest is a fixture with GET/POST/DELETE calls.
#pragma once

#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "api/http/http_message.h"
#include "rapidjson/document.h"

namespace flywheel::api::http::testing_util {

// A reply's status, body, the headers tests look at, and the body parsed as JSON (json holds a
// parse error when the body is not JSON).
struct HandlerResult {
  int status = 0;
  std::string body;
  std::string allow;             // Allow
  std::string www_authenticate;  // WWW-Authenticate
  rapidjson::Document json;
};

// `request` handed to `handler`; returns once it responded (from whichever thread).
inline HandlerResult CallHandler(
    Handler& handler, bhttp::verb method, const std::string& target, const std::string& body = "",
    const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  Request request{method, target, 11};
  for (const auto& [name, value] : headers) {
    if (!value.empty()) request.set(name, value);
  }
  if (!body.empty()) {
    request.body() = std::make_shared<BodyBytes>(body.size(), 0);
    request.body()->Append(body.data(), body.size());
  }
  auto promise = std::make_shared<std::promise<Reply>>();
  std::future<Reply> future = promise->get_future();
  handler.Handle(std::move(request),
                 [promise](Reply reply) { promise->set_value(std::move(reply)); });
  Reply reply = future.get();
  HandlerResult r;
  r.status = static_cast<int>(reply.status);
  r.body = reply.body.text;
  for (const auto& [name, value] : reply.headers) {
    if (name == "Allow") r.allow = value;
    if (name == "WWW-Authenticate") r.www_authenticate = value;
  }
  r.json.Parse(r.body.c_str());
  return r;
}

// A fixture whose tests call `handler_` (set by the test fixture) with an optional
// `Authorization` header.
class HandlerTest : public ::testing::Test {
 protected:
  HandlerResult Call(bhttp::verb method, const std::string& target, const std::string& body = "",
                     const std::string& authorization = "") {
    return CallHandler(*handler_, method, target, body, {{"Authorization", authorization}});
  }
  HandlerResult Get(const std::string& target) { return Call(bhttp::verb::get, target); }
  HandlerResult Post(const std::string& target, const std::string& body = "",
                     const std::string& authorization = "") {
    return Call(bhttp::verb::post, target, body, authorization);
  }
  HandlerResult Delete(const std::string& target, const std::string& body = "",
                       const std::string& authorization = "") {
    return Call(bhttp::verb::delete_, target, body, authorization);
  }

  std::shared_ptr<Handler> handler_;
};

}  // namespace flywheel::api::http::testing_util
