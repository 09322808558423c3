// Helpers for the prediction log tests: a temporary folder, records, a settable clock, and
// reading a log folder back.
#pragma once

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/tensor.h"
#include "gtest/gtest.h"
#include "monitor/log_reader.h"
#include "monitor/log_record.h"

namespace flywheel::monitor::testing_util {

// A fresh folder under the test temp dir, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "/flywheel-log-XXXXXX";
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A wall clock that moves only when told, for file names and ages.
class FakeClock {
 public:
  explicit FakeClock(absl::Time start) : ns_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const { return absl::FromUnixNanos(ns_.load()); }
  void Advance(absl::Duration d) { ns_ += absl::ToInt64Nanoseconds(d); }

 private:
  std::atomic<int64_t> ns_;
};

inline Tensor Fp32(std::vector<float> values) {
  Tensor t = Tensor::Allocate(DataType::kFp32, Shape{static_cast<int64_t>(values.size())});
  for (size_t i = 0; i < values.size(); ++i) t.data<float>()[i] = values[i];
  return t;
}

// A record of `model` with one FP32 input "x" = {value, value + 1} and one output "y" = {value}.
inline PredictionRecord MakeRecord(std::string model, int64_t version, float value,
                                   absl::Time time = absl::UnixEpoch(), std::string id = "") {
  PredictionRecord r;
  r.request_id = id.empty() ? "req-" + std::to_string(static_cast<int64_t>(value)) : id;
  r.time = time;
  r.model = std::move(model);
  r.version = version;
  r.inputs.emplace_back("x", Fp32({value, value + 1}));
  r.outputs.emplace_back("y", Fp32({value}));
  return r;
}

struct ReadResult {
  std::vector<LogEntry> entries;
  LogReadStats stats;
};

inline ReadResult ReadAll(LogReaderOptions options) {
  ReadResult result;
  auto reader = LogReader::Open(std::move(options));
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return result;
  LogEntry e;
  for (;;) {
    auto more = (*reader)->Next(&e);
    EXPECT_TRUE(more.ok()) << more.status();
    if (!more.ok() || !*more) break;
    result.entries.push_back(e);
  }
  result.stats = (*reader)->stats();
  return result;
}

inline ReadResult ReadAll(const std::string& dir) {
  LogReaderOptions options;
  options.dir = dir;
  return ReadAll(options);
}

// Every log file under `dir`, sorted.
inline std::vector<std::string> LogFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace flywheel::monitor::testing_util
