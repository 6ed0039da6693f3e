// Engine: sessions, Edit, Revert, ListEdits and ComputeStats (issue #5).
// The contracts are in engine.h; this file wires the request types of
// edit_types.h to the session registry (server/session) and ROME
// (server/edit).
#include <chrono>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"
#include "server/edit/rome.h"
#include "server/engine/engine.h"
#include "server/engine/request_validation.h"
#include "server/metrics/metrics.h"

namespace romed {

// What every Edit of one engine shares: the context templates (generated
// once per model) and the covariance statistics over the stats corpus.
struct Engine::EditResources {
  ContextTemplateCache templates;
  std::unique_ptr<CorpusCovariance> covariance;
};

namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

absl::Status ValidateSessionId(std::string_view field, std::string_view id) {
  if (id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(field),
                     " is required: create a session with CreateSession (romectl session create) "
                     "and pass its id"));
  }
  return ValidateText(field, id, /*allow_empty=*/false);
}

absl::Status WithPrefix(const absl::Status& status, const std::string& prefix) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

std::string FormatNumber(double value) { return absl::StrCat(value); }

absl::Status OutOfRange(const char* field, const char* rule, double value) {
  return absl::InvalidArgumentError(absl::StrCat(field, " must be ", rule, ", got ", value));
}

// The checks of one rewrite that need only the tokenizer; prefixed with
// "rewrites[i]: " by the caller.
absl::Status ValidateRewriteText(const Gpt2Tokenizer& tokenizer, const Gpt2Config& config,
                                 const RewriteRecord& r) {
  RETURN_IF_ERROR(ValidateText("prompt", r.prompt, /*allow_empty=*/false));
  RETURN_IF_ERROR(ValidateText("subject", r.subject, /*allow_empty=*/false));
  RETURN_IF_ERROR(ValidateText("target_new", r.target_new, /*allow_empty=*/false));
  RETURN_IF_ERROR(ValidateText("target_true", r.target_true, /*allow_empty=*/true));
  RETURN_IF_ERROR(ValidatePromptTemplate(r.prompt, r.subject));
  if (absl::StripAsciiWhitespace(r.target_new).empty()) {
    return absl::InvalidArgumentError("target_new is blank: give the new object, e.g. \"Paris\"");
  }
  ASSIGN_OR_RETURN(FilledPrompt filled,
                   FillPrompt(tokenizer, r.prompt, r.subject, FactToken::kSubjectLast));
  ASSIGN_OR_RETURN(std::vector<int64_t> target, tokenizer.Encode(SpacedTarget(r.target_new)));
  const int64_t needed = static_cast<int64_t>(filled.tokens.size() + target.size());
  if (needed > config.n_positions) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt (", filled.tokens.size(), " tokens) + target_new (", target.size(),
                     " tokens) exceed the model's context of ", config.n_positions, " tokens"));
  }
  return absl::OkStatus();
}

RewriteResultRecord ToRecord(const RewriteRecord& rewrite, const RomeResult& r) {
  RewriteResultRecord out;
  out.rewrite = rewrite;
  out.layer = r.site.layer;
  out.fact_token = std::string(FactTokenName(r.site.fact_token));
  out.p_new_before = static_cast<float>(r.before.p_new);
  out.p_new_after = static_cast<float>(r.after.p_new);
  out.p_true_before = static_cast<float>(r.before.p_true);
  out.p_true_after = static_cast<float>(r.after.p_true);
  out.delta_u_norm = static_cast<float>(r.u_norm);
  out.delta_lambda_norm = static_cast<float>(r.lambda_norm);
  for (const ValueLossStep& step : r.loss_curve) out.loss_curve.push_back(float(step.loss));
  out.key_time_s = r.timings.key_s;
  out.value_time_s = r.timings.value_s;
  out.update_time_s = r.timings.update_s;
  out.identity_covariance = r.identity_covariance;
  out.target_already_predicted = r.target_already_predicted;
  out.converged = r.converged;
  out.covariance_source = r.covariance_source;
  out.covariance_time_s = r.timings.covariance_s;
  return out;
}

// What ROME needs besides the state: the model, options and shared caches.
struct EditInputs {
  const Gpt2Model* model;
  const Gpt2Tokenizer* tokenizer;
  const TextEditRequest* request;
  const RomeOptions* options;
  CovarianceProvider* covariance;
  ContextTemplateCache* templates;
  const CancelCheck* cancelled;
  std::vector<RomeTimings>* timings;  // out: one per rewrite
};

