// Engine::Compare on a tiny random checkpoint (no gRPC): its numbers equal
// separate Score / Generate calls on each variant, KL and top-k equal an
// independent computation from the model's logits, and every bad input gets
// its code before anything runs.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/engine/engine.h"
#include "tests/service/edit_test_util.h"
#include "tests/session/session_test_util.h"
#include "tests/testing/status_matchers.h"

namespace romed {
namespace {

using ::romed::testing::EditTestOptions;
using ::romed::testing::MakeEditEngine;
using ::romed::testing::MakeEntry;
using ::romed::testing::QuickEdit;
using ::romed::testing::RandomDelta;
using ::romed::testing::StatusIs;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

class EngineCompareTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::WriteEditTestCheckpoint());
    engine_ = MakeEditEngine(*dir_, EditTestOptions()).release();
    ASSERT_NE(engine_, nullptr);
    edited_ = new std::string(NewSession());
    ASSERT_OK(engine_->Edit(QuickEdit(*edited_)).status());
    random_ = new std::string(NewSession());
    // Random deltas at both layers, strong enough to move every output.
    const Gpt2Config& config = engine_->model().config();
    const int64_t m = 4 * config.n_embd;
    ASSERT_OK(engine_->sessions()
                  .PushEdit(*random_,
                            [&](const SessionState&) -> absl::StatusOr<EditEntry> {
                              return MakeEntry({RandomDelta(0, m, config.n_embd, 11, 2.0),
                                                RandomDelta(1, m, config.n_embd, 12, 2.0)});
                            })
                  .status());
  }
  static void TearDownTestSuite() {
    delete engine_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete edited_;
    delete random_;
  }

  static std::string NewSession() {
    absl::StatusOr<std::shared_ptr<const SessionState>> s = engine_->CreateSession({});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? (*s)->info.id : "";
  }

  static TextCompareRequest Request(std::string a, std::string b) {
    TextCompareRequest request;
    request.session_a = std::move(a);
    request.session_b = std::move(b);
    request.prompts = {"Anna Berg lives in", "The old river"};
    return request;
  }

  // log p(. | prompt) [V] in float64 from the model's logits on `session`,
  // computed here from a plain forward, not through the scorer.
  static std::vector<double> NextTokenLogprobs(const std::string& prompt,
                                               const std::string& session) {
    absl::StatusOr<std::shared_ptr<const EditView>> view = engine_->SessionView(session);
    EXPECT_TRUE(view.ok());
    absl::StatusOr<TokenizeResult> ids = engine_->Tokenize(prompt);
    EXPECT_TRUE(ids.ok());
    RowEdits edits;
    edits.views = {*view};
    ForwardOptions options;
    options.edits = &edits;
    c10::InferenceMode inference_mode;
    const torch::Tensor tokens = torch::tensor(ids->ids, torch::kInt64).unsqueeze(0);
    const torch::Tensor logits = engine_->model().Forward({tokens, torch::Tensor()}, options);
    const torch::Tensor last = logits[0][-1].to(torch::kFloat64);
    std::vector<double> out(last.data_ptr<double>(), last.data_ptr<double>() + last.numel());
    double max = *std::max_element(out.begin(), out.end());
    double sum = 0;
    for (double x : out) sum += std::exp(x - max);
    for (double& x : out) x = x - max - std::log(sum);
    return out;
  }

  static void ExpectScoresEqual(const ScoredContinuation& got, const ScoredContinuation& want) {
    EXPECT_EQ(got.continuation, want.continuation);
    EXPECT_EQ(got.ids, want.ids);
    ASSERT_EQ(got.token_logprobs.size(), want.token_logprobs.size());
    for (size_t k = 0; k < got.token_logprobs.size(); ++k) {
      EXPECT_NEAR(got.token_logprobs[k], want.token_logprobs[k], 1e-5) << got.continuation;
    }
    EXPECT_NEAR(got.total_logprob, want.total_logprob, 1e-5);
    EXPECT_NEAR(got.mean_logprob, want.mean_logprob, 1e-5);
  }

  // Compare's target scores against one Score call per prompt and variant.
  // Without generation (a scoring forward) and with it (the targets scored
  // from the decode's prompt KV cache: prompts of different lengths, so
  // left padding, and targets of 1 and 3 tokens).
  static void ExpectTargetsEqualScore(const std::string& a, const std::string& b,
                                      int64_t new_tokens) {
    TextCompareRequest request = Request(a, b);
    request.targets = {" Oslo", " Rome and Paris"};
    request.max_new_tokens = new_tokens;
    request.ignore_eos = true;
    ASSERT_OK_AND_ASSIGN(CompareResult result, engine_->Compare(request));
    ASSERT_EQ(result.rows.size(), 2u);
    ASSERT_NE(request.prompts[0].size(), request.prompts[1].size());
    EXPECT_EQ(result.scoring_rows, new_tokens == 0 ? 2 * 2 * 2 : 0);
    EXPECT_EQ(result.generation_rows, new_tokens == 0 ? 0 : 2 * 2);
    for (size_t i = 0; i < result.rows.size(); ++i) {
      const CompareRowResult& row = result.rows[i];
      EXPECT_EQ(row.prompt, request.prompts[i]);
      EXPECT_EQ(row.a.generation.has_value(), new_tokens > 0);
      for (const auto& [side, session] : {std::pair{&row.a, a}, std::pair{&row.b, b}}) {
        TextScoreRequest score;
        score.prompt = request.prompts[i];
        score.continuations = request.targets;
        score.session_id = session;
        ASSERT_OK_AND_ASSIGN(ScoreResult want, engine_->Score(score));
        ASSERT_EQ(side->targets.size(), 2u);
        for (size_t j = 0; j < 2; ++j) ExpectScoresEqual(side->targets[j], want.scores[j]);
      }
    }
  }

  static std::string* dir_;
  static Engine* engine_;
  static std::string* edited_;  // one real ROME edit
  static std::string* random_;  // random deltas at both layers
};
std::string* EngineCompareTest::dir_ = nullptr;
Engine* EngineCompareTest::engine_ = nullptr;
std::string* EngineCompareTest::edited_ = nullptr;
std::string* EngineCompareTest::random_ = nullptr;

