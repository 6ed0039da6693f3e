// The one place where romed builds a grpc::Status from an absl::Status.
//
// absl's canonical codes and gRPC's are the same 17 codes with the same
// numbers, so the mapping is the identity on codes; the message is kept.
// A non-OK status always leaves with a non-empty message (the code's name if
// the core gave none), which lets the parse-failure interceptor tell gRPC's
// own message-less INTERNAL apart from ours.
#ifndef ROMED_SERVER_SERVICE_STATUS_MAPPING_H_
#define ROMED_SERVER_SERVICE_STATUS_MAPPING_H_

#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace romed {

grpc::Status ToGrpcStatus(const absl::Status& status);

// "OK", "INVALID_ARGUMENT", ... as gRPC spells the code (metric labels).
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace romed

#endif  // ROMED_SERVER_SERVICE_STATUS_MAPPING_H_
