// Every bad-input case of issue #2, through an in-process channel: each gets
// a specific gRPC code and a message naming the problem, and the server
// still answers afterwards.
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/service/grpc_status_matchers.h"
#include "tests/service/service_fixture.h"

namespace romed::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;

class BadInputTest : public ServiceTest {
 protected:
  void TearDown() override { ExpectServerStillAnswers(); }
};

TEST_F(BadInputTest, EmptyPrompt) {
  EXPECT_THAT(CallGenerate(GreedyRequest("")), GrpcStatusIs(kInvalid, HasSubstr("prompt is empty")));
}

TEST_F(BadInputTest, PromptLongerThanThePromptLimit) {
  EXPECT_THAT(CallGenerate(GreedyRequest(std::string(50, 'a'))),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("prompt is 50 tokens"), HasSubstr("48"),
                                           HasSubstr("--max_prompt_tokens"))));
}

TEST_F(BadInputTest, PromptLongerThanTheContext) {
  EngineOptions options = ServiceTestOptions();
  options.limits.max_prompt_tokens = 1000;
  auto wide = ServeTinyModel(true, options);
  ASSERT_NE(wide, nullptr);
  grpc::ClientContext context;
  v1::GenerateResponse response;
  EXPECT_THAT(wide->stub->Generate(&context, GreedyRequest(std::string(70, 'a')), &response),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("prompt is 70 tokens"),
                                           HasSubstr("context is 64 tokens"))));
}

TEST_F(BadInputTest, PromptPlusNewTokensPastTheContext) {
  EngineOptions options = ServiceTestOptions();
  options.limits.max_prompt_tokens = 1000;
  auto wide = ServeTinyModel(true, options);
  ASSERT_NE(wide, nullptr);
  grpc::ClientContext context;
  v1::GenerateResponse response;
  EXPECT_THAT(wide->stub->Generate(&context, GreedyRequest(std::string(60, 'a'), 10), &response),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("exceeds the model's context of 64"),
                                           HasSubstr("at most 4"))));
}

TEST_F(BadInputTest, MaxNewTokensZeroMeansTheDefaultNotAnError) {
  // proto3 cannot tell 0 from unset: the contract makes 0 the default.
  v1::GenerateResponse response;
  ASSERT_TRUE(CallGenerate(GreedyRequest("Hi", 0), &response).ok());
  EXPECT_EQ(response.ids_size(), 16);  // 32 capped at the limit
}

TEST_F(BadInputTest, MaxNewTokensNegative) {
  EXPECT_THAT(CallGenerate(GreedyRequest("Hi", -3)),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("max_new_tokens is -3"),
                                           HasSubstr("--max_new_tokens"))));
}

TEST_F(BadInputTest, MaxNewTokensAboveTheLimit) {
  EXPECT_THAT(CallGenerate(GreedyRequest("Hi", 17)),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("max_new_tokens is 17"),
                                           HasSubstr("limit is 16"),
                                           HasSubstr("--max_new_tokens"))));
}

TEST_F(BadInputTest, NegativeTemperature) {
  v1::GenerateRequest request = GreedyRequest("Hi");
  request.mutable_sampling()->set_temperature(-1.0f);
  EXPECT_THAT(CallGenerate(request), GrpcStatusIs(kInvalid, HasSubstr("temperature")));
}

TEST_F(BadInputTest, TopPAboveOne) {
  v1::GenerateRequest request = GreedyRequest("Hi");
  request.mutable_sampling()->set_top_p(1.5f);
  EXPECT_THAT(CallGenerate(request), GrpcStatusIs(kInvalid, HasSubstr("top_p")));
}

TEST_F(BadInputTest, TopPNegative) {
  v1::GenerateRequest request = GreedyRequest("Hi");
  request.mutable_sampling()->set_top_p(-0.1f);
  EXPECT_THAT(CallGenerate(request), GrpcStatusIs(kInvalid, HasSubstr("top_p")));
}

TEST_F(BadInputTest, NegativeTopK) {
  v1::GenerateRequest request = GreedyRequest("Hi");
  request.mutable_sampling()->set_top_k(-2);
  EXPECT_THAT(CallGenerate(request), GrpcStatusIs(kInvalid, HasSubstr("top_k")));
}

