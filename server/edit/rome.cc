#include "server/edit/rome.h"

#include <chrono>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"
#include "server/edit/rome_key.h"
#include "server/edit/rome_update.h"
#include "server/model/scorer.h"

namespace romed {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// exp(mean log p) of each continuation after `prompt` on `view`.
absl::StatusOr<TargetProbabilities> ScoreTargets(const Gpt2Model& model,
                                                 const std::vector<int64_t>& prompt,
                                                 const std::vector<int64_t>& new_ids,
                                                 const std::vector<int64_t>& true_ids,
                                                 const std::shared_ptr<const EditView>& view) {
  std::vector<std::vector<int64_t>> continuations = {new_ids};
  if (!true_ids.empty()) continuations.push_back(true_ids);
  ASSIGN_OR_RETURN(std::vector<ContinuationScore> scores,
                   ScoreContinuations(model, prompt, continuations, view));
  auto mean_prob = [](const ContinuationScore& s) {
    return std::exp(s.total_logprob / static_cast<double>(s.ids.size()));
  };
  TargetProbabilities p;
  p.p_new = mean_prob(scores[0]);
  if (scores.size() > 1) p.p_true = mean_prob(scores[1]);
  return p;
}

absl::StatusOr<std::shared_ptr<const std::vector<std::string>>> GetTemplates(
    const Gpt2Model& model, const Gpt2Tokenizer& tokenizer, const ContextTemplateOptions& options,
    ContextTemplateCache* cache) {
  if (cache != nullptr) return cache->Get(model, tokenizer, options);
  ASSIGN_OR_RETURN(std::vector<std::string> templates,
                   GenerateContextTemplates(model, tokenizer, options));
  return std::make_shared<const std::vector<std::string>>(std::move(templates));
}

void FillNorms(const RankOneDelta& delta, const RomeValue& value, RomeResult* result) {
  result->u_norm = delta.u.norm().item<double>();
  result->lambda_norm = delta.lambda.norm().item<double>();
  result->update_norm = result->u_norm * result->lambda_norm;  // ||u lambda^T||_F
  result->v_init_norm = value.v_init.norm().item<double>();
  result->v_star_norm = value.v_star.norm().item<double>();
  result->value_delta_norm = value.delta.norm().item<double>();
}

}  // namespace

std::string SpacedTarget(const std::string& target) {
  if (!target.empty() && target[0] == ' ') return target;
  return " " + target;
}

absl::Status ValidateRewrite(const Gpt2Config& config, const RewriteRequest& request,
                             const RomeOptions& options) {
  RETURN_IF_ERROR(ValidateRomeOptions(options, config));
  if (options.layer < 0) return absl::InvalidArgumentError("layer is not resolved (-1)");
  RETURN_IF_ERROR(ValidatePromptTemplate(request.prompt, request.subject));
  if (absl::StripAsciiWhitespace(request.target_new).empty()) {
    return absl::InvalidArgumentError("target_new is empty");
  }
  return absl::OkStatus();
}

