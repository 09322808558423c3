// `flywheel bench --url http://HOST:PORT --model M`: a closed-loop load generator against a
// running KServe v2 server (flywheel or Triton), over HTTP or gRPC. For each concurrency level it
// reports throughput, client latency percentiles and the server's own queue and compute times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/load_bench_transport.h"

namespace flywheel::cli {

struct LoadBenchOptions {
  std::string url;
  std::string model;
  std::string protocol = "http";
  std::string concurrency = "1";
  double duration_secs = 5;
  std::string input_data = "random";
  // HTTP: event-loop threads driving the connections; 0 = one per core (at most one per
  // connection). gRPC keeps a thread per connection.
  int client_threads = 0;
  // Shared with the local benchmark's flags of the same names.
  std::vector<int64_t> batches = {1};
  int64_t dim = 1;
  int64_t int_max = 0;
  int warmup = 10;
  bool json = false;
  std::string json_path;  // empty: JSON on stdout instead of the table
};

// Registers --url, --model, --protocol, --concurrency, --duration-secs and --input-data on the
// bench subcommand.
void AddLoadBenchOptions(CLI::App& bench, LoadBenchOptions& options);

absl::Status RunLoadBench(const LoadBenchOptions& options);

// Writes JSON text to path, or to stdout when path is empty.
absl::Status WriteJsonResult(const std::string& path, const std::string& text);

// --- Pieces, exposed for tests ---------------------------------------------------------------

// "8" -> {8}; "1,4,16" -> as listed; "1:64" -> 1,2,4,...,64 (doubling, the end always included);
// "4:16:4" -> 4,8,12,16.
absl::StatusOr<std::vector<int>> ParseConcurrency(const std::string& spec);

struct ServerAddress {
  std::string host;
  int port = 0;
};
// "http://host:port", "grpc://host:port", "host:port", "host", "[::1]:8001"; the port defaults
// to 8000 for HTTP and 8001 for gRPC.
absl::StatusOr<ServerAddress> ParseServerUrl(const std::string& url, const std::string& protocol);

// The p-th percentile (0 < p <= 100, nearest rank) of sorted values; 0 when there are none.
double Percentile(const std::vector<double>& sorted, double p);

// Request inputs for a model: a -1 first dimension becomes batch, other -1 dimensions dim.
// input_data "zero" fills zeros (empty strings for BYTES), "random" a fixed-seed random fill
// (floats in [-1,1), integers in [0, int_max or 100), BYTES 8 random letters).
absl::StatusOr<std::vector<InputTensor>> MakeRequestInputs(const ModelMetadata& metadata,
                                                           int64_t batch, int64_t dim,
                                                           int64_t int_max,
                                                           const std::string& input_data);

}  // namespace flywheel::cli
