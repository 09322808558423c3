// RequestObserver: what a model version's scheduler calls after each successful request, while
// the request's inputs are still alive, so that monitoring (drift, labels, the prediction log)
// sees inputs and outputs together without copying them.
#pragma once

#include "serving/infer.h"

namespace flywheel::serving {

class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  // Called on the instance thread that executed the request, before its callback. `response.id`
  // is the request's id (the request's own field has been moved there). Must not block: the
  // request's answer waits for it.
  virtual void OnSuccess(const InferRequest& request, const InferResponse& response) = 0;
};

}  // namespace flywheel::serving
