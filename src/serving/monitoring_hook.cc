#include "serving/monitoring_hook.h"

#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "monitor/monitoring.h"
#include "serving/request_observer.h"

namespace flywheel::serving {
namespace {

// serving::Parameters is the log's parameter map type, so request parameters are logged as they
// are; this breaks the build if the two ever part.
static_assert(std::is_same_v<Parameters, std::map<std::string, monitor::LogParameterValue>>);

class MonitorObserver : public RequestObserver {
 public:
  explicit MonitorObserver(std::shared_ptr<monitor::VersionMonitor> monitor)
      : monitor_(std::move(monitor)) {}

  void OnSuccess(const InferRequest& request, const InferResponse& response) override {
    monitor_->ObserveNamed(response.id, request.inputs, response.outputs, request.body,
                           request.parameters.empty() ? nullptr : &request.parameters);
  }

 private:
  const std::shared_ptr<monitor::VersionMonitor> monitor_;
};

}  // namespace

absl::Status AttachMonitoring(monitor::Monitoring* monitoring, ModelVersion& version,
                              const std::string& version_dir) {
  if (monitoring == nullptr || version.scheduler == nullptr) return absl::OkStatus();
  monitor::VersionInfo info;
  info.model = version.name;
  info.version = version.version_string;
  info.version_dir = version_dir;
  for (const auto& [key, value] : version.config.parameters()) {
    info.parameters[key] = value.string_value();
  }
  for (const IOSpec& output : version.outputs) info.outputs.push_back(output.name);
  absl::StatusOr<std::shared_ptr<monitor::VersionMonitor>> monitor =
      monitoring->OnVersionLoaded(info);
  if (!monitor.ok()) return monitor.status();
  version.scheduler->SetObserver(std::make_shared<MonitorObserver>(std::move(*monitor)));
  return absl::OkStatus();
}

}  // namespace flywheel::serving