// The stack entry for in.request, computed on `current` (run inside
// SessionRegistry::PushEdit under the session's writer lock): rewrite i is
// computed on `current` plus the deltas of rewrites 0..i-1.
absl::StatusOr<EditEntry> ComputeEditEntry(const EditInputs& in, const SessionState& current,
                                           std::map<std::string, std::string> hyperparameters) {
  const Clock::time_point start = Clock::now();
  const std::vector<RewriteRecord>& rewrites = in.request->rewrites;
  EditEntry entry;
  entry.request.rewrites = rewrites;
  entry.request.hyperparameters = std::move(hyperparameters);
  std::shared_ptr<const EditView> view = current.view;
  std::vector<RankOneDelta> stacked = view != nullptr ? view->deltas() : std::vector<RankOneDelta>{};
  for (size_t i = 0; i < rewrites.size(); ++i) {
    if (*in.cancelled && (*in.cancelled)()) {
      return absl::CancelledError(absl::StrCat("Edit cancelled before rewrite ", i + 1, " of ",
                                               rewrites.size(), "; the session is unchanged"));
    }
    const RewriteRecord& r = rewrites[i];
    const RewriteRequest rewrite{r.prompt, r.subject, r.target_new, r.target_true};
    absl::StatusOr<RomeResult> result = ComputeRomeEdit(*in.model, *in.tokenizer, view, rewrite,
                                                        *in.options, *in.covariance, in.templates);
    if (!result.ok()) return WithPrefix(result.status(), absl::StrCat("rewrites[", i, "]: "));
    entry.results.push_back(ToRecord(r, *result));
    in.timings->push_back(result->timings);
    entry.deltas.insert(entry.deltas.end(), result->deltas.begin(), result->deltas.end());
    if (i + 1 < rewrites.size()) {
      stacked.insert(stacked.end(), result->deltas.begin(), result->deltas.end());
      view = EditView::Build(stacked, in.model->device(), in.model->dtype());
    }
  }
  entry.total_time_s = SecondsSince(start);
  return entry;
}

}  // namespace

Engine::EditResources& Engine::edit_resources() {
  std::call_once(edit_resources_once_, [this] {
    auto resources = std::make_shared<EditResources>();
    CorpusCovarianceOptions covariance;
    covariance.corpus_path = DefaultStatsCorpus();
    covariance.state_dir = options_.state_dir;
    covariance.model_checksum = checksum_;
    resources->covariance = std::make_unique<CorpusCovariance>(*model_, *tokenizer_, covariance);
    edit_resources_ = std::move(resources);
  });
  return *edit_resources_;
}

std::string Engine::DefaultStatsCorpus() const {
  if (!options_.stats_corpus.empty()) return options_.stats_corpus;
  return absl::StrCat(model_dir_, "/stats_corpus.txt");
}

// --------------------------------------------------------------- sessions

absl::StatusOr<std::shared_ptr<const SessionState>> Engine::CreateSession(
    const CreateSessionRequest& request) {
  RETURN_IF_ERROR(ValidateText("name", request.name, /*allow_empty=*/true));
  for (const auto& [key, value] : request.labels) {
    RETURN_IF_ERROR(ValidateText("label key", key, /*allow_empty=*/true));
    RETURN_IF_ERROR(ValidateText("label value", value, /*allow_empty=*/true));
  }
  return sessions_->Create(request.name, request.labels, request.owner);
}

absl::StatusOr<std::shared_ptr<const SessionState>> Engine::GetSession(std::string_view id) const {
  RETURN_IF_ERROR(ValidateSessionId("id", id));
  return sessions_->Get(std::string(id));
}

absl::StatusOr<SessionListPage> Engine::ListSessions(int64_t page_size,
                                                     const std::string& page_token) const {
  ASSIGN_OR_RETURN(SessionPage page, sessions_->List(page_size, page_token));
  return SessionListPage{std::move(page.sessions), std::move(page.next_page_token)};
}

absl::Status Engine::DeleteSession(std::string_view id) {
  RETURN_IF_ERROR(ValidateSessionId("id", id));
  return sessions_->Delete(std::string(id));
}

absl::StatusOr<RevertResult> Engine::Revert(std::string_view session_id, RevertTarget target) {
  RETURN_IF_ERROR(ValidateSessionId("session_id", session_id));
  const std::string id(session_id);
  RevertResult result;
  ASSIGN_OR_RETURN(result.reverted_edit_ids, sessions_->Revert(id, target));
  ASSIGN_OR_RETURN(result.session, sessions_->Get(id));
  return result;
}

absl::StatusOr<std::vector<EditEntry>> Engine::ListEdits(std::string_view session_id) const {
  RETURN_IF_ERROR(ValidateSessionId("session_id", session_id));
  return sessions_->ListEdits(std::string(session_id));
}

// --------------------------------------------------------------- Edit

