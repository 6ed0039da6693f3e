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

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_SCORER_H_
