#include "monitor/label_log.h"

#include <zstd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "monitor/log_file_writer.h"
#include "monitor/log_record.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"

namespace flywheel::monitor {
namespace {

namespace rj = rapidjson;

// A string the training set compares byte for byte with the prediction log's id.
void AppendIdJson(absl::string_view id, std::string* out) {
  if (IsValidUtf8(id)) {
    AppendJsonString(id, out);
    return;
  }
  absl::StrAppend(out, "{\"b64\":\"", absl::Base64Escape(id), "\"}");
}

// The shortest text that reads back as the same double.
void AppendDouble(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("\"NaN\"");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    return;
  }
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("label log line: ", what));
}

}  // namespace

void AppendLabelJson(const LabelRecord& record, std::string* out) {
  out->append("{\"id\":");
  AppendIdJson(record.request_id, out);
  absl::StrAppend(out, ",\"row\":", record.row, ",\"label\":");
  AppendDouble(record.label, out);
  absl::StrAppend(out, ",\"time\":\"", FormatLogTime(record.time), "\"");
  if (!record.model.empty()) {
    out->append(",\"model\":");
    AppendIdJson(record.model, out);
  }
  if (!record.version.empty()) {
    int64_t number;
    out->append(",\"version\":");
    if (absl::SimpleAtoi(record.version, &number) && absl::StrCat(number) == record.version) {
      absl::StrAppend(out, number);
    } else {
      AppendIdJson(record.version, out);
    }
  }
  out->append("}\n");
}

absl::StatusOr<LabelRecord> ParseLabelJson(absl::string_view line) {
  rj::Document d;
  d.Parse<rj::kParseFullPrecisionFlag>(line.data(), line.size());
  if (d.HasParseError()) {
    return Bad(absl::StrCat("not JSON (", rj::GetParseError_En(d.GetParseError()), " at byte ",
                            d.GetErrorOffset(), ")"));
  }
  if (!d.IsObject()) return Bad("not a JSON object");
  // A string, or {"b64": ...} for bytes that are not UTF-8.
  auto text = [](const rj::Value& v, std::string* out) {
    if (v.IsString()) {
      out->assign(v.GetString(), v.GetStringLength());
      return true;
    }
    if (!v.IsObject()) return false;
    auto b64 = v.FindMember("b64");
    return b64 != v.MemberEnd() && b64->value.IsString() &&
           absl::Base64Unescape(
               absl::string_view(b64->value.GetString(), b64->value.GetStringLength()), out);
  };
  LabelRecord r;
  auto id = d.FindMember("id");
  if (id == d.MemberEnd() || !text(id->value, &r.request_id)) return Bad("no string \"id\"");
  auto row = d.FindMember("row");
  if (row == d.MemberEnd() || !row->value.IsInt64() || row->value.GetInt64() < 0) {
    return Bad("no non-negative integer \"row\"");
  }
  r.row = row->value.GetInt64();
  auto label = d.FindMember("label");
  if (label == d.MemberEnd()) return Bad("no \"label\"");
  if (label->value.IsNumber()) {
    r.label = label->value.GetDouble();
  } else if (label->value.IsString()) {
    const absl::string_view s(label->value.GetString(), label->value.GetStringLength());
    if (s == "NaN") {
      r.label = std::nan("");
    } else if (s == "Infinity" || s == "-Infinity") {
      r.label = s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
    } else {
      return Bad(absl::StrCat("\"label\" is the string '", s, "', not a number"));
    }
  } else {
    return Bad("\"label\" is not a number");
  }
  auto time = d.FindMember("time");
  if (time == d.MemberEnd() || !time->value.IsString()) return Bad("no string \"time\"");
  absl::StatusOr<absl::Time> t =
      ParseLogTime(absl::string_view(time->value.GetString(), time->value.GetStringLength()));
  if (!t.ok()) return Bad(t.status().message());
  r.time = *t;
  auto model = d.FindMember("model");
  if (model != d.MemberEnd() && !text(model->value, &r.model)) return Bad("\"model\" is not text");
  auto version = d.FindMember("version");
  if (version != d.MemberEnd()) {
    if (version->value.IsInt64()) {
      r.version = absl::StrCat(version->value.GetInt64());
    } else if (!text(version->value, &r.version)) {
      return Bad("\"version\" is neither a number nor text");
    }
  }
  return r;
}

