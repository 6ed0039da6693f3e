// ROME's value v* (ROME.md section 3.3): the MLP output at the edit layer
// and fact token that makes the model say target_new.
//
// A vector delta [C] (start 0) is added at hook kMlpOut, layer l, at the
// fact token of every row of one batch: the R rewriting prompts (context
// template + prompt, then target_new's tokens but the last teacher-forced)
// and the essence prompt "{subject} is a". It minimises
//   loss = mean over rewriting rows of (NLL of target_new / its token count)
//        + kl_factor * KL(p_now || p_initial)   (essence prompt, next-token
//                                                 distribution at its fact token)
//        + v_weight_decay * ||delta|| / ||v_init||^2
// with Adam (lr v_lr) for at most v_num_grad_steps loss evaluations,
// stopping when loss < early_stop_loss; after each step ||delta|| is clamped
// to clamp_norm_factor * ||v_init||. v_init is the MLP output at the bare
// prompt's fact token on the CURRENT state; v* = v_init + delta. All of this
// is the released reference's compute_v, except that fact_token "last"
// means the prompt's last token (not the last teacher-forced target token).
#ifndef ROMED_SERVER_EDIT_ROME_VALUE_H_
#define ROMED_SERVER_EDIT_ROME_VALUE_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "server/edit/edit_site.h"
#include "server/edit/rome_options.h"
#include "server/model/gpt2_model.h"
#include "server/model/rank_one.h"
#include "server/model/tokenizer.h"

namespace romed {

// The essence prompt (the reference's kl_prompts).
inline constexpr std::string_view kEssenceTemplate = "{} is a";

// One loss evaluation of the optimisation.
struct ValueLossStep {
  double loss = 0.0;          // total
  double nll = 0.0;           // mean per-token NLL of target_new over rewriting rows
  double kl = 0.0;            // KL term before its factor
  double weight_decay = 0.0;  // ||delta|| / ||v_init||^2 before its factor
  double delta_norm = 0.0;    // ||delta|| at this evaluation
};

struct RomeValue {
  torch::Tensor v_star;  // [C] float64 CPU
  torch::Tensor v_init;  // [C] float64 CPU
  torch::Tensor delta;   // [C] float64 CPU, v_star - v_init
  std::vector<ValueLossStep> curve;  // one per evaluation (<= v_num_grad_steps)
  bool converged = false;            // stopped because loss < early_stop_loss
  // The bare prompt's greedy continuation already was target_new (before).
  bool target_already_predicted = false;
};

// `target_ids` are target_new's tokens (non-empty, with its leading space).
// `templates` as for ComputeKey (templates[0] should be "{}"). Errors:
// InvalidArgumentError (prompt or target does not fit the context, bad
// template), InternalError (forward/backward pass).
absl::StatusOr<RomeValue> OptimizeValue(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                        const std::shared_ptr<const EditView>& current,
                                        const std::vector<std::string>& templates,
                                        std::string_view prompt_template,
                                        std::string_view subject,
                                        const std::vector<int64_t>& target_ids,
                                        const EditSite& site, const RomeOptions& options);

}  // namespace romed

#endif  // ROMED_SERVER_EDIT_ROME_VALUE_H_
