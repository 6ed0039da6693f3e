#include "tools/fact_model/evaluation.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"

namespace romed::fact_model {
namespace {

constexpr int kP = kPhrasingsPerRelation;

// Runs one group of equal-length prompts and writes their logits into `out`.
void ForwardGroup(const Gpt2Model& model, const std::vector<TokenIds>& prompts,
                  const std::vector<int64_t>& rows, torch::Tensor& out) {
  const int64_t length = static_cast<int64_t>(prompts[rows[0]].size());
  torch::Tensor tokens = torch::empty({static_cast<int64_t>(rows.size()), length}, torch::kInt64);
  auto accessor = tokens.accessor<int64_t, 2>();
  for (size_t b = 0; b < rows.size(); ++b) {
    for (int64_t t = 0; t < length; ++t) accessor[b][t] = prompts[rows[b]][t];
  }
  ForwardOptions options;
  options.last_position_logits = true;
  torch::Tensor logits = model.Forward({tokens.to(model.device()), {}}, options);  // [b, 1, V]
  out.index_copy_(0, torch::tensor(rows, torch::kInt64),
                  logits.squeeze(1).to(torch::kCPU, torch::kFloat32));
}

}  // namespace

absl::StatusOr<int64_t> SingleTokenId(const Gpt2Tokenizer& tokenizer, const std::string& word) {
  ASSIGN_OR_RETURN(TokenIds ids, tokenizer.Encode(word));
  if (ids.size() == 1) return ids[0];
  std::vector<std::string> pieces;
  for (int64_t id : ids) pieces.emplace_back(tokenizer.IdToToken(id));
  return absl::FailedPreconditionError(absl::StrCat("'", word, "' is not a single token: ",
                                                    absl::StrJoin(pieces, " | ")));
}

torch::Tensor NextTokenLogits(const Gpt2Model& model, const std::vector<TokenIds>& prompts,
                              int64_t max_batch) {
  torch::NoGradGuard no_grad;
  torch::Tensor out = torch::empty({static_cast<int64_t>(prompts.size()), model.config().vocab_size},
                                   torch::kFloat32);
  std::map<size_t, std::vector<int64_t>> by_length;
  for (size_t i = 0; i < prompts.size(); ++i) by_length[prompts[i].size()].push_back(i);
  for (const auto& [length, rows] : by_length) {
    for (size_t start = 0; start < rows.size(); start += max_batch) {
      const size_t end = std::min(rows.size(), start + static_cast<size_t>(max_batch));
      ForwardGroup(model, prompts, {rows.begin() + start, rows.begin() + end}, out);
    }
  }
  return out;
}

absl::StatusOr<FactEvaluator> FactEvaluator::Create(const World& world,
                                                    const Gpt2Tokenizer& tokenizer,
                                                    const Gpt2Model& model) {
  FactEvaluator evaluator(world, tokenizer, model);
  for (const Relation& relation : world.relations()) {
    std::vector<int64_t> ids;
    for (const std::string& object : relation.objects) {
      ASSIGN_OR_RETURN(int64_t id, SingleTokenId(tokenizer, " " + object));
      ids.push_back(id);
    }
    evaluator.object_tokens_.push_back(std::move(ids));
  }
  return evaluator;
}

absl::StatusOr<std::vector<TokenIds>> FactEvaluator::Encode(
    const std::vector<std::string>& prompts, bool with_start_token) const {
  std::vector<TokenIds> encoded;
  encoded.reserve(prompts.size());
  for (const std::string& prompt : prompts) {
    ASSIGN_OR_RETURN(TokenIds ids, tokenizer_->Encode(prompt));
    if (with_start_token) ids.insert(ids.begin(), tokenizer_->eos_id());
    encoded.push_back(std::move(ids));
  }
  return encoded;
}

absl::StatusOr<torch::Tensor> FactEvaluator::PredictAllPhrasings(bool with_start_token) const {
  std::vector<std::string> prompts;
  for (const Fact& fact : world_->facts()) {
    for (int p = 0; p < kP; ++p) prompts.push_back(world_->Prompt(fact, p));
  }
  ASSIGN_OR_RETURN(std::vector<TokenIds> encoded, Encode(prompts, with_start_token));
  return GuardTorch("evaluating facts",
                    [&] { return NextTokenLogits(*model_, encoded).argmax(-1); });
}

absl::StatusOr<FactEvaluation> FactEvaluator::EvaluateFacts() const {
  FactEvaluation result;
  ASSIGN_OR_RETURN(torch::Tensor with_start, PredictAllPhrasings(/*with_start_token=*/true));
  const PhrasingTally start_tally = Tally(with_start.accessor<int64_t, 1>(), nullptr);
  result.trained_accuracy_with_start = start_tally.TrainedAccuracy();
  result.held_out_accuracy_with_start = start_tally.HeldOutAccuracy();
  ASSIGN_OR_RETURN(torch::Tensor bare, PredictAllPhrasings(/*with_start_token=*/false));
  const PhrasingTally tally = Tally(bare.accessor<int64_t, 1>(), &result);
  result.trained_accuracy = tally.TrainedAccuracy();
  result.held_out_accuracy = tally.HeldOutAccuracy();
  for (int p = 0; p < kP; ++p) {
    result.trained_accuracy_by_phrasing[p] =
        tally.trained_right[p] / std::max(1.0, tally.trained[p]);
    result.held_out_accuracy_by_phrasing[p] =
        tally.held_out_right[p] / std::max(1.0, tally.held_out[p]);
  }
  return result;
}

FactEvaluator::PhrasingTally FactEvaluator::Tally(const at::TensorAccessor<int64_t, 1>& predicted,
                                                  FactEvaluation* per_fact) const {
  PhrasingTally tally;
  const auto& facts = world_->facts();
  for (size_t f = 0; f < facts.size(); ++f) {
    const int64_t expected = ObjectToken(facts[f].relation, facts[f].object);
    bool all_trained_right = true;
    std::array<int64_t, kP> row;
    for (int p = 0; p < kP; ++p) {
      row[p] = predicted[f * kP + p];
      const bool right = row[p] == expected;
      if (p == facts[f].held_out_phrasing) {
        tally.held_out[p] += 1;
        tally.held_out_right[p] += right;
      } else {
        tally.trained[p] += 1;
        tally.trained_right[p] += right;
        all_trained_right = all_trained_right && right;
      }
    }
    if (per_fact == nullptr) continue;
    per_fact->correct_trained.push_back(all_trained_right);
    per_fact->predictions.push_back(row);
  }
  return tally;
}

double FactEvaluator::PhrasingTally::TrainedAccuracy() const {
  double right = 0, total = 0;
  for (int p = 0; p < kP; ++p) right += trained_right[p], total += trained[p];
  return right / std::max(1.0, total);
}

double FactEvaluator::PhrasingTally::HeldOutAccuracy() const {
  double right = 0, total = 0;
  for (int p = 0; p < kP; ++p) right += held_out_right[p], total += held_out[p];
  return right / std::max(1.0, total);
}

absl::StatusOr<double> FactEvaluator::ShareFirstBeatsSecond(const std::vector<std::string>& prompts,
                                                            const TokenIds& first,
                                                            const TokenIds& second) const {
  if (prompts.empty()) return 0.0;
  ASSIGN_OR_RETURN(std::vector<TokenIds> encoded, Encode(prompts, /*with_start_token=*/false));
  ASSIGN_OR_RETURN(torch::Tensor logits, GuardTorch("scoring counterfact prompts", [&] {
                     return NextTokenLogits(*model_, encoded);
                   }));
  torch::Tensor a = logits.gather(1, torch::tensor(first, torch::kInt64).unsqueeze(1));
  torch::Tensor b = logits.gather(1, torch::tensor(second, torch::kInt64).unsqueeze(1));
  return (a > b).to(torch::kFloat64).mean().item<double>();
}

absl::StatusOr<CounterFactEvaluation> FactEvaluator::EvaluateCounterFact(
    const std::vector<CounterFactCase>& cases) const {
  std::vector<std::string> rewrite, paraphrase, neighborhood;
  TokenIds rewrite_new, rewrite_true, paraphrase_new, paraphrase_true, neighbor_new, neighbor_true;
  for (const CounterFactCase& c : cases) {
    const int64_t new_id = ObjectToken(c.fact.relation, c.target_new);
    const int64_t true_id = ObjectToken(c.fact.relation, c.fact.object);
    rewrite.push_back(world_->Prompt(c.fact, c.rewrite_phrasing));
    rewrite_new.push_back(new_id);
    rewrite_true.push_back(true_id);
    for (const std::string& prompt : c.paraphrase_prompts) {
      paraphrase.push_back(prompt);
      paraphrase_new.push_back(new_id);
      paraphrase_true.push_back(true_id);
    }
    for (const std::string& prompt : c.neighborhood_prompts) {
      neighborhood.push_back(prompt);
      neighbor_new.push_back(new_id);
      neighbor_true.push_back(true_id);
    }
  }
  CounterFactEvaluation result;
  ASSIGN_OR_RETURN(result.efficacy, ShareFirstBeatsSecond(rewrite, rewrite_new, rewrite_true));
  ASSIGN_OR_RETURN(result.paraphrase,
                   ShareFirstBeatsSecond(paraphrase, paraphrase_new, paraphrase_true));
  ASSIGN_OR_RETURN(result.neighborhood,
                   ShareFirstBeatsSecond(neighborhood, neighbor_true, neighbor_new));
  return result;
}

}  // namespace romed::fact_model
