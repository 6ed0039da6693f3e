// Compare through the gRPC service (in-process channel, tiny random model):
// its numbers equal separate Score and Generate calls on each variant, the
// response carries what it ran, and bad input gets its code and changes
// nothing.
#include <cmath>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/service/rpc_availability.h"
#include "tests/service/grpc_status_matchers.h"
#include "tests/service/service_fixture.h"
#include "tests/session/session_test_util.h"

namespace romed::testing {
namespace {

using ::testing::HasSubstr;

class CompareServiceTest : public ServiceTest {
 protected:
  static void SetUpTestSuite() {
    ServiceTest::SetUpTestSuite();
    if (served_ == nullptr) return;
    session_ = new std::string;
    absl::StatusOr<std::shared_ptr<const SessionState>> s = engine().CreateSession({});
    ASSERT_TRUE(s.ok()) << s.status();
    *session_ = (*s)->info.id;
    const Gpt2Config& config = engine().model().config();
    const int64_t m = 4 * config.n_embd;
    absl::StatusOr<EditEntry> pushed = engine().sessions().PushEdit(
        *session_, [&](const SessionState&) -> absl::StatusOr<EditEntry> {
          return MakeEntry({RandomDelta(0, m, config.n_embd, 21, 2.0),
                            RandomDelta(1, m, config.n_embd, 22, 2.0)});
        });
    ASSERT_TRUE(pushed.ok()) << pushed.status();
  }
  static void TearDownTestSuite() {
    delete session_;
    session_ = nullptr;
    ServiceTest::TearDownTestSuite();
  }

  static v1::CompareRequest Request() {
    v1::CompareRequest request;
    request.mutable_b()->set_session_id(*session_);
    request.add_prompts("Anna Berg lives in");
    request.add_prompts("The river");
    return request;
  }

  static grpc::Status CallCompare(const v1::CompareRequest& request,
                                  v1::CompareResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::CompareResponse ignored;
    return stub().Compare(&context, request, response != nullptr ? response : &ignored);
  }

  static void ExpectSameScore(const v1::ContinuationScore& got,
                              const v1::ContinuationScore& want) {
    EXPECT_EQ(got.continuation(), want.continuation());
    ASSERT_EQ(got.token_logprobs_size(), want.token_logprobs_size());
    for (int k = 0; k < got.token_logprobs_size(); ++k) {
      EXPECT_NEAR(got.token_logprobs(k), want.token_logprobs(k), 1e-5);
      EXPECT_EQ(got.ids(k), want.ids(k));
      EXPECT_EQ(got.tokens(k), want.tokens(k));
    }
    EXPECT_NEAR(got.total_logprob(), want.total_logprob(), 1e-5);
  }

