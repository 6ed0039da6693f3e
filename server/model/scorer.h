// Scoring: log-probabilities of given continuations after a prompt, the
// measurement behind ROME's efficacy / paraphrase / neighbourhood scores.
#ifndef ROMED_SERVER_MODEL_SCORER_H_
#define ROMED_SERVER_MODEL_SCORER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "server/model/gpt2_model.h"
#include "server/model/rank_one.h"

namespace romed {

struct ContinuationScore {
  std::vector<int64_t> ids;             // continuation tokens
  std::vector<float> token_logprobs;    // log p(ids[i] | prompt, ids[<i]), natural log
  double total_logprob = 0.0;           // sum of token_logprobs
};

// Scores every continuation after `prompt_ids` in one batched forward (rows
// right-padded). InvalidArgumentError for an empty prompt or continuation
// or a row longer than the context. `edits` null = base model.
absl::StatusOr<std::vector<ContinuationScore>> ScoreContinuations(
    const Gpt2Model& model, const std::vector<int64_t>& prompt_ids,
    const std::vector<std::vector<int64_t>>& continuations,
    const std::shared_ptr<const EditView>& edits = nullptr);

// One row of a mixed batch (Compare: several prompts, each under two edit
// views, in one forward). `continuation_ids` may be empty: the row then only
// yields the next-token distribution after the prompt.
struct ScoreRow {
  std::vector<int64_t> prompt_ids;        // non-empty
  std::vector<int64_t> continuation_ids;  // may be empty
  int view = -1;                          // index into `views` below; -1 = base model
};

struct RowScore {
  ContinuationScore score;  // of continuation_ids (empty for an empty one)
  // log p(. | prompt) [V] float32 on the CPU (natural log, full vocabulary),
  // when next_token_logprobs was asked for; undefined otherwise.
  torch::Tensor next_token_logprobs;
};

// Scores every row in one batched forward (rows right-padded; each row runs
// its own edit view, as RowEdits). Each row's numbers equal
// ScoreContinuations() of its prompt and continuation on its view up to
// float32 round-off of the different batch shape. InvalidArgumentError for
// no rows, an empty prompt, a token outside the vocabulary, a row longer
// than the context or a view index outside [-1, views.size()).
absl::StatusOr<std::vector<RowScore>> ScoreRows(
    const Gpt2Model& model, const std::vector<ScoreRow>& rows,
    const std::vector<std::shared_ptr<const EditView>>& views, bool next_token_logprobs);

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_SCORER_H_
