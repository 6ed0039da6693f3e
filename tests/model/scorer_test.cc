// Scoring on a tiny random checkpoint, against log-softmax of a separate
// forward over each prompt + continuation alone.
#include "server/model/scorer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "server/model/checkpoint.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;

class ScorerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<Checkpoint> checkpoint =
        LoadCheckpoint(romed::testing::WriteTinyCheckpoint(romed::testing::TinyConfig(), 9));
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    model_ = std::make_shared<const Gpt2Model>(checkpoint->config, checkpoint->weights);
    torch::manual_seed(4);
    const Gpt2Config& config = model_->config();
    edit_ =
        EditView::Build({{1, torch::randn({config.mlp_width()}), torch::randn({config.n_embd})},
                         {0, torch::randn({config.mlp_width()}), torch::randn({config.n_embd})}},
                        model_->device(), model_->dtype());
  }
  static void TearDownTestSuite() {
    model_.reset();
    edit_.reset();
  }

  // log p(continuation[i] | prompt, continuation[<i]) from one unbatched,
  // unpadded forward over the concatenation.
  static std::vector<float> DirectLogprobs(const std::vector<int64_t>& prompt,
                                           const std::vector<int64_t>& continuation,
                                           const std::shared_ptr<const EditView>& edits) {
    c10::InferenceMode inference_mode;
    std::vector<int64_t> ids = prompt;
    ids.insert(ids.end(), continuation.begin(), continuation.end());
    RowEdits row_edits{{edits}, {}};
    ForwardOptions options;
    options.edits = edits ? &row_edits : nullptr;
    const int64_t t = static_cast<int64_t>(ids.size());
    const torch::Tensor logprobs = torch::log_softmax(
        model_->Forward({torch::tensor(ids).view({1, t}), torch::Tensor()}, options)[0], -1);
    std::vector<float> out;
    for (size_t i = 0; i < continuation.size(); ++i) {
      out.push_back(logprobs[prompt.size() + i - 1][continuation[i]].item<float>());
    }
    return out;
  }

  static void ExpectMatchesDirectForwards(const std::shared_ptr<const EditView>& edits) {
    absl::StatusOr<std::vector<ContinuationScore>> scores =
        ScoreContinuations(*model_, kPrompt, kContinuations, edits);
    ASSERT_TRUE(scores.ok()) << scores.status();
    ASSERT_THAT(*scores, SizeIs(kContinuations.size()));
    for (size_t c = 0; c < kContinuations.size(); ++c) {
      const ContinuationScore& score = (*scores)[c];
      EXPECT_EQ(score.ids, kContinuations[c]);
      const std::vector<float> expected = DirectLogprobs(kPrompt, kContinuations[c], edits);
      ASSERT_THAT(score.token_logprobs, SizeIs(expected.size()));
      double total = 0.0;
      for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_NEAR(score.token_logprobs[i], expected[i], 1e-5)
            << "continuation " << c << " token " << i;
        total += expected[i];
      }
      EXPECT_NEAR(score.total_logprob, total, 1e-4) << "continuation " << c;
    }
  }

  static inline const std::vector<int64_t> kPrompt = {84, 104, 101, 32, 69, 105, 102};
  // Different lengths, so shorter rows are right-padded.
  static inline const std::vector<std::vector<int64_t>> kContinuations = {
      {32, 80, 97, 114, 105, 115}, {32}, {32, 82, 111, 109, 101}, {256, 0, 255}};
  static inline std::shared_ptr<const Gpt2Model> model_;
  static inline std::shared_ptr<const EditView> edit_;
};

TEST_F(ScorerTest, TokenLogprobsMatchADirectForwardOverEachRowAlone) {
  ExpectMatchesDirectForwards(nullptr);
}

TEST_F(ScorerTest, TokenLogprobsMatchADirectForwardUnderAnEditView) {
  ExpectMatchesDirectForwards(edit_);
}

TEST_F(ScorerTest, AnEditViewChangesTheScores) {
  absl::StatusOr<std::vector<ContinuationScore>> base =
      ScoreContinuations(*model_, kPrompt, kContinuations);
  absl::StatusOr<std::vector<ContinuationScore>> edited =
      ScoreContinuations(*model_, kPrompt, kContinuations, edit_);
  ASSERT_TRUE(base.ok() && edited.ok());
  EXPECT_GT(std::abs((*base)[0].total_logprob - (*edited)[0].total_logprob), 1e-3);
}