  static std::string* session_;
};
std::string* CompareServiceTest::session_ = nullptr;

TEST_F(CompareServiceTest, CompareIsAvailable) {
  EXPECT_EQ(RpcStatusTable().at("Compare"), "available");
}

TEST_F(CompareServiceTest, ProbabilitiesEqualScoreCallsOnEachVariant) {
  v1::CompareRequest request = Request();
  request.add_targets(" Oslo");
  request.add_targets(" Rome");
  v1::CompareResponse response;
  ASSERT_TRUE(CallCompare(request, &response).ok());
  ASSERT_EQ(response.rows_size(), 2);
  EXPECT_EQ(response.session_a(), "");
  EXPECT_EQ(response.session_b(), *session_);
  EXPECT_EQ(response.deltas_a(), 0);
  EXPECT_EQ(response.deltas_b(), 2);
  EXPECT_EQ(response.scoring_rows(), 8);
  EXPECT_EQ(response.generation_rows(), 0);
  bool moved = false;
  for (int i = 0; i < 2; ++i) {
    const v1::CompareRow& row = response.rows(i);
    EXPECT_EQ(row.prompt(), request.prompts(i));
    EXPECT_EQ(row.generation_a(), "");
    EXPECT_EQ(row.finish_a(), v1::FINISH_REASON_UNSPECIFIED);
    for (const std::string& session : {std::string(), *session_}) {
      v1::ScoreRequest score;
      score.set_prompt(request.prompts(i));
      score.add_continuations(" Oslo");
      score.add_continuations(" Rome");
      score.set_session_id(session);
      v1::ScoreResponse want;
      ASSERT_TRUE(CallScore(score, &want).ok());
      const auto& got = session.empty() ? row.targets_a() : row.targets_b();
      ASSERT_EQ(got.size(), 2);
      for (int j = 0; j < 2; ++j) ExpectSameScore(got[j], want.scores(j));
      EXPECT_EQ(row.prompt_tokens(), want.prompt_tokens());
    }
    moved = moved || std::abs(row.targets_a(0).total_logprob() -
                              row.targets_b(0).total_logprob()) > 1e-3;
  }
  EXPECT_TRUE(moved);
}

TEST_F(CompareServiceTest, GenerationsEqualGenerateCallsAndTopKAndKlAreFilled) {
  v1::CompareRequest request = Request();
  request.set_max_new_tokens(6);
  request.set_ignore_eos(true);
  request.set_top_k_next(3);
  request.set_kl(true);
  v1::CompareResponse response;
  ASSERT_TRUE(CallCompare(request, &response).ok());
  EXPECT_EQ(response.generation_rows(), 4);
  EXPECT_EQ(response.scoring_rows(), 0);  // top-k and KL from the decode's first step
  // ... equal to those of the scoring forward (no generation).
  v1::CompareRequest scoring = request;
  scoring.set_max_new_tokens(0);
  v1::CompareResponse scored;
  ASSERT_TRUE(CallCompare(scoring, &scored).ok());
  EXPECT_EQ(scored.scoring_rows(), 4);
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(response.rows(i).kl(), scored.rows(i).kl(), 1e-5);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(response.rows(i).top_b(k).id(), scored.rows(i).top_b(k).id());
      EXPECT_NEAR(response.rows(i).top_b(k).prob(), scored.rows(i).top_b(k).prob(), 1e-6);
    }
  }
  for (int i = 0; i < 2; ++i) {
    const v1::CompareRow& row = response.rows(i);
    for (const std::string& session : {std::string(), *session_}) {
      v1::GenerateRequest generate = GreedyRequest(request.prompts(i), 6);
      generate.set_session_id(session);
      v1::GenerateResponse want;
      ASSERT_TRUE(CallGenerate(generate, &want).ok());
      const bool a = session.empty();
      EXPECT_EQ(a ? row.generation_a() : row.generation_b(), want.text());
      const auto& ids = a ? row.generation_a_ids() : row.generation_b_ids();
      EXPECT_EQ(std::vector<int64_t>(ids.begin(), ids.end()),
                std::vector<int64_t>(want.ids().begin(), want.ids().end()));
      EXPECT_EQ(a ? row.finish_a() : row.finish_b(), v1::FINISH_REASON_LENGTH);
      EXPECT_EQ((a ? row.generation_a_logprobs() : row.generation_b_logprobs()).size(), 6);
    }
    ASSERT_EQ(row.top_a_size(), 3);
    ASSERT_EQ(row.top_b_size(), 3);
    EXPECT_GE(row.top_a(0).prob(), row.top_a(1).prob());
    EXPECT_GE(row.top_b(1).prob(), row.top_b(2).prob());
    EXPECT_GT(row.kl(), 0.0f);
  }
}

TEST_F(CompareServiceTest, BothVariantsEqualIsAllowed) {
  v1::CompareRequest request = Request();
  request.mutable_a()->set_session_id(*session_);
  request.set_kl(true);
  request.add_targets(" Oslo");
  v1::CompareResponse response;
  ASSERT_TRUE(CallCompare(request, &response).ok());
  EXPECT_EQ(response.scoring_rows(), 2);
  for (const v1::CompareRow& row : response.rows()) {
    EXPECT_EQ(row.kl(), 0.0f);
    EXPECT_EQ(row.targets_a(0).total_logprob(), row.targets_b(0).total_logprob());
  }
}

TEST_F(CompareServiceTest, BadInputGetsItsCodeAndTheServerStillAnswers) {
  const auto expect = [](const v1::CompareRequest& request, grpc::StatusCode code,
                         const std::string& message) {
    EXPECT_THAT(CallCompare(request), GrpcStatusIs(code, HasSubstr(message))) << message;
  };
  v1::CompareRequest r = Request();
  r.set_kl(true);
  r.mutable_a()->set_session_id("s-ffffffffffffffff");
  expect(r, grpc::StatusCode::NOT_FOUND, "variant a: session \"s-ffffffffffffffff\" not found");

  r = Request();
  r.set_kl(true);
  r.clear_prompts();
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "prompts is empty");
  for (int i = 0; i < 3; ++i) r.add_prompts("x");
  r.add_prompts("y");
  r.add_prompts("z");  // ServiceTestOptions: --max_continuations 4
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "5 prompts; at most 4");

  r = Request();
  r.add_targets(" a");
  r.add_targets(" b");
  r.add_targets(" c");
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "2 prompts x 3 targets = 6");

  r = Request();
  r.set_kl(true);
  r.set_prompts(0, std::string(49, 'x'));  // --max_prompt_tokens 48
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "prompts[0]: prompt is 49 tokens; the limit is 48");

  r = Request();
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "nothing to compare");

  r = Request();
  r.set_max_new_tokens(17);  // --max_new_tokens 16
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "max_new_tokens is 17");

  r = Request();
  r.set_top_k_next(101);
  expect(r, grpc::StatusCode::INVALID_ARGUMENT, "top_k is 101");
  ExpectServerStillAnswers();
}

}  // namespace
}  // namespace romed::testing