TEST_F(EngineCompareTest, TargetProbabilitiesEqualScoreOnEachVariant) {
  for (int64_t new_tokens : {0, 3}) {
    SCOPED_TRACE(::testing::Message() << new_tokens << " new tokens");
    ExpectTargetsEqualScore("", *edited_, new_tokens);
    ExpectTargetsEqualScore(*random_, *edited_, new_tokens);
    ExpectTargetsEqualScore(*random_, "", new_tokens);
  }
}

TEST_F(EngineCompareTest, TheEditChangesTheEditedVariantOnly) {
  TextCompareRequest request = Request("", *random_);
  request.targets = {" Oslo"};
  ASSERT_OK_AND_ASSIGN(CompareResult result, engine_->Compare(request));
  EXPECT_EQ(result.deltas_a, 0);
  EXPECT_EQ(result.deltas_b, 2);
  EXPECT_GT(std::abs(result.rows[0].a.targets[0].total_logprob -
                     result.rows[0].b.targets[0].total_logprob),
            1e-3);
}

TEST_F(EngineCompareTest, GenerationsEqualGenerateOnEachVariant) {
  for (float temperature : {0.0f, 1.0f}) {
    TextCompareRequest request = Request("", *random_);
    request.prompts.push_back("A much longer prompt than the others here");
    request.max_new_tokens = 8;
    request.ignore_eos = true;
    request.sampling.temperature = temperature;
    request.sampling.seed = 5;
    ASSERT_OK_AND_ASSIGN(CompareResult result, engine_->Compare(request));
    EXPECT_EQ(result.generation_rows, 6);
    EXPECT_EQ(result.scoring_rows, 0);
    bool any_difference = false;
    for (size_t i = 0; i < result.rows.size(); ++i) {
      const CompareRowResult& row = result.rows[i];
      for (const auto& [side, session] :
           {std::pair{&row.a, std::string()}, std::pair{&row.b, *random_}}) {
        TextGenerateRequest generate;
        generate.prompt = request.prompts[i];
        generate.max_new_tokens = 8;
        generate.ignore_eos = true;
        generate.sampling = request.sampling;
        generate.session_id = session;
        ASSERT_OK_AND_ASSIGN(GenerateResult want, engine_->Generate(generate));
        ASSERT_TRUE(side->generation.has_value());
        EXPECT_EQ(side->generation->ids, want.ids) << "temperature " << temperature;
        EXPECT_EQ(side->generation->text, want.text);
        ASSERT_EQ(side->generation->logprobs.size(), want.logprobs.size());
        for (size_t k = 0; k < want.logprobs.size(); ++k) {
          EXPECT_NEAR(side->generation->logprobs[k], want.logprobs[k], 1e-5);
        }
      }
      any_difference = any_difference || row.a.generation->ids != row.b.generation->ids;
    }
    EXPECT_TRUE(any_difference) << "the random deltas should change some generation, temperature "
                                << temperature;
  }
}

