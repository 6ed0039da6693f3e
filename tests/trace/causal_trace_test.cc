// The batched causal trace against the paper's per-(token, layer) loop
// (reference_trace.h) on a tiny random model, plus its contract: validation,
// cancellation, progress, seeded noise, edited models.
#include "server/trace/causal_trace.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/model/checkpoint.h"
#include "server/trace/noise.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"
#include "tests/trace/reference_trace.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;
using ::testing::HasSubstr;

constexpr double kTolerance = 1e-5;
using Range = std::pair<int64_t, int64_t>;

class CausalTraceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Gpt2Config config = romed::testing::TinyConfig();
    config.n_layer = 4;  // windows of 3 clip at both ends
    auto checkpoint = LoadCheckpoint(romed::testing::WriteTinyCheckpoint(config, 7));
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    tokenizer_ = new std::shared_ptr<const Gpt2Tokenizer>(checkpoint->tokenizer);
    // GPT-2's init gives a near-uniform next-token distribution (p ~ 1/V),
    // where a 1e-5 tolerance would prove little; larger (tied) embeddings
    // make it peaked, so scores span a wide range.
    checkpoint->weights.wte = checkpoint->weights.wte * 20.0;
    model_ = new Gpt2Model(checkpoint->config, checkpoint->weights);
  }
  static void TearDownTestSuite() {
    delete model_;
    delete tokenizer_;
  }

  // "a Bob Ka was", one token per byte (T = 12), subject " Bob Ka" [1, 8).
  static TraceInput Input() {
    TraceInput input;
    for (char c : std::string("a Bob Ka was")) input.tokens.push_back(static_cast<unsigned char>(c));
    input.subject_begin = 1;  // " Bob Ka"
    input.subject_end = 8;
    return input;
  }

  // "a was Bob Ka", subject " Bob Ka" [5, 12) ends the prompt, so the noise
  // reaches the last token and moves p(answer) a lot on a random model.
  static TraceInput SensitiveInput() {
    TraceInput input;
    for (char c : std::string("a was Bob Ka")) input.tokens.push_back(static_cast<unsigned char>(c));
    input.subject_begin = 5;
    input.subject_end = 12;
    return input;
  }

  static TraceOptions Options() {
    TraceOptions options;
    options.samples = 4;
    options.window = 3;
    options.noise = {NoiseScale::Mode::kAbsolute, 2.0};  // 5 x the embedding std
    options.seed = 11;
    return options;
  }

  static torch::Tensor NoiseFor(const TraceInput& input, const TraceOptions& options) {
    return SubjectNoise(options.samples, input.subject_end - input.subject_begin,
                        model_->config().n_embd, options.noise.value, options.seed,
                        torch::TensorOptions().dtype(model_->dtype()));
  }

  // Asserts each grid of `result` equals the reference to kTolerance.
  static void ExpectMatchesReference(const TraceInput& input, const TraceOptions& options,
                                     const TraceResult& result, const RowEdits* edits = nullptr) {
    for (const ScoreGrid& grid : result.scores) {
      romed::testing::ReferenceTrace reference = romed::testing::RunReferenceTrace(
          *model_, input.tokens, input.subject_begin, input.subject_end, grid.kind,
          result.window, NoiseFor(input, options), input.answer_token.value_or(-1),
          options.sever, edits);
      EXPECT_EQ(result.answer_token, reference.answer);
      EXPECT_NEAR(result.high_score, reference.high, kTolerance);
      EXPECT_NEAR(result.low_score, reference.low, kTolerance);
      if (input.subject_end == static_cast<int64_t>(input.tokens.size())) {
        // The noise must matter, or equal scores would prove little.
        EXPECT_GT(result.high_score - result.low_score, 0.2);
      }
      double max_diff = 0;
      for (size_t t = 0; t < grid.values.size(); ++t) {
        for (size_t l = 0; l < grid.values[t].size(); ++l) {
          max_diff = std::max(max_diff, std::abs(grid.values[t][l] - reference.scores[t][l]));
        }
      }
      EXPECT_LT(max_diff, kTolerance) << TraceKindName(grid.kind);
      std::cout << "[ reference ] " << TraceKindName(grid.kind) << " sever "
                << SeverModeName(options.sever) << ": max |batched - reference| = " << max_diff
                << "; reference " << reference.forwards << " forwards / " << reference.rows
                << " rows\n";
    }
    std::cout << "[ scores    ] clean p " << result.high_score << ", corrupted p "
              << result.low_score << "\n";
    std::cout << "[ batched   ] " << result.cost.forwards << " forwards / " << result.cost.rows
              << " rows / " << result.cost.token_rows << " token-rows, largest batch "
              << result.cost.max_batch_rows << ", " << result.cost.skipped << " of "
              << result.cost.restorations << " cells skipped\n";
  }

  static Gpt2Model* model_;
  static std::shared_ptr<const Gpt2Tokenizer>* tokenizer_;
};

