// Status propagation macros for absl::Status / absl::StatusOr.
//
// Debian's abseil (20220623) ships neither absl/status/status_macros.h nor
// the test matchers, so romed defines the two macros it needs under the names
// used upstream (and by gRPC / TensorFlow), so a later switch is a rename.
//
//   absl::StatusOr<Config> LoadConfig(const std::string& path) {
//     RETURN_IF_ERROR(CheckReadable(path));
//     ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     return ParseConfig(text);
//   }
#ifndef ROMED_SERVER_CORE_STATUS_MACROS_H_
#define ROMED_SERVER_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ROMED_STATUS_CONCAT_INNER_(a, b) a##b
#define ROMED_STATUS_CONCAT_(a, b) ROMED_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function
// if it is not OK.
#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    const ::absl::Status romed_status_ = (expr);     \
    if (!romed_status_.ok()) return romed_status_;   \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status,
// otherwise move-assigns the value to `lhs` (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ROMED_ASSIGN_OR_RETURN_IMPL_(      \
      ROMED_STATUS_CONCAT_(romed_statusor_, __LINE__), lhs, rexpr)

#define ROMED_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return statusor.status();            \
  lhs = std::move(statusor).value()

#endif  // ROMED_SERVER_CORE_STATUS_MACROS_H_
