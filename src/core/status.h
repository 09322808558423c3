// Error handling for flywheel: absl::Status / absl::StatusOr across every module boundary, and
// the two macros that keep call sites short. No exceptions cross a module boundary.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FW_CONCAT_INNER_(a, b) a##b
#define FW_CONCAT_(a, b) FW_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define FW_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::absl::Status fw_status_ = (expr);      \
    if (!fw_status_.ok()) return fw_status_; \
  } while (0)

// `FW_ASSIGN_OR_RETURN(auto x, F());` assigns the value of a StatusOr or returns its error.
#define FW_ASSIGN_OR_RETURN(lhs, expr) \
  FW_ASSIGN_OR_RETURN_IMPL_(FW_CONCAT_(fw_statusor_, __LINE__), lhs, expr)
#define FW_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
