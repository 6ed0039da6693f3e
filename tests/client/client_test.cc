// RomedClient against an in-process FakeModelEditor: requests arrive intact,
// replies come back unchanged, server errors keep their code and message, and
// deadlines, streaming and cancellation behave as romed_client.h says.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "client/romed_client.h"
#include "client/status_conversion.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/client/fake_model_editor.h"
#include "tests/testing/status_matchers.h"

namespace romed::client {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::romed::testing::FakeServer;
using ::romed::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(FromGrpcStatusTest, OkIsOk) { EXPECT_OK(FromGrpcStatus(grpc::Status::OK)); }

TEST(FromGrpcStatusTest, EveryCanonicalCodeKeepsItsNumberAndMessage) {
  for (int code = 1; code <= 16; ++code) {
    absl::Status status =
        FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(code), "what went wrong"));
    EXPECT_EQ(static_cast<int>(status.code()), code);
    EXPECT_EQ(status.message(), "what went wrong");
  }
}

TEST(FromGrpcStatusTest, InvalidArgumentBecomesAbslInvalidArgument) {
  EXPECT_THAT(FromGrpcStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad")),
              StatusIs(absl::StatusCode::kInvalidArgument, "bad"));
}

TEST(FromGrpcStatusTest, NonCanonicalCodeBecomesUnknownNamingTheNumber) {
  EXPECT_THAT(FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(99), "odd")),
              StatusIs(absl::StatusCode::kUnknown, HasSubstr("99")));
}

TEST(ServingStatusNameTest, NamesMatchTheHealthProto) {
  EXPECT_EQ(ServingStatusName(ServingStatus::kServing), "SERVING");
  EXPECT_EQ(ServingStatusName(ServingStatus::kNotServing), "NOT_SERVING");
  EXPECT_EQ(ServingStatusName(ServingStatus::kUnknown), "UNKNOWN");
  EXPECT_EQ(ServingStatusName(ServingStatus::kServiceUnknown), "SERVICE_UNKNOWN");
}