TEST_F(EngineCompareTest, KlEqualsAnIndependentComputation) {
  // From the scoring forward (no generation) and from the decode's first step.
  for (int64_t new_tokens : {0, 4}) {
    TextCompareRequest request = Request(*edited_, *random_);
    request.kl = true;
    request.max_new_tokens = new_tokens;
    ASSERT_OK_AND_ASSIGN(CompareResult result, engine_->Compare(request));
    EXPECT_EQ(result.scoring_rows, new_tokens == 0 ? 4 : 0);
    for (const CompareRowResult& row : result.rows) {
      const std::vector<double> p = NextTokenLogprobs(row.prompt, *edited_);
      const std::vector<double> q = NextTokenLogprobs(row.prompt, *random_);
      double kl = 0;
      for (size_t v = 0; v < p.size(); ++v) kl += std::exp(p[v]) * (p[v] - q[v]);
      ASSERT_TRUE(row.kl.has_value());
      EXPECT_GT(kl, 1e-3);
      EXPECT_NEAR(*row.kl, kl, 1e-5 * std::max(1.0, kl)) << new_tokens << " new tokens";
      EXPECT_TRUE(row.a.top.empty());
      if (new_tokens > 0) {
        EXPECT_FALSE(row.a.generation->first_logprobs.defined());  // not kept in the result
      }
    }
  }
}

TEST_F(EngineCompareTest, BothVariantsEqualIsAllowedAndGivesZeroKl) {
  TextCompareRequest request = Request(*random_, *random_);
  request.kl = true;
  request.targets = {" Oslo"};
  ASSERT_OK_AND_ASSIGN(CompareResult result, engine_->Compare(request));
  for (const CompareRowResult& row : result.rows) {
    EXPECT_EQ(*row.kl, 0.0);
    EXPECT_EQ(row.a.targets[0].token_logprobs, row.b.targets[0].token_logprobs);
  }
}

TEST_F(EngineCompareTest, TopKIsMostLikelyFirstWithTheModelsProbabilities) {
  for (int64_t new_tokens : {0, 2}) {
    TextCompareRequest request = Request("", *random_);
    request.top_k = 5;
    request.max_new_tokens = new_tokens;
    ASSERT_OK_AND_ASSIGN(CompareResult result, engine_->Compare(request));
    for (const CompareRowResult& row : result.rows) {
      for (const auto& [side, session] :
           {std::pair{&row.a, std::string()}, std::pair{&row.b, *random_}}) {
        const std::vector<double> logp = NextTokenLogprobs(row.prompt, session);
        std::vector<int64_t> order(logp.size());
        for (size_t v = 0; v < order.size(); ++v) order[v] = static_cast<int64_t>(v);
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t x, int64_t y) { return logp[x] > logp[y]; });
        ASSERT_EQ(side->top.size(), 5u);
        for (size_t k = 0; k < 5; ++k) {
          EXPECT_EQ(side->top[k].id, order[k]) << "rank " << k;
          EXPECT_NEAR(side->top[k].prob, std::exp(logp[order[k]]), 1e-6);
          EXPECT_FALSE(side->top[k].token.empty());
          if (k > 0) {
            EXPECT_GE(side->top[k - 1].prob, side->top[k].prob);
          }
        }
      }
    }
  }
}

