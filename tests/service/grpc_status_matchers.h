// GoogleTest matcher for grpc::Status, like StatusIs for absl::Status:
//   EXPECT_THAT(status, GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("s-1")));
#ifndef ROMED_TESTS_SERVICE_GRPC_STATUS_MATCHERS_H_
#define ROMED_TESTS_SERVICE_GRPC_STATUS_MATCHERS_H_

#include <string>

#include <gmock/gmock.h>
#include <grpcpp/support/status.h>

namespace romed::testing {

MATCHER_P2(GrpcStatusIs, code, message_matcher,
           "has gRPC code " + ::testing::PrintToString(static_cast<int>(code))) {
  *result_listener << "status is " << static_cast<int>(arg.error_code()) << " \""
                   << arg.error_message() << "\"";
  return arg.error_code() == code &&
         ::testing::ExplainMatchResult(message_matcher, arg.error_message(), result_listener);
}

}  // namespace romed::testing

#endif  // ROMED_TESTS_SERVICE_GRPC_STATUS_MATCHERS_H_