Gpt2Model* CausalTraceTest::model_ = nullptr;
std::shared_ptr<const Gpt2Tokenizer>* CausalTraceTest::tokenizer_ = nullptr;

TEST(TraceWindowTest, DefaultScalesTheirTenOfFortyEight) {
  EXPECT_EQ(DefaultTraceWindow(48), 10);
  EXPECT_EQ(DefaultTraceWindow(24), 5);
  EXPECT_EQ(DefaultTraceWindow(12), 3);
  EXPECT_EQ(DefaultTraceWindow(4), 1);
  EXPECT_EQ(DefaultTraceWindow(1), 1);
}

TEST(TraceWindowTest, CentredAndClippedAsTheReference) {
  EXPECT_EQ(WindowLayers(0, 10, 48), Range(0, 5));
  EXPECT_EQ(WindowLayers(20, 10, 48), Range(15, 25));
  EXPECT_EQ(WindowLayers(47, 10, 48), Range(42, 48));
  EXPECT_EQ(WindowLayers(1, 3, 4), Range(0, 3));
  EXPECT_EQ(WindowLayers(2, 1, 4), Range(2, 3));
}

TEST_F(CausalTraceTest, BatchedEqualsTheReferenceForAllThreeKinds) {
  TraceOptions options = Options();
  auto result = CausalTrace(*model_, Input(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_EQ(result->scores.size(), 3u);
  ExpectMatchesReference(Input(), options, *result);
  // 12 tokens x 4 layers x 3 kinds would be 144 reference forwards.
  EXPECT_LE(result->cost.forwards, 2 + 12);
  auto sensitive = CausalTrace(*model_, SensitiveInput(), options);
  ASSERT_TRUE(sensitive.ok()) << sensitive.status();
  ExpectMatchesReference(SensitiveInput(), options, *sensitive);
}

TEST_F(CausalTraceTest, SmallBatchesGiveTheSameScores) {
  TraceOptions options = Options();
  options.max_batch_rows = 9;  // two restorations of 4 samples per forward
  auto small = CausalTrace(*model_, Input(), options);
  auto large = CausalTrace(*model_, Input(), Options());
  ASSERT_TRUE(small.ok() && large.ok());
  EXPECT_EQ(small->cost.max_batch_rows, 8);
  EXPECT_GT(small->cost.forwards, large->cost.forwards);
  for (size_t k = 0; k < small->scores.size(); ++k) {
    for (size_t t = 0; t < small->scores[k].values.size(); ++t) {
      for (size_t l = 0; l < small->scores[k].values[t].size(); ++l) {
        EXPECT_NEAR(small->scores[k].values[t][l], large->scores[k].values[t][l], kTolerance);
      }
    }
  }
}

// With no per-block overhead in the cost model, every group of restorations
// starts at its first restored layer from the corrupted run's hidden state:
// more, shorter forwards, the same scores (also when severing, whose frozen
// values sit after the restored layer).
TEST_F(CausalTraceTest, ForwardsStartingAtTheFirstRestoredLayerEqualTheReference) {
  TraceOptions options = Options();
  options.block_overhead_macs = 0;
  auto split = CausalTrace(*model_, SensitiveInput(), options);
  ASSERT_TRUE(split.ok()) << split.status();
  ExpectMatchesReference(SensitiveInput(), options, *split);
  TraceOptions one_group = Options();
  one_group.block_overhead_macs = 1e18;
  auto joined = CausalTrace(*model_, SensitiveInput(), one_group);
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_GT(split->cost.forwards, joined->cost.forwards);
  // Later starts skip blocks, so fewer token-rows x layers; rows are the same.
  EXPECT_EQ(split->cost.rows, joined->cost.rows);
  options.kinds = {TraceKind::kState};
  options.sever = SeverMode::kMlp;
  auto severed = CausalTrace(*model_, Input(), options);
  ASSERT_TRUE(severed.ok()) << severed.status();
  ExpectMatchesReference(Input(), options, *severed);
  options.block_overhead_macs = -1;
  EXPECT_THAT(CausalTrace(*model_, Input(), options).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("block_overhead_macs")));
}

TEST_F(CausalTraceTest, SeveringMlpEqualsTheReference) {
  TraceOptions options = Options();
  options.kinds = {TraceKind::kState};
  options.sever = SeverMode::kMlp;
  auto result = CausalTrace(*model_, SensitiveInput(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectMatchesReference(SensitiveInput(), options, *result);
  auto plain = CausalTrace(*model_, SensitiveInput(), Options());
  ASSERT_TRUE(plain.ok());
  EXPECT_NE(result->scores[0].values, plain->scores[0].values);
}

TEST_F(CausalTraceTest, SeveringAttentionEqualsTheReference) {
  TraceOptions options = Options();
  options.kinds = {TraceKind::kState};
  options.sever = SeverMode::kAttn;
  auto result = CausalTrace(*model_, SensitiveInput(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  ExpectMatchesReference(SensitiveInput(), options, *result);
}

TEST_F(CausalTraceTest, AGivenAnswerIsTracedInsteadOfTheTopToken) {
  TraceInput input = Input();
  input.answer_token = 'x';
  TraceOptions options = Options();
  options.kinds = {TraceKind::kMlp};
  auto result = CausalTrace(*model_, input, options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->answer_token, 'x');
  ExpectMatchesReference(input, options, *result);
}

TEST_F(CausalTraceTest, AnEditedModelIsTraced) {
  const int64_t M = model_->config().mlp_width(), C = model_->config().n_embd;
  torch::manual_seed(3);
  auto view = EditView::Build({{1, torch::randn({M}), torch::randn({C}) * 2.0}}, torch::kCPU,
                              torch::kFloat32);
  TraceOptions options = Options();
  options.kinds = {TraceKind::kState, TraceKind::kMlp};
  options.edit_view = view;
  auto edited = CausalTrace(*model_, SensitiveInput(), options);
  ASSERT_TRUE(edited.ok()) << edited.status();
  RowEdits edits;
  edits.views = {view};
  ExpectMatchesReference(SensitiveInput(), options, *edited, &edits);
  auto base = CausalTrace(*model_, SensitiveInput(), Options());
  ASSERT_TRUE(base.ok());
  EXPECT_NE(edited->high_score, base->high_score);
}

TEST_F(CausalTraceTest, SameSeedSameScoresOtherSeedOtherNoise) {
  TraceOptions options = Options();
  options.kinds = {TraceKind::kState};
  auto first = CausalTrace(*model_, Input(), options);
  auto again = CausalTrace(*model_, Input(), options);
  options.seed = 12;
  auto other = CausalTrace(*model_, Input(), options);
  ASSERT_TRUE(first.ok() && again.ok() && other.ok());
  EXPECT_EQ(first->scores[0].values, again->scores[0].values);
  EXPECT_EQ(first->low_score, again->low_score);
  EXPECT_NE(first->low_score, other->low_score);
  auto options_f = torch::TensorOptions().dtype(torch::kFloat32);
  EXPECT_TRUE(torch::equal(SubjectNoise(3, 2, 5, 1.0, 9, options_f),
                           SubjectNoise(3, 2, 5, 1.0, 9, options_f)));
  EXPECT_FALSE(torch::equal(SubjectNoise(3, 2, 5, 1.0, 9, options_f),
                            SubjectNoise(3, 2, 5, 1.0, 10, options_f)));
}

TEST_F(CausalTraceTest, NoiseScalesWithTheEmbeddingStd) {
  TraceOptions options = Options();
  options.kinds = {TraceKind::kState};
  options.noise = {};  // 3 x std
  auto vocabulary = CausalTrace(*model_, Input(), options);
  ASSERT_TRUE(vocabulary.ok());
  auto std = VocabularyEmbeddingStd(*model_);
  ASSERT_TRUE(std.ok());
  EXPECT_NEAR(vocabulary->noise_sigma, 3 * *std, 1e-9);
  EXPECT_EQ(vocabulary->noise_basis, NoiseBasis::kVocabularyEmbeddings);
  options.embedding_std = 0.1;
  auto subjects = CausalTrace(*model_, Input(), options);
  ASSERT_TRUE(subjects.ok());
  EXPECT_NEAR(subjects->noise_sigma, 0.3, 1e-12);
  EXPECT_EQ(subjects->noise_basis, NoiseBasis::kSubjectEmbeddings);
  auto subject_std = SubjectEmbeddingStd(*model_, **tokenizer_, {"Bob Ka", "Ann"});
  ASSERT_TRUE(subject_std.ok());
  EXPECT_GT(*subject_std, 0);
}

TEST_F(CausalTraceTest, EmbeddingStdIsComputedOncePerModel) {
  EmbeddingStdCache cache;
  int calls = 0;
  auto compute = [&]() -> absl::StatusOr<double> { return ++calls * 1.0; };
  EXPECT_EQ(*cache.GetOrCompute("a", compute), 1.0);
  EXPECT_EQ(*cache.GetOrCompute("a", compute), 1.0);
  EXPECT_EQ(*cache.GetOrCompute("b", compute), 2.0);
  EXPECT_EQ(calls, 2);
}

TEST_F(CausalTraceTest, CancellationStopsBetweenForwards) {
  TraceOptions options = Options();
  int checks = 0;
  options.check_cancelled = [&]() -> absl::Status {
    return ++checks >= 4 ? absl::CancelledError("client went away") : absl::OkStatus();
  };
  int64_t progressed = 0;
  options.progress = [&](int64_t done, int64_t total) { progressed = done; };
  EXPECT_THAT(CausalTrace(*model_, Input(), options).status(),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("client went away")));
  EXPECT_EQ(checks, 4);
  EXPECT_EQ(progressed, 3);
  options.check_cancelled = [] { return absl::DeadlineExceededError("deadline"); };
  EXPECT_THAT(CausalTrace(*model_, Input(), options).status(),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(CausalTraceTest, ProgressCountsEveryForwardUpToTheTotal) {
  TraceOptions options = Options();
  std::vector<std::pair<int64_t, int64_t>> calls;
  options.progress = [&](int64_t done, int64_t total) { calls.emplace_back(done, total); };
  auto result = CausalTrace(*model_, Input(), options);
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(static_cast<int64_t>(calls.size()), result->cost.forwards);
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_EQ(calls[i].first, static_cast<int64_t>(i) + 1);
    EXPECT_EQ(calls[i].second, result->cost.forwards);
  }
}

TEST_F(CausalTraceTest, BadInputIsRejectedWithInvalidArgument) {
  auto expect_invalid = [&](const TraceInput& input, const TraceOptions& options,
                            const std::string& message) {
    EXPECT_THAT(CausalTrace(*model_, input, options).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)));
  };
  TraceInput empty;
  expect_invalid(empty, Options(), "empty");
  TraceInput whole = Input();
  whole.subject_begin = 0;
  whole.subject_end = static_cast<int64_t>(whole.tokens.size());
  expect_invalid(whole, Options(), "whole prompt");
  TraceInput outside = Input();
  outside.subject_end = 99;
  expect_invalid(outside, Options(), "subject");
  TraceInput too_long = Input();
  too_long.tokens.assign(65, 'a');
  expect_invalid(too_long, Options(), "at most 64");
  TraceOptions limited = Options();
  limited.max_prompt_tokens = 5;
  expect_invalid(Input(), limited, "at most 5");
  TraceOptions window = Options();
  window.window = 0;
  expect_invalid(Input(), window, "window 0");
  window.window = 5;
  expect_invalid(Input(), window, "window 5 is outside [1, 4]");
  TraceOptions samples = Options();
  samples.samples = 0;
  expect_invalid(Input(), samples, "samples 0");
  samples.samples = kMaxTraceSamples + 1;
  expect_invalid(Input(), samples, "samples 65");
  TraceOptions noise = Options();
  noise.noise.value = -1;
  expect_invalid(Input(), noise, "noise");
  TraceOptions kinds = Options();
  kinds.kinds = {};
  expect_invalid(Input(), kinds, "no kinds");
  kinds.kinds = {TraceKind::kMlp, TraceKind::kMlp};
  expect_invalid(Input(), kinds, "twice");
  TraceInput answer = Input();
  answer.answer_token = 257;
  expect_invalid(answer, Options(), "answer token");
}

TEST_F(CausalTraceTest, TracePromptLocatesTheSubjectAndTheTarget) {
  TraceOptions options = Options();
  options.kinds = {TraceKind::kState};
  options.target = "xyz";
  auto result = TracePrompt(*model_, **tokenizer_, "a Bob Ka was", "Bob Ka", options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->subject_begin, 2);  // byte-level: "B" is token 2
  EXPECT_EQ(result->subject_end, 8);
  EXPECT_EQ(result->answer_token, 'x');
  EXPECT_EQ(result->answer_text, "x");
  ASSERT_EQ(result->token_texts.size(), 12u);
  EXPECT_EQ(result->token_texts[2], "B");
}

TEST_F(CausalTraceTest, TracePromptRejectsBadPrompts) {
  const Gpt2Tokenizer& tokenizer = **tokenizer_;
  EXPECT_THAT(TracePrompt(*model_, tokenizer, "", "Bob", Options()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("prompt is empty")));
  EXPECT_THAT(TracePrompt(*model_, tokenizer, "a Bob was", "Ann", Options()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not occur")));
  EXPECT_THAT(TracePrompt(*model_, tokenizer, "Bob", "Bob", Options()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("whole prompt")));
  TraceOptions empty_target = Options();
  empty_target.target = "";
  EXPECT_THAT(TracePrompt(*model_, tokenizer, "a Bob was", "Bob", empty_target).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target")));
}

}  // namespace
}  // namespace romed
