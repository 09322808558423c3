// Connects a loaded model version to the server's monitoring (monitor/monitoring.h): its
// VersionMonitor, set up from the version folder and config.pbtxt parameters, observes every
// successful request from the version's scheduler.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "serving/model_version.h"

namespace flywheel::monitor {
class Monitoring;
}  // namespace flywheel::monitor

namespace flywheel::serving {

// Attaches `monitoring` (nothing when null) to `version`, whose folder is `version_dir`, before
// it serves. Versions without a scheduler (ensembles) are not observed. Fails when a monitoring
// parameter of the configuration has a wrong value; the error names it.
absl::Status AttachMonitoring(monitor::Monitoring* monitoring, ModelVersion& version,
                              const std::string& version_dir);

}  // namespace flywheel::serving