absl::StatusOr<RomeOptions> Engine::ResolveRomeOptions(
    const RomeOverrides& o, std::map<std::string, std::string>* used) const {
  const Gpt2Config& config = model_->config();
  RomeOptions options = DefaultRomeOptions(config);
  std::string layer_source = kSiteDefault, token_source = kSiteDefault;
  if (std::optional<SiteRecommendation> site = edit_sites_->Get(); site.has_value()) {
    absl::StatusOr<FactToken> token = ParseFactToken(site->fact_token);
    if (token.ok() && site->layer >= 0 && site->layer < config.n_layer) {
      options.layer = site->layer;
      options.fact_token = *token;
      layer_source = token_source = kSiteFromTracing;
    }
  }
  if (o.layer.has_value()) {
    if (*o.layer < 0 || *o.layer >= config.n_layer) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer ", *o.layer, " is out of range: the model has ", config.n_layer,
                       " layers (0..", config.n_layer - 1, ")"));
    }
    options.layer = *o.layer;
    layer_source = kSiteFromRequest;
  }
  if (o.fact_token.has_value()) {
    options.fact_token = *o.fact_token;
    token_source = kSiteFromRequest;
  }
  if (o.v_num_grad_steps.has_value()) options.v_num_grad_steps = *o.v_num_grad_steps;
  if (o.v_lr.has_value()) options.v_lr = *o.v_lr;
  if (o.v_weight_decay.has_value()) options.v_weight_decay = *o.v_weight_decay;
  if (o.kl_factor.has_value()) options.kl_factor = *o.kl_factor;
  if (o.clamp_norm_factor.has_value()) options.clamp_norm_factor = *o.clamp_norm_factor;
  if (o.key_form.has_value()) options.key_form = *o.key_form;
  options.mom2_adjustment = !o.identity_covariance;
  if (options.v_num_grad_steps > 1000) {
    return OutOfRange("v_num_grad_steps", "at most 1000", double(options.v_num_grad_steps));
  }
  RETURN_IF_ERROR(ValidateRomeOptions(options, config));

  *used = {{"layer", absl::StrCat(options.layer)},
           {"fact_token", std::string(FactTokenName(options.fact_token))},
           {"site_source", layer_source == token_source
                               ? layer_source
                               : absl::StrCat("layer: ", layer_source,
                                              ", fact_token: ", token_source)},
           {"v_num_grad_steps", absl::StrCat(options.v_num_grad_steps)},
           {"v_lr", FormatNumber(options.v_lr)},
           {"v_weight_decay", FormatNumber(options.v_weight_decay)},
           {"kl_factor", FormatNumber(options.kl_factor)},
           {"clamp_norm_factor", FormatNumber(options.clamp_norm_factor)},
           {"early_stop_loss", FormatNumber(options.early_stop_loss)},
           {"key_form", std::string(UpdateKeyFormName(options.key_form))},
           {"covariance", o.identity_covariance ? "identity" : "corpus"}};
  return options;
}

absl::Status Engine::ValidateEditRequest(const TextEditRequest& request) const {
  RETURN_IF_ERROR(ValidateSessionId("session_id", request.session_id));
  if (request.rewrites.empty()) {
    return absl::InvalidArgumentError(
        "no rewrites: give at least one (prompt with \"{}\", subject, target_new)");
  }
  if (static_cast<int64_t>(request.rewrites.size()) > kMaxRewritesPerEdit) {
    return absl::InvalidArgumentError(absl::StrCat(request.rewrites.size(),
                                                   " rewrites in one Edit; at most ",
                                                   kMaxRewritesPerEdit, " are allowed"));
  }
  for (size_t i = 0; i < request.rewrites.size(); ++i) {
    RETURN_IF_ERROR(WithPrefix(
        ValidateRewriteText(*tokenizer_, model_->config(), request.rewrites[i]),
        absl::StrCat("rewrites[", i, "]: ")));
  }
  return absl::OkStatus();
}

void Engine::RecordEditTimings(const EditEntry& entry) const {
  if (metrics_ == nullptr) return;
  for (const RewriteResultRecord& r : entry.results) {
    metrics_->ObserveEditStage("covariance", r.covariance_time_s);
    metrics_->ObserveEditStage("key", r.key_time_s);
    metrics_->ObserveEditStage("value", r.value_time_s);
    metrics_->ObserveEditStage("update", r.update_time_s);
  }
  metrics_->ObserveEditStage("total", entry.total_time_s);
}

