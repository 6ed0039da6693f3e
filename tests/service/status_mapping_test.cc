// ToGrpcStatus: one test per canonical code, plus OK and the empty message.
#include "server/service/status_mapping.h"

#include <string>

#include <gtest/gtest.h>

namespace romed {
namespace {

struct CodePair {
  absl::StatusCode absl_code;
  grpc::StatusCode grpc_code;
  const char* name;
};

class StatusMappingTest : public ::testing::TestWithParam<CodePair> {};

TEST_P(StatusMappingTest, KeepsTheCodeAndTheMessage) {
  const CodePair& p = GetParam();
  const grpc::Status status = ToGrpcStatus(absl::Status(p.absl_code, "what went wrong"));
  EXPECT_EQ(status.error_code(), p.grpc_code);
  EXPECT_EQ(status.error_message(), "what went wrong");
  EXPECT_EQ(StatusCodeName(p.grpc_code), p.name);
}

TEST_P(StatusMappingTest, AnEmptyMessageBecomesTheCodeName) {
  const CodePair& p = GetParam();
  const grpc::Status status = ToGrpcStatus(absl::Status(p.absl_code, ""));
  EXPECT_EQ(status.error_code(), p.grpc_code);
  EXPECT_EQ(status.error_message(), p.name);
}

INSTANTIATE_TEST_SUITE_P(
    EveryErrorCode, StatusMappingTest,
    ::testing::Values(
        CodePair{absl::StatusCode::kCancelled, grpc::StatusCode::CANCELLED, "CANCELLED"},
        CodePair{absl::StatusCode::kUnknown, grpc::StatusCode::UNKNOWN, "UNKNOWN"},
        CodePair{absl::StatusCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT,
                 "INVALID_ARGUMENT"},
        CodePair{absl::StatusCode::kDeadlineExceeded, grpc::StatusCode::DEADLINE_EXCEEDED,
                 "DEADLINE_EXCEEDED"},
        CodePair{absl::StatusCode::kNotFound, grpc::StatusCode::NOT_FOUND, "NOT_FOUND"},
        CodePair{absl::StatusCode::kAlreadyExists, grpc::StatusCode::ALREADY_EXISTS,
                 "ALREADY_EXISTS"},
        CodePair{absl::StatusCode::kPermissionDenied, grpc::StatusCode::PERMISSION_DENIED,
                 "PERMISSION_DENIED"},
        CodePair{absl::StatusCode::kResourceExhausted, grpc::StatusCode::RESOURCE_EXHAUSTED,
                 "RESOURCE_EXHAUSTED"},
        CodePair{absl::StatusCode::kFailedPrecondition, grpc::StatusCode::FAILED_PRECONDITION,
                 "FAILED_PRECONDITION"},
        CodePair{absl::StatusCode::kAborted, grpc::StatusCode::ABORTED, "ABORTED"},
        CodePair{absl::StatusCode::kOutOfRange, grpc::StatusCode::OUT_OF_RANGE, "OUT_OF_RANGE"},
        CodePair{absl::StatusCode::kUnimplemented, grpc::StatusCode::UNIMPLEMENTED,
                 "UNIMPLEMENTED"},
        CodePair{absl::StatusCode::kInternal, grpc::StatusCode::INTERNAL, "INTERNAL"},
        CodePair{absl::StatusCode::kUnavailable, grpc::StatusCode::UNAVAILABLE, "UNAVAILABLE"},
        CodePair{absl::StatusCode::kDataLoss, grpc::StatusCode::DATA_LOSS, "DATA_LOSS"},
        CodePair{absl::StatusCode::kUnauthenticated, grpc::StatusCode::UNAUTHENTICATED,
                 "UNAUTHENTICATED"}),
    [](const ::testing::TestParamInfo<CodePair>& info) { return std::string(info.param.name); });

TEST(StatusMappingOkTest, OkIsOk) {
  const grpc::Status status = ToGrpcStatus(absl::OkStatus());
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.error_message(), "");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::OK), "OK");
}

}  // namespace
}  // namespace romed