absl::StatusOr<RomeResult> ComputeRomeEdit(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                           std::shared_ptr<const EditView> current,
                                           const RewriteRequest& request,
                                           const RomeOptions& options_in,
                                           CovarianceProvider& covariance,
                                           ContextTemplateCache* template_cache) {
  const Clock::time_point start = Clock::now();
  RomeOptions options = options_in;
  RETURN_IF_ERROR(ValidateRomeOptions(options, model.config()));
  if (options.layer < 0) options.layer = DefaultRomeOptions(model.config()).layer;
  RETURN_IF_ERROR(ValidateRewrite(model.config(), request, options));
  const EditSite site{options.layer, options.fact_token};

  ASSIGN_OR_RETURN(std::vector<int64_t> new_ids, tokenizer.Encode(SpacedTarget(request.target_new)));
  std::vector<int64_t> true_ids;
  if (!absl::StripAsciiWhitespace(request.target_true).empty()) {
    ASSIGN_OR_RETURN(true_ids, tokenizer.Encode(SpacedTarget(request.target_true)));
  }
  ASSIGN_OR_RETURN(FilledPrompt bare,
                   FillPrompt(tokenizer, request.prompt, request.subject, site.fact_token));
  if (static_cast<int64_t>(bare.tokens.size() + std::max(new_ids.size(), true_ids.size())) >
      model.config().n_positions) {
    return absl::InvalidArgumentError(absl::StrCat("prompt and target are longer than the context of ",
                                                   model.config().n_positions, " tokens"));
  }

  RomeResult result;
  result.site = site;
  result.has_target_true = !true_ids.empty();
  Clock::time_point t = Clock::now();
  ASSIGN_OR_RETURN(auto templates, GetTemplates(model, tokenizer, options.templates, template_cache));
  result.num_templates = static_cast<int64_t>(templates->size());
  result.timings.templates_s = SecondsSince(t);

  t = Clock::now();
  std::shared_ptr<const CovarianceStats> stats;
  if (options.mom2_adjustment) {
    ASSIGN_OR_RETURN(stats, covariance.Get(site.layer));
  } else {
    IdentityCovariance identity(model.config().mlp_width());
    ASSIGN_OR_RETURN(stats, identity.Get(site.layer));
  }
  result.covariance_source = stats->source;
  result.identity_covariance = stats->identity;
  result.timings.covariance_s = SecondsSince(t);

  t = Clock::now();
  ASSIGN_OR_RETURN(result.before, ScoreTargets(model, bare.tokens, new_ids, true_ids, current));
  result.timings.score_s = SecondsSince(t);

  t = Clock::now();
  ASSIGN_OR_RETURN(RomeKey key, ComputeKey(model, tokenizer, current, *templates, request.prompt,
                                           request.subject, site));
  result.timings.key_s = SecondsSince(t);

  t = Clock::now();
  ASSIGN_OR_RETURN(RomeValue value,
                   OptimizeValue(model, tokenizer, current, *templates, request.prompt,
                                 request.subject, new_ids, site, options));
  result.timings.value_s = SecondsSince(t);

  t = Clock::now();
  ASSIGN_OR_RETURN(RankOneDelta delta, ComputeRankOneUpdate(model, current, site.layer, *stats, key,
                                                            value.v_star, options.key_form));
  result.timings.update_s = SecondsSince(t);

  t = Clock::now();
  std::vector<RankOneDelta> stacked = current != nullptr ? current->deltas() : std::vector<RankOneDelta>{};
  stacked.push_back(delta);
  ASSIGN_OR_RETURN(std::shared_ptr<const EditView> after_view, GuardTorch("edit view", [&] {
                     return EditView::Build(stacked, model.device(), model.dtype());
                   }));
  ASSIGN_OR_RETURN(result.after, ScoreTargets(model, bare.tokens, new_ids, true_ids, after_view));
  result.timings.score_s += SecondsSince(t);

  RETURN_IF_ERROR(GuardTorch("edit norms", [&] { FillNorms(delta, value, &result); }));
  result.loss_curve = std::move(value.curve);
  result.converged = value.converged;
  result.target_already_predicted = value.target_already_predicted;
  result.k_star = key.k_star;
  result.v_star = value.v_star;
  result.deltas.push_back(std::move(delta));
  result.timings.total_s = SecondsSince(start);
  return result;
}

absl::StatusOr<std::vector<RomeResult>> ComputeRomeEdits(
    const Gpt2Model& model, const Gpt2Tokenizer& tokenizer, std::shared_ptr<const EditView> current,
    const std::vector<RewriteRequest>& requests, const RomeOptions& options,
    CovarianceProvider& covariance, ContextTemplateCache* templates) {
  if (requests.empty()) return absl::InvalidArgumentError("no rewrites given");
  std::vector<RomeResult> results;
  std::vector<RankOneDelta> stacked =
      current != nullptr ? current->deltas() : std::vector<RankOneDelta>{};
  for (size_t i = 0; i < requests.size(); ++i) {
    auto result = ComputeRomeEdit(model, tokenizer, current, requests[i], options, covariance,
                                  templates);
    if (!result.ok()) {
      return absl::Status(result.status().code(),
                          absl::StrCat("rewrite ", i, ": ", result.status().message()));
    }
    stacked.insert(stacked.end(), result->deltas.begin(), result->deltas.end());
    ASSIGN_OR_RETURN(current, GuardTorch("edit view", [&] {
                       return EditView::Build(stacked, model.device(), model.dtype());
                     }));
    results.push_back(std::move(*result));
  }
  return results;
}

}  // namespace romed