TEST_F(EngineCompareTest, CancelledBeforeTheEndIsCancelled) {
  TextCompareRequest request = Request("", *random_);
  request.max_new_tokens = 8;
  request.kl = true;
  EXPECT_THAT(engine_->Compare(request, [] { return true; }),
              StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(EngineCompareTest, BadInputIsRejectedWithItsCode) {
  const auto expect = [](TextCompareRequest request, absl::StatusCode code,
                         const std::string& message) {
    EXPECT_THAT(engine_->Compare(request), StatusIs(code, HasSubstr(message))) << message;
  };
  TextCompareRequest ok = Request("", *random_);
  ok.kl = true;
  ASSERT_OK(engine_->Compare(ok).status());

  TextCompareRequest r = ok;
  r.session_b = "s-0000000000000000";
  expect(r, absl::StatusCode::kNotFound, "variant b: session \"s-0000000000000000\" not found");
  r = ok;
  r.session_a = "nope";
  expect(r, absl::StatusCode::kNotFound, "variant a");
  r = ok;
  r.prompts.clear();
  expect(r, kInvalid, "prompts is empty");
  r = ok;
  r.prompts.assign(65, "x");  // EditTestOptions: --max_continuations 64
  expect(r, kInvalid, "65 prompts; at most 64 are allowed (--max_continuations)");
  r = ok;
  r.prompts.assign(33, "x");
  r.targets = {" a", " b"};
  expect(r, kInvalid, "33 prompts x 2 targets = 66");
  r = ok;
  r.prompts[1] = "";
  expect(r, kInvalid, "prompts[1] is empty");
  r = ok;
  r.prompts[0] = std::string(97, 'x');  // --max_prompt_tokens 96
  expect(r, kInvalid, "prompts[0]: prompt is 97 tokens; the limit is 96 (--max_prompt_tokens)");
  r = ok;
  r.prompts[0] = "bad \xff utf8";
  expect(r, kInvalid, "prompts[0] is not valid UTF-8");
  r = ok;
  r.targets = {" Oslo", ""};
  expect(r, kInvalid, "targets[1] is empty");
  r = ok;
  r.prompts[0] = std::string(90, 'x');
  r.targets = {std::string(40, 'y')};  // 130 > context 128
  expect(r, kInvalid, "prompts[0] (90 tokens) + targets[0] (40 tokens) exceeds");
  r = ok;
  r.top_k = -1;
  expect(r, kInvalid, "top_k is -1; it must be 0..100");
  r = ok;
  r.top_k = 101;
  expect(r, kInvalid, "top_k is 101");
  r = ok;
  r.max_new_tokens = 17;  // --max_new_tokens 16
  expect(r, kInvalid, "max_new_tokens is 17; it must be 0 (no generation)..16");
  r = ok;
  r.max_new_tokens = 16;
  r.prompts[0] = std::string(120, 'x');
  r.kl = false;
  expect(r, kInvalid, "prompt is 120 tokens; the limit is 96");
  r = ok;
  r.kl = false;
  expect(r, kInvalid, "nothing to compare");
  r = ok;
  r.sampling.temperature = -1;
  expect(r, kInvalid, "temperature");
}

TEST_F(EngineCompareTest, PromptsThatFillTheContextCannotGenerate) {
  EngineOptions options = EditTestOptions();
  options.limits.max_prompt_tokens = 128;
  std::unique_ptr<Engine> engine = MakeEditEngine(*dir_, options);
  ASSERT_NE(engine, nullptr);
  TextCompareRequest request;
  request.prompts = {std::string(126, 'x')};
  request.max_new_tokens = 4;
  EXPECT_THAT(engine->Compare(request),
              StatusIs(kInvalid,
                       HasSubstr("prompts[0]: prompt (126 tokens) + max_new_tokens (4) exceeds")));
  request.max_new_tokens = 0;
  request.kl = true;
  request.prompts = {std::string(128, 'x')};
  ASSERT_OK_AND_ASSIGN(CompareResult result, engine->Compare(request));
  EXPECT_EQ(*result.rows[0].kl, 0.0);
}

}  // namespace
}  // namespace romed