absl::StatusOr<std::unique_ptr<LabelLog>> LabelLog::Create(LabelLogOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("label log: no folder given");
  if (options.max_file_bytes <= 0 || options.queue_capacity <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("label log: max_file_bytes (",
                                                   options.max_file_bytes, ") and queue_capacity (",
                                                   options.queue_capacity, ") must be positive"));
  }
  if (options.max_file_age <= absl::ZeroDuration() ||
      options.flush_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("label log: max_file_age (", absl::FormatDuration(options.max_file_age),
                     ") and flush_interval (", absl::FormatDuration(options.flush_interval),
                     ") must be positive"));
  }
  if (options.zstd_level < ZSTD_minCLevel() || options.zstd_level > ZSTD_maxCLevel()) {
    return absl::InvalidArgumentError(absl::StrCat("label log: zstd level ", options.zstd_level,
                                                   " is outside [", ZSTD_minCLevel(), ", ",
                                                   ZSTD_maxCLevel(), "]"));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec || !std::filesystem::is_directory(options.dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("label log: cannot create folder '", options.dir,
                     "': ", ec ? ec.message() : "a file of that name is in the way"));
  }
  return std::unique_ptr<LabelLog>(new LabelLog(std::move(options)));
}

LabelLog::LabelLog(LabelLogOptions options) : options_(std::move(options)) {
  writer_options_.dir = options_.dir;
  writer_options_.max_file_bytes = options_.max_file_bytes;
  writer_options_.max_file_age = options_.max_file_age;
  writer_options_.queue_capacity = options_.queue_capacity;
  writer_options_.flush_interval = options_.flush_interval;
  writer_options_.zstd_level = options_.zstd_level;
  writer_options_.direct_io = options_.direct_io;
  writer_options_.clock = options_.clock;
  writer_options_.before_write = options_.before_write;
  writer_ = std::make_unique<LogFileWriter>(writer_options_, &pending_, "label log");
  thread_ = std::thread([this] { WriterLoop(); });
}

LabelLog::~LabelLog() { Close(); }

absl::Time LabelLog::Now() const { return options_.clock ? options_.clock() : absl::Now(); }

bool LabelLog::Submit(LabelRecord record) {
  if (record.time == absl::UnixEpoch()) record.time = Now();
  std::lock_guard<std::mutex> lock(signals_.mu());
  // pending_ counts the writer's unwritten labels too: the bound covers both.
  if (signals_.closing_locked() || pending_.load() >= options_.queue_capacity) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  pending_.fetch_add(1);
  queue_.push_back(std::move(record));
  // Early when the queue fills up; otherwise on the flush interval.
  if (static_cast<int64_t>(queue_.size()) == std::max<int64_t>(1, options_.queue_capacity / 4)) {
    signals_.WakeLocked();
  }
  return true;
}

void LabelLog::WriterLoop() {
  using Clock = std::chrono::steady_clock;
  const auto interval = absl::ToChronoNanoseconds(
      std::min({options_.flush_interval, options_.max_file_age, absl::Hours(1)}));
  std::vector<LabelRecord> batch;
  std::string line;
  for (;;) {
    WriterSignals::Round round;
    {
      std::unique_lock<std::mutex> lock(signals_.mu());
      round = signals_.WaitLocked(lock, Clock::now() + interval);
      batch.swap(queue_);
    }
    for (const LabelRecord& r : batch) {
      line.clear();
      AppendLabelJson(r, &line);
      writer_->AddLine(line);
    }
    batch.clear();
    // Labels are few: one frame per interval keeps what a kill loses to one interval's worth.
    writer_->WriteAll();
    writer_->FinishOldFiles(Now());
    std::lock_guard<std::mutex> lock(signals_.mu());
    signals_.FlushedLocked(round.flush_gen);
    if (round.closing && queue_.empty()) break;
  }
  writer_->CloseAll();
  signals_.WriterExited();
}

void LabelLog::Flush() { signals_.Flush(); }

void LabelLog::Close() {
  std::call_once(close_once_, [this] {
    signals_.Close();
    thread_.join();
  });
}

LabelLogStats LabelLog::Stats() const {
  return writer_->Stats(dropped_.load(std::memory_order_relaxed));
}

}  // namespace flywheel::monitor
