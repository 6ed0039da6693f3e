// Evaluation of a trained fact model: does its greedy next token name the
// right object, and how does it score the CounterFact cases before any edit?
//
// Objects are single tokens with a leading space (" Paris"), so "the model
// answers" means argmax of the next-token logits == that token, and
// "P(new) > P(true)" compares two logits of one distribution.
// Prompts are scored without a start token (as ROME's code feeds GPT-2)
// unless `with_start_token` says otherwise.
//
// Runs under torch::NoGradGuard. Thread-compatible (no shared state).
#ifndef ROMED_TOOLS_FACT_MODEL_EVALUATION_H_
#define ROMED_TOOLS_FACT_MODEL_EVALUATION_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "server/model/gpt2_model.h"
#include "server/model/tokenizer.h"
#include "tools/fact_model/counterfact.h"
#include "tools/fact_model/world.h"

namespace romed::fact_model {

using TokenIds = std::vector<int64_t>;

// The id of `word` if the tokenizer encodes it as exactly one token;
// FailedPreconditionError naming the word and its pieces otherwise.
absl::StatusOr<int64_t> SingleTokenId(const Gpt2Tokenizer& tokenizer, const std::string& word);

// Next-token logits after each prompt: [N, V] float32 on the CPU. Prompts of
// equal length share a forward pass (at most `max_batch` rows).
torch::Tensor NextTokenLogits(const Gpt2Model& model, const std::vector<TokenIds>& prompts,
                              int64_t max_batch = 512);

struct FactEvaluation {
  // predictions[f][p]: greedy next token for world.facts()[f] in phrasing p
  // (no start token).
  std::vector<std::array<int64_t, kPhrasingsPerRelation>> predictions;
  std::vector<bool> correct_trained;  // per fact: right in every trained phrasing
  double trained_accuracy = 0;        // share of (fact, trained phrasing) answered right
  double held_out_accuracy = 0;       // share of facts answered right in the held-out phrasing
  double trained_accuracy_with_start = 0;   // the same with the start token first
  double held_out_accuracy_with_start = 0;
  // By phrasing p (no start token): share of facts answered right among those
  // trained on p, and among those holding p out. The first
  // kSubjectFirstPhrasings start with the subject's bare first name ("Dora"),
  // the others mention it after a space (" Dora"), a different token.
  std::array<double, kPhrasingsPerRelation> trained_accuracy_by_phrasing{};
  std::array<double, kPhrasingsPerRelation> held_out_accuracy_by_phrasing{};
};

struct CounterFactEvaluation {
  double efficacy = 0;      // share of rewrite prompts with P(new) > P(true)
  double paraphrase = 0;    // the same over paraphrase prompts
  double neighborhood = 0;  // share of neighbourhood prompts with P(true) > P(new)
};

class FactEvaluator {
 public:
  // Errors: FailedPreconditionError if an object is not a single token.
  static absl::StatusOr<FactEvaluator> Create(const World& world, const Gpt2Tokenizer& tokenizer,
                                              const Gpt2Model& model);

  absl::StatusOr<FactEvaluation> EvaluateFacts() const;
  absl::StatusOr<CounterFactEvaluation> EvaluateCounterFact(
      const std::vector<CounterFactCase>& cases) const;

  // " Paris" -> its token id, for object `object` of relation `relation`.
  int64_t ObjectToken(int relation, int object) const { return object_tokens_[relation][object]; }

 private:
  FactEvaluator(const World& world, const Gpt2Tokenizer& tokenizer, const Gpt2Model& model)
      : world_(&world), tokenizer_(&tokenizer), model_(&model) {}
  absl::StatusOr<std::vector<TokenIds>> Encode(const std::vector<std::string>& prompts,
                                               bool with_start_token) const;
  absl::StatusOr<torch::Tensor> PredictAllPhrasings(bool with_start_token) const;
  // Right answers and totals per phrasing, split by trained / held out.
  struct PhrasingTally {
    std::array<double, kPhrasingsPerRelation> trained{}, trained_right{};
    std::array<double, kPhrasingsPerRelation> held_out{}, held_out_right{};
    double TrainedAccuracy() const;
    double HeldOutAccuracy() const;
  };
  // Tallies greedy predictions [facts x phrasings] (PredictAllPhrasings);
  // fills per_fact's predictions and correct_trained if non-null.
  PhrasingTally Tally(const at::TensorAccessor<int64_t, 1>& predicted,
                      FactEvaluation* per_fact) const;
  // Share of rows where logits[i][first[i]] > logits[i][second[i]].
  absl::StatusOr<double> ShareFirstBeatsSecond(const std::vector<std::string>& prompts,
                                               const TokenIds& first,
                                               const TokenIds& second) const;

  const World* world_;
  const Gpt2Tokenizer* tokenizer_;
  const Gpt2Model* model_;
  std::vector<std::vector<int64_t>> object_tokens_;  // [relation][object]
};

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_EVALUATION_H_
