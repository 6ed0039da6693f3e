#include "server/edit/rome_key.h"

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"
#include "server/edit/prompt_batch.h"

namespace romed {

absl::StatusOr<RomeKey> ComputeKey(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                   const std::shared_ptr<const EditView>& current,
                                   const std::vector<std::string>& templates,
                                   std::string_view prompt_template, std::string_view subject,
                                   const EditSite& site) {
  if (templates.empty()) return absl::InvalidArgumentError("no context templates");
  RomeKey key;
  std::vector<std::vector<int64_t>> rows;
  for (const std::string& context : templates) {
    ASSIGN_OR_RETURN(FilledPrompt filled,
                     FillPrompt(tokenizer, NestTemplate(context, prompt_template), subject,
                                site.fact_token));
    if (static_cast<int64_t>(filled.tokens.size()) > model.config().n_positions) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt \"", filled.text, "\" is ", filled.tokens.size(),
                       " tokens, longer than the context of ", model.config().n_positions));
    }
    rows.push_back(filled.tokens);
    key.prompts.push_back(std::move(filled));
  }
  RETURN_IF_ERROR(GuardTorch("ROME key forward pass", [&] {
    torch::NoGradGuard no_grad;
    const HookAddress in{HookPoint::kMlpIn, site.layer}, out{HookPoint::kMlpOut, site.layer};
    Interventions hooks;
    hooks.Capture(in);
    hooks.Capture(out);
    RowEdits holder;
    ForwardOptions options;
    options.interventions = &hooks;
    options.edits = EditsForAllRows(current, &holder);
    options.stop_after_layer = site.layer;
    model.Forward(PadRight(rows).ToInput(model.device()), options);
    std::vector<int64_t> positions;
    for (const FilledPrompt& p : key.prompts) positions.push_back(p.fact_position);
    const int64_t r = static_cast<int64_t>(rows.size());
    torch::Tensor row_index = torch::arange(r, torch::kInt64).to(model.device());
    torch::Tensor position_index = torch::tensor(positions, torch::kInt64).to(model.device());
    // [R, M] and [R, C] at the fact tokens.
    torch::Tensor keys = hooks.Captured(in).index({row_index, position_index})
                             .to(torch::kCPU, torch::kFloat64);
    torch::Tensor outputs = hooks.Captured(out).index({row_index, position_index})
                                .to(torch::kCPU, torch::kFloat64);
    key.k_star = keys.mean(0);
    key.bare_key = keys[0].clone();
    key.bare_output = outputs[0].clone();
  }));
  return key;
}

}  // namespace romed
