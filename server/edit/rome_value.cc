#include "server/edit/rome_value.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"
#include "server/edit/prompt_batch.h"

// Notation: R rewriting rows, B = R + 1 rows (the essence row last),
// T longest row, S = R * N target predictions (N target tokens), C, V.
namespace romed {
namespace {

struct ValueBatch {
  std::vector<std::vector<int64_t>> rows;  // [B] token rows
  std::vector<Site> delta_sites;           // [B] fact token of every row
  torch::Tensor target_rows;               // [S] int64 row of each target prediction
  torch::Tensor target_positions;          // [S] int64 position whose logits predict it
  torch::Tensor target_ids;                // [S] int64 the predicted target token
  int64_t rewrite_rows = 0;                // R
  int64_t essence_position = 0;            // fact token of the essence row
};

absl::StatusOr<ValueBatch> BuildValueBatch(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                           const std::vector<std::string>& templates,
                                           std::string_view prompt_template,
                                           std::string_view subject,
                                           const std::vector<int64_t>& target_ids,
                                           FactToken fact_token) {
  ValueBatch batch;
  const int64_t n = static_cast<int64_t>(target_ids.size());
  std::vector<int64_t> rows, positions, ids;
  for (const std::string& context : templates) {
    ASSIGN_OR_RETURN(FilledPrompt filled, FillPrompt(tokenizer, NestTemplate(context, prompt_template),
                                                     subject, fact_token));
    const int64_t prompt_length = static_cast<int64_t>(filled.tokens.size());
    if (prompt_length + n - 1 > model.config().n_positions) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt \"", filled.text, "\" and the target are ", prompt_length + n - 1,
          " tokens, longer than the context of ", model.config().n_positions));
    }
    const int64_t row = static_cast<int64_t>(batch.rows.size());
    std::vector<int64_t> tokens = filled.tokens;
    tokens.insert(tokens.end(), target_ids.begin(), target_ids.end() - 1);  // teacher forcing
    for (int64_t j = 0; j < n; ++j) {
      rows.push_back(row);
      positions.push_back(prompt_length - 1 + j);
      ids.push_back(target_ids[j]);
    }
    batch.delta_sites.push_back({row, filled.fact_position});
    batch.rows.push_back(std::move(tokens));
  }
  batch.rewrite_rows = static_cast<int64_t>(batch.rows.size());
  ASSIGN_OR_RETURN(FilledPrompt essence,
                   FillPrompt(tokenizer, kEssenceTemplate, subject, fact_token));
  batch.essence_position = essence.fact_position;
  batch.delta_sites.push_back({batch.rewrite_rows, essence.fact_position});
  batch.rows.push_back(essence.tokens);
  const torch::Device device = model.device();
  batch.target_rows = torch::tensor(rows, torch::kInt64).to(device);
  batch.target_positions = torch::tensor(positions, torch::kInt64).to(device);
  batch.target_ids = torch::tensor(ids, torch::kInt64).to(device);
  return batch;
}

// log-probabilities [S] of the target tokens, from logits [B, T, V].
torch::Tensor TargetLogProbs(const ValueBatch& batch, const torch::Tensor& logits) {
  torch::Tensor predicting = logits.index({batch.target_rows, batch.target_positions});  // [S, V]
  return torch::log_softmax(predicting.to(torch::kFloat32), -1)
      .gather(1, batch.target_ids.unsqueeze(1))
      .squeeze(1);
}

// Whether the greedy prediction at every target position of row 0 (the
// bare prompt) is the target token.
bool BarePromptPredictsTarget(const ValueBatch& batch, const torch::Tensor& logits) {
  torch::Tensor row0 = batch.target_rows.eq(0);
  torch::Tensor predicting = logits.index({batch.target_rows, batch.target_positions});  // [S, V]
  torch::Tensor hits = predicting.argmax(-1).eq(batch.target_ids).logical_or(row0.logical_not());
  return hits.all().item<bool>();
}

}  // namespace

