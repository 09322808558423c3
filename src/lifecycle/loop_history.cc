// The retraining loop's history file (loop_history.h): JSON lines appended with O_APPEND and one
// write(2) each, so concurrent appenders never interleave within a line, then fsynced.
#include "lifecycle/loop_history.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "core/status.h"
#include "lifecycle/registry_json_write.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace flywheel::lifecycle {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

std::string ParentOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Makes the history's folder (only the last level: a missing model folder is an error, not
// something to create).
absl::Status MakeFolder(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("loop history: cannot create folder '", dir, "': ", ErrnoText(errno)));
}

absl::Status WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::InternalError(
          absl::StrCat("loop history '", path, "': write failed: ", ErrnoText(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

void SyncFolder(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

using rapidjson::Value;

absl::Status FieldError(absl::string_view field, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("loop event: '", field, "' ", problem));
}

absl::StatusOr<std::string> GetString(const Value& obj, const char* field, bool required) {
  auto it = obj.FindMember(field);
  if (it == obj.MemberEnd()) {
    if (required) return FieldError(field, "is missing");
    return std::string();
  }
  if (!it->value.IsString()) return FieldError(field, "is not a string");
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

absl::StatusOr<int64_t> GetInt(const Value& obj, const char* field, bool required) {
  auto it = obj.FindMember(field);
  if (it == obj.MemberEnd()) {
    if (required) return FieldError(field, "is missing");
    return 0;
  }
  if (!it->value.IsInt64()) return FieldError(field, "is not an integer");
  return it->value.GetInt64();
}

}  // namespace

std::string LoopHistory::PathFor(const std::string& repository, const std::string& model,
                                 const std::string& loop) {
  std::string root = repository;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return absl::StrCat(root, "/", model, "/.flywheel/loop-", loop, ".jsonl");
}

LoopHistory::LoopHistory(std::string path) : path_(std::move(path)) {}

absl::Status LoopHistory::Append(const LoopEvent& event) {
  const std::string line = LoopEventToJson(event) + "\n";
  const std::string dir = ParentOf(path_);
  FW_RETURN_IF_ERROR(MakeFolder(dir));
  bool created = true;
  int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0 && errno == EEXIST) {
    created = false;
    fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  }
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("loop history '", path_, "': cannot open: ", ErrnoText(errno)));
  }
  absl::Status status = WriteAll(fd, line, path_);
  if (status.ok() && ::fsync(fd) != 0) {
    status = absl::InternalError(
        absl::StrCat("loop history '", path_, "': fsync failed: ", ErrnoText(errno)));
  }
  ::close(fd);
  // A new file's directory entry must be durable too, or a crash can lose the whole file.
  if (status.ok() && created) SyncFolder(dir);
  return status;
}

absl::StatusOr<LoopHistory::ReadResult> LoopHistory::Read() const {
  ReadResult result;
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0 && errno == ENOENT) return result;
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    return absl::InternalError(
        absl::StrCat("loop history '", path_, "': cannot read: ", ErrnoText(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("loop history '", path_, "': read failed"));
  }
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    if (line.empty()) continue;
    absl::StatusOr<LoopEvent> event = ParseLoopEvent(std::string(line));
    if (event.ok()) {
      result.events.push_back(*std::move(event));
    } else {
      ++result.bad_lines;
    }
  }
  return result;
}

absl::StatusOr<int64_t> LoopHistory::LastRun() const {
  FW_ASSIGN_OR_RETURN(ReadResult read, Read());
  int64_t last = 0;
  for (const LoopEvent& e : read.events) last = std::max(last, e.run);
  return last;
}

std::string LoopEventToJson(const LoopEvent& event) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("time");
  JsonTime(w, event.time);
  w.Key("loop");
  JsonStr(w, event.loop);
  w.Key("model");
  JsonStr(w, event.model);
  w.Key("run");
  w.Int64(event.run);
  w.Key("step");
  JsonStr(w, event.step);
  w.Key("status");
  JsonStr(w, event.status);
  w.Key("detail");
  JsonStr(w, event.detail);
  w.Key("champion");
  w.Int64(event.champion);
  w.Key("candidate");
  w.Int64(event.candidate);
  w.Key("figures");
  w.StartObject();
  for (const auto& [name, value] : event.figures) {
    // JSON has no NaN or infinity; such a figure is left out rather than making the line invalid.
    if (!std::isfinite(value)) continue;
    JsonStr(w, name);
    w.Double(value);
  }
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

absl::StatusOr<LoopEvent> ParseLoopEvent(const std::string& line) {
  rapidjson::Document doc;
  doc.Parse(line.data(), line.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return absl::InvalidArgumentError("loop event: not a JSON object");
  }
  LoopEvent e;
  auto time = doc.FindMember("time");
  if (time == doc.MemberEnd()) return FieldError("time", "is missing");
  if (!time->value.IsNull()) {
    if (!time->value.IsString()) return FieldError("time", "is not a string");
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, time->value.GetString(), &e.time, &err)) {
      return FieldError("time", absl::StrCat("is not an RFC 3339 time: ", err));
    }
  }
  FW_ASSIGN_OR_RETURN(e.loop, GetString(doc, "loop", true));
  FW_ASSIGN_OR_RETURN(e.model, GetString(doc, "model", true));
  FW_ASSIGN_OR_RETURN(e.run, GetInt(doc, "run", true));
  FW_ASSIGN_OR_RETURN(e.step, GetString(doc, "step", true));
  FW_ASSIGN_OR_RETURN(e.status, GetString(doc, "status", true));
  FW_ASSIGN_OR_RETURN(e.detail, GetString(doc, "detail", false));
  FW_ASSIGN_OR_RETURN(e.champion, GetInt(doc, "champion", false));
  FW_ASSIGN_OR_RETURN(e.candidate, GetInt(doc, "candidate", false));
  if (auto figures = doc.FindMember("figures"); figures != doc.MemberEnd()) {
    if (!figures->value.IsObject()) return FieldError("figures", "is not an object");
    for (auto it = figures->value.MemberBegin(); it != figures->value.MemberEnd(); ++it) {
      const std::string name(it->name.GetString(), it->name.GetStringLength());
      if (!it->value.IsNumber())
        return FieldError(absl::StrCat("figures.", name), "is not a number");
      e.figures[name] = it->value.GetDouble();
    }
  }
  return e;
}

}  // namespace flywheel::lifecycle
