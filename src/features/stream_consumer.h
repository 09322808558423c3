// One redis_stream source consumed on a thread of its own: XREAD from the position the pipeline
// restored (the one committed with the state), log the admitted entries, apply the batch. The
// position advances only with a batch applied, and the pipeline's flush commits it together with
// the state it produced: after a kill -9, reading resumes after the last entry the stored state
// contains, so no event is lost or counted twice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "features/definitions.h"
#include "features/event_log.h"
#include "features/pipeline.h"
#include "features/redis_client.h"
#include "features/stream_reader.h"

namespace flywheel::features {

struct StreamConsumerOptions {
  RedisOptions server;
  int batch = 1000;                                // entries per XREAD
  absl::Duration block = absl::Milliseconds(200);  // an XREAD's wait for new entries
  absl::Duration max_backoff = absl::Seconds(2);   // between retries after errors
};

struct StreamConsumerStats {
  std::string source;
  std::string stream;
  uint64_t entries = 0;  // read and applied (malformed and late ones included)
  uint64_t errors = 0;   // failed reads, refused batches
  bool connected = false;
  // How far behind the stream's head the consumer is, from the time in the id of the entry last
  // applied (Redis ids start with their insertion time in ms); 0 once a read came back short.
  double lag_seconds = 0;
};

class StreamConsumer {
 public:
  // REQUIRES: `pipeline` and `source` (a redis_stream source of its registry) and `log` (may be
  // null: nothing logged) outlive the consumer.
  StreamConsumer(FeaturePipeline* pipeline, const SourceDef& source, EventLog* log,
                 StreamConsumerOptions options);
  ~StreamConsumer();
  StreamConsumer(const StreamConsumer&) = delete;
  StreamConsumer& operator=(const StreamConsumer&) = delete;

  void Start();
  // Returns once the thread has finished its current read (at most options.block plus the
  // command timeout) and joined. Idempotent.
  void Stop();

  StreamConsumerStats Stats() const;

 private:
  void Run();
  // Reads and applies one batch after `*cursor`, advancing it when the batch was applied.
  absl::Status Step(StreamReader& reader, std::string* cursor);
  // Waits up to `d` unless stopped; returns false when stopped.
  bool Sleep(absl::Duration d);
  void RecordError(const absl::Status& status);

  FeaturePipeline* const pipeline_;
  const SourceDef& source_;
  EventLog* const log_;
  const StreamConsumerOptions options_;
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  StreamConsumerStats stats_ ABSL_GUARDED_BY(mu_);
  bool failing_ ABSL_GUARDED_BY(mu_) = false;  // an error was reported and not yet recovered
};

}  // namespace flywheel::features