absl::StatusOr<EditResult> Engine::Edit(const TextEditRequest& request,
                                        const CancelCheck& cancelled) {
  RETURN_IF_ERROR(ValidateEditRequest(request));
  std::map<std::string, std::string> used;
  ASSIGN_OR_RETURN(const RomeOptions options, ResolveRomeOptions(request.overrides, &used));
  const std::string id(request.session_id);
  ASSIGN_OR_RETURN(std::shared_ptr<const SessionState> before, sessions_->Get(id));
  if (before->num_edits() >= options_.limits.max_edits_per_session) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "session \"", id, "\" holds ", before->num_edits(), " edits; the limit is ",
        options_.limits.max_edits_per_session,
        " (--max_edits_per_session); revert some with Revert or use another session"));
  }
  ASSIGN_OR_RETURN(ConcurrencyLimiter::Slot slot, AcquireHeavyJob());
  EditResources& resources = edit_resources();
  if (options.mom2_adjustment) {
    // Load or compute C here, outside the session's writer lock, with the
    // call's cancellation; ComputeRomeEdit then finds it in memory.
    CovarianceCallOptions call;
    call.cancelled = cancelled;
    call.on_progress = [this, done = int64_t{0}](const CovarianceProgress& p) mutable {
      if (metrics_ != nullptr) metrics_->AddStatsTokens(p.tokens_done - done);
      done = p.tokens_done;
    };
    absl::StatusOr<std::shared_ptr<const CovarianceStats>> stats =
        resources.covariance->Get(options.layer, call);
    if (absl::IsNotFound(stats.status()) || absl::IsFailedPrecondition(stats.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "no covariance statistics for layer ", options.layer, ": ", stats.status().message(),
          "; start romed with --stats_corpus=FILE_OR_DIR, or ask for C = I with "
          "identity_covariance (romectl edit --identity_covariance)"));
    }
    RETURN_IF_ERROR(stats.status());
  }

  std::vector<RomeTimings> timings;
  const EditInputs inputs{model_.get(), tokenizer_.get(), &request,      &options,
                          resources.covariance.get(), &resources.templates, &cancelled, &timings};
  EditResult result;
  ASSIGN_OR_RETURN(result.entry, sessions_->PushEdit(id, [&](const SessionState& current) {
                     timings.clear();
                     return ComputeEditEntry(inputs, current, used);
                   }));
  RecordEditTimings(result.entry);
  ASSIGN_OR_RETURN(result.session, sessions_->Get(id));
  return result;
}

// --------------------------------------------------------------- ComputeStats

absl::StatusOr<ComputeStatsResult> Engine::ComputeStats(
    const ComputeStatsRequest& request,
    const std::function<void(const CovarianceProgress&)>& on_progress,
    const CancelCheck& cancelled) {
  const int64_t n_layer = model_->config().n_layer;
  if (request.layer < 0 || request.layer >= n_layer) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", request.layer,
                                                   " is out of range: the model has ", n_layer,
                                                   " layers (0..", n_layer - 1, ")"));
  }
  if (request.max_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_tokens must be >= 0 (0 = the whole corpus), got ", request.max_tokens));
  }
  RETURN_IF_ERROR(ValidateText("corpus_path", request.corpus_path, /*allow_empty=*/true));
  ASSIGN_OR_RETURN(ConcurrencyLimiter::Slot slot, AcquireHeavyJob());
  const Clock::time_point start = Clock::now();

  // The default corpus in full is Edit's own provider (so Edit finds the
  // result in memory); anything else gets a provider of its own that shares
  // only the disk cache.
  const std::string corpus =
      request.corpus_path.empty() ? DefaultStatsCorpus() : request.corpus_path;
  CorpusCovariance* provider = edit_resources().covariance.get();
  std::unique_ptr<CorpusCovariance> own;
  if (corpus != DefaultStatsCorpus() || request.max_tokens != 0) {
    CorpusCovarianceOptions options = provider->options();
    options.corpus_path = corpus;
    options.max_tokens = request.max_tokens;
    own = std::make_unique<CorpusCovariance>(*model_, *tokenizer_, options);
    provider = own.get();
  }
  const bool in_memory = !request.recompute && provider->Cached(request.layer) != nullptr;
  CovarianceCallOptions call;
  call.recompute = request.recompute;
  call.cancelled = cancelled;
  call.on_progress = [&, done = int64_t{0}](const CovarianceProgress& p) mutable {
    if (metrics_ != nullptr) metrics_->AddStatsTokens(p.tokens_done - done);
    done = p.tokens_done;
    if (on_progress) on_progress(p);
  };
  ASSIGN_OR_RETURN(std::shared_ptr<const CovarianceStats> stats,
                   provider->Get(request.layer, call));
  ComputeStatsResult result;
  result.layer = request.layer;
  result.corpus_path = corpus;
  result.token_count = stats->token_count;
  result.cached = in_memory || stats->loaded_from_cache;
  result.cache_path = stats->cache_path;
  result.source = stats->source;
  result.ridge = stats->ridge;
  result.elapsed_s = SecondsSince(start);
  return result;
}

}  // namespace romed
