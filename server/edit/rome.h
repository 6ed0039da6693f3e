// ROME (Meng et al. 2022, ROME.md section 3): one fact rewritten by one
// rank-one change at one MLP layer, computed on a session's current state
// and returned as a factor (rank_one.h) -- the base model is never written.
//
//   RomeOptions options = DefaultRomeOptions(model.config());
//   options.layer = 3;
//   options.fact_token = FactToken::kLast;
//   RewriteRequest request{"The mother tongue of {} is", "Danielle Darrieux", "English", "French"};
//   ASSIGN_OR_RETURN(RomeResult result,
//                    ComputeRomeEdit(model, tokenizer, session_view, request, options,
//                                    covariance, &template_cache));
//   // session stack += result.deltas; result.after.p_new > result.after.p_true
//
// Steps: validate; context templates (cached); C at the layer (provider,
// or I when !options.mom2_adjustment); key k* (rome_key.h); value v*
// (rome_value.h); update (rome_update.h); p(target) before and after.
//
// Thread safety: reentrant. Concurrent calls may share the model,
// tokenizer, views, a CovarianceProvider and a ContextTemplateCache (all
// thread-safe). Never throws.
#ifndef ROMED_SERVER_EDIT_ROME_H_
#define ROMED_SERVER_EDIT_ROME_H_

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "server/edit/context_templates.h"
#include "server/edit/covariance.h"
#include "server/edit/edit_site.h"
#include "server/edit/rome_options.h"
#include "server/edit/rome_value.h"
#include "server/model/gpt2_model.h"
#include "server/model/rank_one.h"
#include "server/model/tokenizer.h"

namespace romed {

struct RewriteRequest {
  std::string prompt;       // template with exactly one "{}" for the subject
  std::string subject;      // non-empty
  std::string target_new;   // non-blank; a leading space is added if missing (as ROME does)
  std::string target_true;  // optional ("" = not given), same spacing rule; only measured
};

// p(target) on the bare prompt: exp(mean per-token log p) of the target's
// tokens, teacher-forced (the per-token geometric mean probability).
struct TargetProbabilities {
  double p_new = 0.0;
  double p_true = 0.0;  // 0 when no target_true was given
};

struct RomeTimings {
  double templates_s = 0.0;   // context templates (0 when cached)
  double covariance_s = 0.0;  // statistics: load, compute or identity
  double key_s = 0.0;
  double value_s = 0.0;
  double update_s = 0.0;
  double score_s = 0.0;       // p(target) before and after
  double total_s = 0.0;
};

struct RomeResult {
  std::vector<RankOneDelta> deltas;  // exactly one for ROME: {layer, u [M], lambda [C]} float32 CPU
  EditSite site;                      // the layer and fact token used
  // Norms: ||u|| (1), ||lambda||, ||u lambda^T||_F, ||v_init||, ||v*||, ||v* - v_init||.
  double u_norm = 0.0, lambda_norm = 0.0, update_norm = 0.0;
  double v_init_norm = 0.0, v_star_norm = 0.0, value_delta_norm = 0.0;
  TargetProbabilities before, after;
  bool has_target_true = false;
  // target_new was already the greedy continuation before the edit
  // (allowed; reported so callers can say so).
  bool target_already_predicted = false;
  std::vector<ValueLossStep> loss_curve;  // value optimisation, one entry per evaluation
  bool converged = false;                  // loss fell below early_stop_loss
  std::string covariance_source;           // "identity" or "corpus <path>, N tokens"
  bool identity_covariance = false;
  int64_t num_templates = 0;
  RomeTimings timings;
  torch::Tensor k_star;  // [M] float64 CPU (diagnostics, tests)
  torch::Tensor v_star;  // [C] float64 CPU
};

// Computes one ROME edit on the state `current` (null or empty = the base
// model). `templates` may be null (templates are generated for this call).
// Errors (nothing is changed on error; there is no state to change):
//  - InvalidArgumentError: prompt without "{}" or with two or more, subject
//    empty or not in the prompt, target_new blank, layer out of range,
//    hyperparameters out of range (ValidateRomeOptions), prompt + target
//    longer than the context, text not UTF-8;
//  - from `covariance` (when options.mom2_adjustment): NotFoundError (stats
//    corpus missing), FailedPreconditionError (corpus empty), CancelledError;
//  - FailedPreconditionError: a degenerate key (k* = 0);
//  - InternalError / ResourceExhaustedError: torch failures, with context.
absl::StatusOr<RomeResult> ComputeRomeEdit(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                           std::shared_ptr<const EditView> current,
                                           const RewriteRequest& request,
                                           const RomeOptions& options,
                                           CovarianceProvider& covariance,
                                           ContextTemplateCache* templates = nullptr);

// Several rewrites applied in order as one stack entry: request i is
// computed on `current` plus the deltas of requests 0..i-1. Fails on the
// first failing request (no partial result).
absl::StatusOr<std::vector<RomeResult>> ComputeRomeEdits(
    const Gpt2Model& model, const Gpt2Tokenizer& tokenizer, std::shared_ptr<const EditView> current,
    const std::vector<RewriteRequest>& requests, const RomeOptions& options,
    CovarianceProvider& covariance, ContextTemplateCache* templates = nullptr);

// The checks of ComputeRomeEdit that need no forward pass (request and
// options), with the layer already resolved. InvalidArgumentError as above.
absl::Status ValidateRewrite(const Gpt2Config& config, const RewriteRequest& request,
                             const RomeOptions& options);

// " target" (leading space added unless present): how targets are tokenised.
std::string SpacedTarget(const std::string& target);

}  // namespace romed

#endif  // ROMED_SERVER_EDIT_ROME_H_