// proto3 string fields must be UTF-8. The C++ client sends invalid UTF-8
// anyway (protobuf only logs an error), the server's parser rejects the
// message before any handler runs, and the parse-failure interceptor turns
// gRPC's message-less INTERNAL into this INVALID_ARGUMENT.
TEST_F(BadInputTest, InvalidUtf8Prompt) {
  EXPECT_THAT(CallGenerate(GreedyRequest("caf\xc3(")),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("romed.v1.ModelEditor/Generate"),
                                           HasSubstr("not valid UTF-8"))));
}

TEST_F(BadInputTest, InvalidUtf8InTokenizeAndScore) {
  grpc::ClientContext context;
  v1::TokenizeRequest request;
  request.set_text("\xff\xfe");
  v1::TokenizeResponse response;
  EXPECT_THAT(stub().Tokenize(&context, request, &response),
              GrpcStatusIs(kInvalid, HasSubstr("not valid UTF-8")));
  v1::ScoreRequest score;
  score.set_prompt("p");
  score.add_continuations(" \x80");
  EXPECT_THAT(CallScore(score), GrpcStatusIs(kInvalid, HasSubstr("not valid UTF-8")));
}

TEST_F(BadInputTest, TooManyStopSequences) {
  v1::GenerateRequest request = GreedyRequest("Hi");
  for (const char* s : {"a", "b", "c"}) request.add_stop(s);
  EXPECT_THAT(CallGenerate(request),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("3 stop sequences"), HasSubstr("at most 2"),
                                           HasSubstr("--max_stop_sequences"))));
}

TEST_F(BadInputTest, EmptyStopSequence) {
  v1::GenerateRequest request = GreedyRequest("Hi");
  request.add_stop("");
  EXPECT_THAT(CallGenerate(request), GrpcStatusIs(kInvalid, HasSubstr("stop[0] is empty")));
}

TEST_F(BadInputTest, UnknownSessionInGenerate) {
  v1::GenerateRequest request = GreedyRequest("Hi");
  request.set_session_id("s-unknown");
  EXPECT_THAT(CallGenerate(request),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND,
                           AllOf(HasSubstr("session \"s-unknown\" not found"),
                                 HasSubstr("CreateSession"))));
}

TEST_F(BadInputTest, UnknownSessionInScore) {
  v1::ScoreRequest request;
  request.set_prompt("Hi");
  request.add_continuations(" there");
  request.set_session_id("s-unknown");
  EXPECT_THAT(CallScore(request),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("s-unknown")));
}

TEST_F(BadInputTest, EmptyContinuationInScore) {
  v1::ScoreRequest request;
  request.set_prompt("Hi");
  request.add_continuations(" there");
  request.add_continuations("");
  EXPECT_THAT(CallScore(request),
              GrpcStatusIs(kInvalid, HasSubstr("continuations[1] is empty")));
}

TEST_F(BadInputTest, NoContinuationsInScore) {
  v1::ScoreRequest request;
  request.set_prompt("Hi");
  EXPECT_THAT(CallScore(request), GrpcStatusIs(kInvalid, HasSubstr("continuations is empty")));
}

TEST_F(BadInputTest, TooManyContinuationsInScore) {
  v1::ScoreRequest request;
  request.set_prompt("Hi");
  for (int i = 0; i < 5; ++i) request.add_continuations(" x");
  EXPECT_THAT(CallScore(request),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("5 continuations"),
                                           HasSubstr("--max_continuations"))));
}

TEST_F(BadInputTest, EmptyPromptInScore) {
  v1::ScoreRequest request;
  request.add_continuations(" x");
  EXPECT_THAT(CallScore(request), GrpcStatusIs(kInvalid, HasSubstr("prompt is empty")));
}

TEST_F(BadInputTest, MessageLargerThanTheReceiveLimit) {
  // 100 KB against --max_receive_message_bytes=64 KiB: rejected by gRPC's
  // message-size check before parsing.
  EXPECT_THAT(CallGenerate(GreedyRequest(std::string(100 * 1000, 'a'))),
              GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("larger than max")));
}

}  // namespace
}  // namespace romed::testing