TEST_F(ScorerTest, NoContinuationsGiveNoScores) {
  absl::StatusOr<std::vector<ContinuationScore>> scores = ScoreContinuations(*model_, kPrompt, {});
  ASSERT_TRUE(scores.ok()) << scores.status();
  EXPECT_THAT(*scores, SizeIs(0));
}

TEST_F(ScorerTest, InvalidInputsAreRejectedNamingTheProblem) {
  const int64_t context = model_->config().n_positions;
  EXPECT_THAT(ScoreContinuations(*model_, {}, {{1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("prompt is empty")));
  EXPECT_THAT(ScoreContinuations(*model_, kPrompt, {{1}, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("continuation 1 is empty")));
  EXPECT_THAT(ScoreContinuations(*model_, kPrompt, {{1, 300}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocabulary")));
  EXPECT_THAT(ScoreContinuations(*model_, {-4}, {{1}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocabulary")));
  EXPECT_THAT(ScoreContinuations(*model_, kPrompt, {std::vector<int64_t>(context, 1)}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("context")));
}

// ScoreRows: rows of different prompts, each on its own view (base, edit_ or
// a second view), in one forward, equal the direct forward of each row alone.
TEST_F(ScorerTest, MixedRowsMatchADirectForwardOfEachRowOnItsView) {
  torch::manual_seed(11);
  const Gpt2Config& config = model_->config();
  const std::shared_ptr<const EditView> other = EditView::Build(
      {{1, torch::randn({config.mlp_width()}), torch::randn({config.n_embd})}}, model_->device(),
      model_->dtype());
  const std::vector<std::shared_ptr<const EditView>> views = {edit_, other};
  const std::vector<int64_t> short_prompt = {72, 105};
  std::vector<ScoreRow> rows;
  for (int view : {-1, 0, 1}) {
    for (size_t c = 0; c < kContinuations.size(); ++c) {
      rows.push_back({c % 2 == 0 ? kPrompt : short_prompt, kContinuations[c], view});
    }
    rows.push_back({kPrompt, {}, view});  // only the next-token distribution
  }
  ASSERT_OK_AND_ASSIGN(std::vector<RowScore> scores, ScoreRows(*model_, rows, views, true));
  ASSERT_THAT(scores, SizeIs(rows.size()));
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::shared_ptr<const EditView> view = rows[r].view < 0 ? nullptr : views[rows[r].view];
    const std::vector<float> expected =
        DirectLogprobs(rows[r].prompt_ids, rows[r].continuation_ids, view);
    ASSERT_THAT(scores[r].score.token_logprobs, SizeIs(expected.size()));
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_NEAR(scores[r].score.token_logprobs[i], expected[i], 1e-5) << "row " << r;
    }
    // The next-token distribution after the prompt, at a few tokens.
    ASSERT_EQ(scores[r].next_token_logprobs.numel(), config.vocab_size);
    for (int64_t v : {int64_t{0}, int64_t{32}, config.vocab_size - 1}) {
      const std::vector<float> direct = DirectLogprobs(rows[r].prompt_ids, {v}, view);
      EXPECT_NEAR(scores[r].next_token_logprobs[v].item<float>(), direct[0], 1e-5) << "row " << r;
    }
  }
}

TEST_F(ScorerTest, MixedRowsRejectBadRowsNamingThem) {
  EXPECT_THAT(ScoreRows(*model_, {}, {}, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no rows")));
  EXPECT_THAT(ScoreRows(*model_, {{kPrompt, {1}, -1}, {{}, {1}, -1}}, {}, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row 1: prompt is empty")));
  EXPECT_THAT(ScoreRows(*model_, {{kPrompt, {1}, 1}}, {edit_}, false),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("row 0 names edit view 1 of 1")));
  EXPECT_THAT(ScoreRows(*model_, {{kPrompt, {300}, -1}}, {}, false),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocabulary")));
}

}  // namespace
}  // namespace romed
