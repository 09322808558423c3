#include "features/stream_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/status.h"

namespace flywheel::features {
namespace {

absl::Status BadReply(const RedisOptions& server, absl::string_view command,
                      absl::string_view stream, absl::string_view what) {
  return absl::InternalError(absl::StrCat("redis ", server.Address(), ": ", command, " of stream '",
                                          stream, "': unexpected reply (", what, ")"));
}

// [id, [field, value, field, value, ...]] as XREAD and XRANGE return an entry.
absl::StatusOr<StreamEntry> ParseEntry(const RedisOptions& server, absl::string_view stream,
                                       RedisReply& reply) {
  if (reply.type != RedisReply::Type::kArray || reply.elements.size() != 2 ||
      reply.elements[0].type != RedisReply::Type::kString) {
    return BadReply(server, "XREAD", stream, "an entry is not [id, fields]");
  }
  StreamEntry entry;
  entry.id = std::move(reply.elements[0].str);
  RedisReply& fields = reply.elements[1];
  if (fields.is_nil()) return entry;
  if (fields.type != RedisReply::Type::kArray || fields.elements.size() % 2 != 0) {
    return BadReply(server, "XREAD", stream, "fields are not field/value pairs");
  }
  entry.fields.reserve(fields.elements.size() / 2);
  for (size_t i = 0; i < fields.elements.size(); i += 2) {
    entry.fields.emplace_back(std::move(fields.elements[i].str),
                              std::move(fields.elements[i + 1].str));
  }
  return entry;
}

void AppendXadd(absl::string_view stream, absl::string_view id, const std::string& max_len,
                absl::Span<const std::pair<std::string, std::string>> fields, RedisArgs* args) {
  args->reserve(6 + 2 * fields.size());
  args->push_back("XADD");
  args->push_back(stream);
  if (!max_len.empty()) {
    args->push_back("MAXLEN");
    args->push_back("~");
    args->push_back(max_len);
  }
  args->push_back(id);
  for (const auto& [field, value] : fields) {
    args->push_back(field);
    args->push_back(value);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<StreamReader>> StreamReader::Open(const RedisOptions& server) {
  FW_ASSIGN_OR_RETURN(std::unique_ptr<RedisConnection> connection,
                      RedisConnection::Connect(server));
  return std::unique_ptr<StreamReader>(new StreamReader(std::move(connection)));
}

absl::StatusOr<std::vector<StreamEntry>> StreamReader::Read(absl::string_view stream,
                                                            absl::string_view after_id, int count,
                                                            absl::Duration block) {
  const StreamCursor cursors[] = {{std::string(stream), std::string(after_id)}};
  FW_ASSIGN_OR_RETURN(std::vector<StreamBatch> batches, ReadMany(cursors, count, block));
  if (batches.empty()) return std::vector<StreamEntry>{};
  return std::move(batches[0].entries);
}

absl::StatusOr<std::vector<StreamBatch>> StreamReader::ReadMany(
    absl::Span<const StreamCursor> cursors, int count, absl::Duration block) {
  const RedisOptions& options = connection_->options();
  if (cursors.empty()) return absl::InvalidArgumentError("XREAD: no stream to read");
  if (count <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("XREAD: count ", count, " must be positive"));
  }
  for (const StreamCursor& cursor : cursors) {
    if (cursor.after_id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("XREAD of stream '", cursor.stream, "': empty position (use \"0\")"));
    }
  }
  const std::string count_text = absl::StrCat(count);
  std::string block_text;
  RedisArgs args;
  args.reserve(6 + 2 * cursors.size());
  args.push_back("XREAD");
  args.push_back("COUNT");
  args.push_back(count_text);
  absl::Duration timeout = absl::ZeroDuration();
  if (block > absl::ZeroDuration()) {
    block_text = absl::StrCat(std::max<int64_t>(1, absl::ToInt64Milliseconds(block)));
    args.push_back("BLOCK");
    args.push_back(block_text);
    // The reply may take the whole block; only then does the command timeout start.
    timeout = block + options.command_timeout;
  }
  args.push_back("STREAMS");
  for (const StreamCursor& cursor : cursors) args.push_back(cursor.stream);
  for (const StreamCursor& cursor : cursors) args.push_back(cursor.after_id);

  FW_ASSIGN_OR_RETURN(RedisReply reply, connection_->Command(args, RedisRetry::kOnce, timeout));
  std::vector<StreamBatch> batches;
  if (reply.is_nil()) return batches;  // nothing arrived within `block`
  const absl::string_view first = cursors[0].stream;
  if (reply.type != RedisReply::Type::kArray) {
    return BadReply(options, "XREAD", first, "not an array of streams");
  }
  batches.reserve(reply.elements.size());
  for (RedisReply& per_stream : reply.elements) {
    if (per_stream.type != RedisReply::Type::kArray || per_stream.elements.size() != 2 ||
        per_stream.elements[1].type != RedisReply::Type::kArray) {
      return BadReply(options, "XREAD", first, "a stream is not [name, entries]");
    }
    StreamBatch& batch = batches.emplace_back();
    batch.stream = std::move(per_stream.elements[0].str);
    batch.entries.reserve(per_stream.elements[1].elements.size());
    for (RedisReply& raw : per_stream.elements[1].elements) {
      FW_ASSIGN_OR_RETURN(StreamEntry entry, ParseEntry(options, batch.stream, raw));
      batch.entries.push_back(std::move(entry));
    }
  }
  return batches;
}

absl::StatusOr<std::string> StreamAdd(RedisConnection& connection, absl::string_view stream,
                                      absl::Span<const std::pair<std::string, std::string>> fields,
                                      absl::string_view id, int64_t max_len) {
  if (fields.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("XADD to stream '", stream, "': an entry needs at least one field"));
  }
  const std::string max_len_text = max_len > 0 ? absl::StrCat(max_len) : std::string();
  RedisArgs args;
  AppendXadd(stream, id, max_len_text, fields, &args);
  FW_ASSIGN_OR_RETURN(RedisReply reply, connection.Command(args, RedisRetry::kNever));
  if (reply.type != RedisReply::Type::kString) {
    return BadReply(connection.options(), "XADD", stream, "no id");
  }
  return std::move(reply.str);
}

absl::StatusOr<std::vector<std::string>> StreamAddMany(
    RedisConnection& connection, absl::string_view stream,
    absl::Span<const std::vector<std::pair<std::string, std::string>>> entries, int64_t max_len) {
  const std::string max_len_text = max_len > 0 ? absl::StrCat(max_len) : std::string();
  std::vector<RedisArgs> commands(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("XADD to stream '", stream, "': entry ", i, " needs at least one field"));
    }
    AppendXadd(stream, "*", max_len_text, entries[i], &commands[i]);
  }
  FW_ASSIGN_OR_RETURN(std::vector<RedisReply> replies,
                      connection.Pipeline(commands, RedisRetry::kNever));
  std::vector<std::string> ids;
  ids.reserve(replies.size());
  for (size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].is_error()) {
      return absl::FailedPreconditionError(
          absl::StrCat("redis ", connection.options().Address(), ": XADD to stream '", stream,
                       "': entry ", i, " of ", replies.size(), ": ", replies[i].str,
                       replies.size() > 1 ? " (the other entries were added)" : ""));
    }
    if (replies[i].type != RedisReply::Type::kString) {
      return BadReply(connection.options(), "XADD", stream, "no id");
    }
    ids.push_back(std::move(replies[i].str));
  }
  return ids;
}

}  // namespace flywheel::features
