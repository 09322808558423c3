// Model monitoring's HTTP endpoints on the inference port, under /v1/monitor/:
//   GET  /v1/monitor/models/{model}/drift    per loaded version: the drift report (or why it has
//                                            no figures) and the version's monitoring settings
//   GET  /v1/monitor/models/{model}/quality  per loaded version: live quality from joined labels
//   POST /v1/monitor/labels                  {"labels": [{"id": "r1", "label": 1, "row": 0}, ...]}
//                                            -> counts per outcome (all or nothing on bad items)
//   GET  /v1/monitor/labels                  the label joiner's counters
// Transport only: decoding, the monitor::Monitoring call, encoding (see docs/monitoring.md).
#pragma once

#include <cstddef>
#include <memory>

namespace flywheel::monitor {
class Monitoring;
}  // namespace flywheel::monitor

namespace flywheel::api {

namespace http {
class Handler;
}  // namespace http

struct MonitorHandlerOptions {
  // Larger bodies (after gzip/deflate inflation) are refused with 413.
  size_t max_request_bytes = size_t{64} << 20;
  // Threads that compute reports and join labels, off the I/O threads.
  int worker_threads = 1;
};

// The handler for HttpRoutes {"monitor", ...}. `monitoring` must outlive it; destroying the
// handler waits for the calls it started.
std::shared_ptr<http::Handler> MakeMonitorHandler(monitor::Monitoring* monitoring,
                                                  const MonitorHandlerOptions& options = {});

}  // namespace flywheel::api
