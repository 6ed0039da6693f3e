// The one place where a grpc::Status becomes an absl::Status on the client
// side. gRPC's and absl's canonical codes are the same numbers with the same
// meaning (absl/status/status.h says so), so the code carries over unchanged
// and the message is kept verbatim.
//
//   grpc::Status s = stub->Tokenize(&ctx, request, &response);
//   if (!s.ok()) return FromGrpcStatus(s);
#ifndef ROMED_CLIENT_STATUS_CONVERSION_H_
#define ROMED_CLIENT_STATUS_CONVERSION_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace romed::client {

// OK -> OkStatus(); otherwise the same code and the same message. Codes
// outside the canonical range (a misbehaving peer) become UNKNOWN, with the
// original number named in the message.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace romed::client

#endif  // ROMED_CLIENT_STATUS_CONVERSION_H_
