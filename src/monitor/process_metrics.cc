// The standard process_* metrics, read from /proc at scrape time.
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "monitor/metrics.h"

namespace flywheel::monitor {
namespace {

std::string ReadFile(const char* path) {
  std::ifstream in(path);
  if (!in) return "";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Fields of /proc/self/stat after the command name. The name sits in parentheses and may hold
// spaces or ')' itself, so the split starts after the last ')'. fields[0] is field 3 (state).
std::vector<std::string> StatFieldsAfterComm(const std::string& stat) {
  std::vector<std::string> fields;
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return fields;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  while (rest >> field) fields.push_back(field);
  return fields;
}

// Boot time in seconds since the epoch ("btime" in /proc/stat); 0 when unreadable.
double BootTimeSeconds() {
  std::istringstream in(ReadFile("/proc/stat"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("btime ", 0) == 0) return std::strtod(line.c_str() + 6, nullptr);
  }
  return 0;
}

int CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int count = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count - 1;  // the descriptor opendir itself holds
}

class ProcessCollector {
 public:
  ProcessCollector()
      : ticks_per_second_(static_cast<double>(sysconf(_SC_CLK_TCK))),
        page_size_(static_cast<double>(sysconf(_SC_PAGESIZE))),
        boot_time_(BootTimeSeconds()) {}

  void operator()(SampleWriter& out) const {
    std::vector<std::string> stat = StatFieldsAfterComm(ReadFile("/proc/self/stat"));
    // Field numbers from proc(5): utime 14, stime 15, starttime 22.
    constexpr size_t kUtime = 14 - 3, kStime = 15 - 3, kStartTime = 22 - 3;
    if (stat.size() > kStartTime && ticks_per_second_ > 0) {
      double cpu_ticks =
          std::strtod(stat[kUtime].c_str(), nullptr) + std::strtod(stat[kStime].c_str(), nullptr);
      out.Add("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
              "counter", {}, cpu_ticks / ticks_per_second_);
      if (boot_time_ > 0) {
        double start = std::strtod(stat[kStartTime].c_str(), nullptr) / ticks_per_second_;
        out.Add("process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.", "gauge", {},
                boot_time_ + start);
      }
    }
    // statm: size resident shared text lib data dt, in pages.
    std::istringstream statm(ReadFile("/proc/self/statm"));
    double size_pages = 0, resident_pages = 0;
    if (statm >> size_pages >> resident_pages) {
      out.Add("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", {},
              size_pages * page_size_);
      out.Add("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", {},
              resident_pages * page_size_);
    }
    int fds = CountOpenFds();
    if (fds >= 0) {
      out.Add("process_open_fds", "Number of open file descriptors.", "gauge", {}, fds);
    }
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
      out.Add("process_max_fds", "Maximum number of open file descriptors.", "gauge", {},
              static_cast<double>(limit.rlim_cur));
    }
  }

 private:
  double ticks_per_second_;
  double page_size_;
  double boot_time_;
};

}  // namespace

void AddProcessCollector(Registry& registry) { registry.AddCollector(ProcessCollector()); }

}  // namespace flywheel::monitor