TEST(ConnectTest, RejectsAnEmptyTarget) {
  RomedClientOptions options;
  options.target = "";
  EXPECT_THAT(RomedClient::Connect(options), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ConnectTest, RejectsANonPositiveTimeout) {
  RomedClientOptions options;
  options.default_timeout = absl::ZeroDuration();
  EXPECT_THAT(RomedClient::Connect(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("timeout")));
}

TEST(ConnectTest, CallToAClosedPortIsUnavailable) {
  RomedClientOptions options;
  options.target = "127.0.0.1:1";
  options.default_timeout = absl::Seconds(5);
  ASSERT_OK_AND_ASSIGN(auto client, RomedClient::Connect(options));
  EXPECT_THAT(client->GetModelInfo(), StatusIs(absl::StatusCode::kUnavailable));
}

class RomedClientTest : public ::testing::Test {
 protected:
  FakeServer server_;
  RomedClient client_{server_.InProcessChannel(), absl::Seconds(30)};
};

TEST_F(RomedClientTest, HealthIsServingByDefault) {
  ASSERT_OK_AND_ASSIGN(ServingStatus status, client_.CheckHealth());
  EXPECT_EQ(status, ServingStatus::kServing);
}

TEST_F(RomedClientTest, HealthIsNotServingWhenTheServerSaysSo) {
  server_.SetServing(false);
  ASSERT_OK_AND_ASSIGN(ServingStatus status, client_.CheckHealth());
  EXPECT_EQ(status, ServingStatus::kNotServing);
}

TEST_F(RomedClientTest, HealthOfAnUnknownServiceIsNotFound) {
  EXPECT_THAT(client_.CheckHealth("no.such.Service"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(RomedClientTest, GetModelInfoReturnsTheServersReply) {
  ASSERT_OK_AND_ASSIGN(romed::v1::ModelInfo info, client_.GetModelInfo());
  EXPECT_TRUE(MessageDifferencer::Equals(info, romed::testing::FakeModelInfo()));
}

TEST_F(RomedClientTest, TokenizeSendsTheTextAndReturnsIdsAndTokens) {
  ASSERT_OK_AND_ASSIGN(romed::v1::TokenizeResponse tokens, client_.Tokenize("Hi"));
  EXPECT_THAT(tokens.ids(), ElementsAre('H', 'i'));
  EXPECT_THAT(tokens.tokens(), ElementsAre("H", "i"));
}

TEST_F(RomedClientTest, GenerateSendsTheRequestUnchanged) {
  romed::v1::GenerateRequest request;
  request.set_prompt("The Eiffel Tower is in");
  request.set_max_new_tokens(7);
  request.mutable_sampling()->set_seed(42);
  request.add_stop("a, b");
  ASSERT_OK(client_.Generate(request).status());
  EXPECT_TRUE(MessageDifferencer::Equals(server_.editor().last_generate_request(), request));
}

TEST_F(RomedClientTest, GenerateReturnsTheServersReply) {
  romed::v1::GenerateRequest request;
  request.set_prompt("abc");
  ASSERT_OK_AND_ASSIGN(romed::v1::GenerateResponse reply, client_.Generate(request));
  EXPECT_EQ(reply.text(), " Paris");
  EXPECT_EQ(reply.prompt_tokens(), 3);
}

TEST_F(RomedClientTest, ServerValidationErrorKeepsItsCodeAndMessage) {
  romed::v1::GenerateRequest request;  // empty prompt
  EXPECT_THAT(client_.Generate(request),
              StatusIs(absl::StatusCode::kInvalidArgument, "prompt is empty"));
}

TEST_F(RomedClientTest, EveryRpcReportsAFailureTheServerChose) {
  server_.editor().FailWith(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too busy"));
  romed::v1::GenerateRequest generate;
  generate.set_prompt("x");
  romed::v1::ScoreRequest score;
  score.set_prompt("x");
  const auto busy = StatusIs(absl::StatusCode::kResourceExhausted, "too busy");
  EXPECT_THAT(client_.GetModelInfo(), busy);
  EXPECT_THAT(client_.Tokenize("x"), busy);
  EXPECT_THAT(client_.Generate(generate), busy);
  EXPECT_THAT(client_.GenerateStream(generate, nullptr), busy);
  EXPECT_THAT(client_.Score(score), busy);
}

TEST_F(RomedClientTest, CallsCarryTheDefaultDeadline) {
  const absl::Time before = absl::Now();
  ASSERT_OK(client_.GetModelInfo().status());
  const absl::Duration remaining = server_.editor().last_deadline() - before;
  EXPECT_GT(remaining, absl::Seconds(29));
  EXPECT_LE(remaining, absl::Seconds(31));
}

TEST_F(RomedClientTest, PerCallTimeoutOverridesTheDefault) {
  CallOptions call;
  call.timeout = absl::Seconds(3);
  const absl::Time before = absl::Now();
  ASSERT_OK(client_.GetModelInfo(call).status());
  EXPECT_LE(server_.editor().last_deadline() - before, absl::Seconds(4));
}

TEST_F(RomedClientTest, CallPastItsDeadlineIsDeadlineExceeded) {
  romed::v1::GenerateRequest request;
  request.set_prompt("slow");
  CallOptions call;
  call.timeout = absl::Milliseconds(100);
  EXPECT_THAT(client_.Generate(request, call), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(RomedClientTest, GenerateStreamCallsBackPerPieceAndReturnsTheFinalResult) {
  romed::v1::GenerateRequest request;
  request.set_prompt("abc");
  std::vector<std::string> pieces;
  auto collect = [&](const romed::v1::GenerateStreamResponse& piece) {
    pieces.push_back(piece.text());
    return true;
  };
  ASSERT_OK_AND_ASSIGN(romed::v1::GenerateResponse result,
                       client_.GenerateStream(request, collect));
  EXPECT_THAT(pieces, ElementsAre(" Par", "is"));
  EXPECT_EQ(result.text(), " Paris");
  EXPECT_EQ(result.finish_reason(), romed::v1::FINISH_REASON_LENGTH);
}

TEST_F(RomedClientTest, GenerateStreamStopsWhenTheCallbackSaysSo) {
  romed::v1::GenerateRequest request;
  request.set_prompt("abc");
  int calls = 0;
  auto stop_at_first = [&](const romed::v1::GenerateStreamResponse&) {
    ++calls;
    return false;
  };
  EXPECT_THAT(client_.GenerateStream(request, stop_at_first),
              StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(calls, 1);
}

TEST_F(RomedClientTest, GenerateStreamWithoutADoneMessageIsInternal) {
  server_.editor().OmitDone(true);
  romed::v1::GenerateRequest request;
  request.set_prompt("abc");
  EXPECT_THAT(client_.GenerateStream(request, nullptr),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("done")));
}

TEST_F(RomedClientTest, ScoreSendsEveryContinuationAndReturnsOneScoreEach) {
  romed::v1::ScoreRequest request;
  request.set_prompt("The capital of France is");
  request.add_continuations(" Paris");
  request.add_continuations(" Lyon, France");
  ASSERT_OK_AND_ASSIGN(romed::v1::ScoreResponse reply, client_.Score(request));
  EXPECT_THAT(server_.editor().last_score_request().continuations(),
              ElementsAre(" Paris", " Lyon, France"));
  ASSERT_EQ(reply.scores_size(), 2);
  EXPECT_EQ(reply.scores(1).continuation(), " Lyon, France");
  EXPECT_DOUBLE_EQ(reply.scores(0).total_logprob(), -6.0);
}

}  // namespace
}  // namespace romed::client
