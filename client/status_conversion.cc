#include "client/status_conversion.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace romed::client {

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const int code = static_cast<int>(status.error_code());
  constexpr int kLastCanonicalCode = static_cast<int>(absl::StatusCode::kUnauthenticated);
  if (code <= 0 || code > kLastCanonicalCode) {
    return absl::UnknownError(
        absl::StrCat("non-canonical gRPC code ", code, ": ", status.error_message()));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), status.error_message());
}

}  // namespace romed::client