absl::StatusOr<RomeValue> OptimizeValue(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                        const std::shared_ptr<const EditView>& current,
                                        const std::vector<std::string>& templates,
                                        std::string_view prompt_template,
                                        std::string_view subject,
                                        const std::vector<int64_t>& target_ids,
                                        const EditSite& site, const RomeOptions& options) {
  if (templates.empty()) return absl::InvalidArgumentError("no context templates");
  if (target_ids.empty()) return absl::InvalidArgumentError("target_new has no tokens");
  ASSIGN_OR_RETURN(ValueBatch batch, BuildValueBatch(model, tokenizer, templates, prompt_template,
                                                     subject, target_ids, site.fact_token));
  RomeValue value;
  RETURN_IF_ERROR(GuardTorch("ROME value optimisation", [&] {
    torch::AutoGradMode enable_grad(true);
    const torch::Device device = model.device();
    const ForwardInput input = PadRight(batch.rows).ToInput(device);
    const HookAddress out{HookPoint::kMlpOut, site.layer};
    RowEdits holder;
    ForwardOptions forward;
    forward.edits = EditsForAllRows(current, &holder);

    torch::Tensor delta = torch::zeros({model.config().n_embd},
                                       torch::TensorOptions().dtype(torch::kFloat32).device(device))
                              .requires_grad_(true);
    torch::optim::Adam adam({delta}, torch::optim::AdamOptions(options.v_lr));
    torch::Tensor v_init, essence_init;  // [C], [V] float32, detached
    const double r = static_cast<double>(batch.rewrite_rows);
    const double n = static_cast<double>(target_ids.size());
    for (int64_t step = 0; step < options.v_num_grad_steps; ++step) {
      Interventions hooks;
      if (step == 0) hooks.Capture(out);  // before the delta: the current state's output
      hooks.Add(out, batch.delta_sites, delta);
      forward.interventions = &hooks;
      torch::Tensor logits = model.Forward(input, forward);  // [B, T, V]
      if (step == 0) {
        v_init = hooks.Captured(out)[0][batch.delta_sites[0].position].detach().to(torch::kFloat32);
        value.target_already_predicted = BarePromptPredictsTarget(batch, logits.detach());
      }
      torch::Tensor nll = -TargetLogProbs(batch, logits).sum() / (r * n);
      torch::Tensor essence =
          torch::log_softmax(logits[batch.rewrite_rows][batch.essence_position].to(torch::kFloat32), -1);
      if (step == 0) essence_init = essence.detach();
      torch::Tensor kl = (essence.exp() * (essence - essence_init)).sum();
      const double v_init_norm = v_init.norm().item<double>();
      torch::Tensor decay = delta.norm() / (v_init_norm * v_init_norm);
      torch::Tensor loss = nll + options.kl_factor * kl + options.v_weight_decay * decay;
      value.curve.push_back({loss.item<double>(), nll.item<double>(), kl.item<double>(),
                             decay.item<double>(), delta.norm().item<double>()});
      if (value.curve.back().loss < options.early_stop_loss) {
        value.converged = true;
        break;
      }
      if (step == options.v_num_grad_steps - 1) break;
      // Only delta's gradient: the weights are shared and never accumulate one.
      delta.mutable_grad() = torch::autograd::grad({loss}, {delta})[0];
      adam.step();
      torch::NoGradGuard no_grad;
      const double max_norm = options.clamp_norm_factor * v_init_norm;
      const double norm = delta.norm().item<double>();
      if (norm > max_norm) delta.mul_(max_norm / norm);
    }
    value.delta = delta.detach().to(torch::kCPU, torch::kFloat64);
    value.v_init = v_init.to(torch::kCPU, torch::kFloat64);
    value.v_star = value.v_init + value.delta;
  }));
  return value;
}

}  // namespace romed
