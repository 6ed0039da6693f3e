// Autoregressive generation over Gpt2Model with a KV cache, for one request
// or a batch of requests (left-padded; each row keeps its own sampling
// parameters, random generator, stop sequences and edit view).
#ifndef ROMED_SERVER_MODEL_GENERATOR_H_
#define ROMED_SERVER_MODEL_GENERATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/model/gpt2_model.h"
#include "server/model/rank_one.h"
#include "server/model/sampling.h"
#include "server/model/scorer.h"
#include "server/model/tokenizer.h"

namespace romed {

enum class FinishReason { kLength, kStop, kEos, kCancelled };
std::string_view FinishReasonName(FinishReason reason);  // "length", "stop", ...

struct GenerateRequest {
  std::vector<int64_t> prompt_ids;       // non-empty; prompt + max_new_tokens <= P
  int64_t max_new_tokens = 16;           // >= 1
  SamplingParams sampling;
  std::vector<std::string> stop;         // stop when the generated text contains one;
                                         // the stop text is excluded from `text`
  bool stop_at_eos = true;               // stop on the tokenizer's eos id
  std::shared_ptr<const EditView> edits; // null = base model
  // Also return the first step's next-token distribution
  // (GenerateResult::first_logprobs): Compare reads top-k and KL from it.
  bool keep_first_logprobs = false;
  // Also score these continuations after the prompt
  // (GenerateResult::continuation_scores, same order), from the prompt's KV
  // cache: the prompt is not run again. Each must be non-empty, in the
  // vocabulary, and fit the context after the prompt (as Score's).
  std::vector<std::vector<int64_t>> score_continuations;
};

// One decoded step, passed to the streaming callback.
struct GeneratedToken {
  int64_t id = 0;
  float logprob = 0.0f;
  std::string text;  // text that became final with this token (may be empty
                     // while a UTF-8 character or a possible stop is pending)
};
// Return false to cancel the request (finish reason kCancelled).
using TokenCallback = std::function<bool(const GeneratedToken&)>;

struct GenerateResult {
  std::string text;               // generated text (stop sequence excluded)
  std::vector<int64_t> ids;       // generated ids (including the stop's tokens)
  std::vector<float> logprobs;    // one per id
  FinishReason finish = FinishReason::kLength;
  int64_t prompt_tokens = 0;
  double time_to_first_token_s = 0.0;
  double total_time_s = 0.0;
  // log p(. | prompt) [V] float32 on the CPU: log-softmax of the first
  // step's logits (temperature 1, untruncated) when the request set
  // keep_first_logprobs; undefined otherwise.
  torch::Tensor first_logprobs;
  // One per GenerateRequest::score_continuations: log p(c | prompt) per
  // token, as ScoreContinuations computes them.
  std::vector<ContinuationScore> continuation_scores;
};

class Generator {
 public:
  Generator(std::shared_ptr<const Gpt2Model> model, std::shared_ptr<const Gpt2Tokenizer> tokenizer);

  // Runs `requests` as one batch, or as consecutive batches where together
  // they would not fit the context (rows are left-padded to the longest
  // prompt and run for the most new tokens: max(prompt) + max(max_new_tokens)
  // <= n_positions per batch). `callbacks` is empty or one per request.
  // InvalidArgumentError for a request that breaks the limits above (nothing
  // runs); InternalError (with context) if the forward pass fails.
  absl::StatusOr<std::vector<GenerateResult>> GenerateBatch(
      const std::vector<GenerateRequest>& requests,
      const std::vector<TokenCallback>& callbacks = {}) const;

  absl::StatusOr<GenerateResult> Generate(const GenerateRequest& request,
                                          const TokenCallback& on_token = nullptr) const;

 private:
  std::shared_ptr<const Gpt2Model> model_;
  std::shared_ptr<const Gpt2Tokenizer> tokenizer_;
};

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_GENERATOR_H_
