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

}  // namespace
}  // namespace romed
