#include "server/engine/engine.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"
#include "server/engine/device.h"
#include "server/engine/generate_batcher.h"
#include "server/engine/request_validation.h"
#include "server/metrics/metrics.h"
#include "server/model/blas_info.h"
#include "server/model/scorer.h"
#include "server/session/sqlite_session_store.h"

namespace romed {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int64_t CountParameters(const Gpt2Weights& w) {
  int64_t n = w.wte.numel() + w.wpe.numel() + w.ln_f_weight.numel() + w.ln_f_bias.numel();
  for (const Gpt2LayerWeights& l : w.layers) {
    for (const torch::Tensor* t :
         {&l.ln_1_weight, &l.ln_1_bias, &l.attn_weight, &l.attn_bias, &l.attn_proj_weight,
          &l.attn_proj_bias, &l.ln_2_weight, &l.ln_2_bias, &l.mlp_fc_weight, &l.mlp_fc_bias,
          &l.mlp_proj_weight, &l.mlp_proj_bias}) {
      n += t->numel();
    }
  }
  return n;
}

absl::Status ValidateOptions(const EngineOptions& o) {
  const std::pair<const char*, int64_t> positive[] = {
      {"--max_prompt_tokens", o.limits.max_prompt_tokens},
      {"--max_new_tokens", o.limits.max_new_tokens},
      {"--max_continuations", o.limits.max_continuations},
      {"--max_concurrent_requests", o.limits.max_concurrent_requests},
      {"--max_batch_size", o.max_batch_size},
      {"default_new_tokens", o.default_new_tokens}};
  for (const auto& [flag, value] : positive) {
    if (value < 1) return absl::InvalidArgumentError(absl::StrCat(flag, "=", value, " must be >= 1"));
  }
  if (o.limits.max_stop_sequences < 0) {
    return absl::InvalidArgumentError("--max_stop_sequences must be >= 0");
  }
  return absl::OkStatus();
}

// Wraps the caller's callback with time-to-first-token and inter-token
// latency measurements.
class TokenTimer {
 public:
  TokenTimer(ServingMetrics* metrics, Clock::time_point start, const TokenCallback& inner)
      : metrics_(metrics), last_(start), inner_(inner) {}

  bool OnToken(const GeneratedToken& token) {
    const Clock::time_point now = Clock::now();
    if (metrics_ != nullptr) {
      if (first_) {
        metrics_->ObserveTimeToFirstToken(SecondsBetween(last_, now));
      } else {
        metrics_->ObserveInterTokenLatency(SecondsBetween(last_, now));
      }
    }
    first_ = false;
    last_ = now;
    return inner_ ? inner_(token) : true;
  }

 private:
  ServingMetrics* metrics_;
  bool first_ = true;
  Clock::time_point last_;
  const TokenCallback& inner_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(Checkpoint checkpoint,
                                                       EngineOptions options,
                                                       ServingMetrics* metrics) {
  RETURN_IF_ERROR(ValidateOptions(options));
  if (checkpoint.tokenizer == nullptr) {
    return absl::InvalidArgumentError("checkpoint has no tokenizer");
  }
  std::shared_ptr<SessionStore> store;
  if (options.state_dir.empty()) {
    ASSIGN_OR_RETURN(store, SqliteSessionStore::Open(SqliteSessionStore::kInMemoryPath));
  } else {
    ASSIGN_OR_RETURN(store, SqliteSessionStore::OpenInStateDir(options.state_dir));
  }
  SessionRegistryOptions registry_options;
  registry_options.limits.max_sessions = options.limits.max_sessions;
  registry_options.limits.max_edits_per_session = options.limits.max_edits_per_session;
  registry_options.model_checksum = checkpoint.checksum;
  registry_options.device = checkpoint.weights.wte.device();
  registry_options.dtype = checkpoint.weights.wte.scalar_type();
  ASSIGN_OR_RETURN(std::unique_ptr<SessionRegistry> sessions,
                   SessionRegistry::Open(std::move(store), std::move(registry_options)));
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, GuardTorch("building the engine", [&] {
                     return std::unique_ptr<Engine>(new Engine(std::move(checkpoint),
                                                               std::move(options), metrics,
                                                               std::move(sessions)));
                   }));
  RETURN_IF_ERROR(engine->edit_sites_->Load());
  return engine;
}

Engine::Engine(Checkpoint checkpoint, EngineOptions options, ServingMetrics* metrics,
               std::unique_ptr<SessionRegistry> sessions)
    : options_(std::move(options)),
      metrics_(metrics),
      model_dir_(checkpoint.dir),
      checksum_(checkpoint.checksum),
      tokenizer_files_(std::move(checkpoint.tokenizer_files)),
      tokenizer_(checkpoint.tokenizer),
      model_(std::make_shared<const Gpt2Model>(checkpoint.config, std::move(checkpoint.weights))),
      generator_(std::make_unique<Generator>(model_, tokenizer_)),
      limiter_(options_.limits.max_concurrent_requests, "--max_concurrent_requests"),
      heavy_limiter_(options_.limits.max_concurrent_heavy_jobs, "--max_concurrent_heavy_jobs"),
      sessions_(std::move(sessions)),
      edit_sites_(std::make_unique<EditSiteStore>(options_.state_dir, checksum_)) {
  if (options_.max_batch_size > 1) {
    batcher_ = std::make_unique<GenerateBatcher>(generator_.get(), options_.max_batch_size,
                                                 options_.batch_window);
  }
}

Engine::~Engine() = default;

EngineInfo Engine::Info() const {
  EngineInfo info;
  info.architecture = "gpt2";
  info.model_dir = model_dir_;
  info.checksum = checksum_;
  info.num_parameters = CountParameters(model_->weights());
  info.config = model_->config();
  info.dtype = DtypeName(model_->dtype());
  info.device = DeviceName(model_->device());
  info.blas = DescribeBlas();
  info.threads = torch::get_num_threads();
  info.limits = options_.limits;
  info.max_batch_size = options_.max_batch_size;
  return info;
}

absl::StatusOr<std::shared_ptr<const EditView>> Engine::SessionView(
    std::string_view session_id) const {
  if (session_id.empty()) return std::shared_ptr<const EditView>();
  RETURN_IF_ERROR(ValidateText("session_id", session_id, /*allow_empty=*/false));
  absl::StatusOr<SessionRegistry::SnapshotPtr> state = sessions_->Get(std::string(session_id));
  if (!state.ok()) {
    if (absl::IsNotFound(state.status())) {
      return absl::NotFoundError(absl::StrCat(
          "session \"", std::string(session_id),
          "\" not found; create one with CreateSession (romectl session create) or leave "
          "session_id empty for the original model"));
    }
    return state.status();
  }
  return (*state)->view;
}

absl::StatusOr<TokenizeResult> Engine::Tokenize(std::string_view text) const {
  RETURN_IF_ERROR(ValidateText("text", text, /*allow_empty=*/true));
  TokenizeResult result;
  ASSIGN_OR_RETURN(result.ids, tokenizer_->Encode(text));
  result.tokens.reserve(result.ids.size());
  for (int64_t id : result.ids) result.tokens.emplace_back(tokenizer_->IdToToken(id));
  return result;
}

absl::StatusOr<std::vector<int64_t>> Engine::EncodePrompt(std::string_view prompt,
                                                          bool needs_new_token) const {
  RETURN_IF_ERROR(ValidateText("prompt", prompt, /*allow_empty=*/false));
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, tokenizer_->Encode(prompt));
  RETURN_IF_ERROR(CheckPromptLength(static_cast<int64_t>(ids.size()), options_.limits,
                                    model_->config().n_positions, needs_new_token));
  return ids;
}

absl::StatusOr<romed::GenerateRequest> Engine::PrepareGenerate(
    const TextGenerateRequest& request) const {
  ASSIGN_OR_RETURN(std::shared_ptr<const EditView> view, SessionView(request.session_id));
  RETURN_IF_ERROR(ValidateSampling(request.sampling));
  RETURN_IF_ERROR(ValidateStopSequences(request.stop, options_.limits));
  romed::GenerateRequest prepared;
  ASSIGN_OR_RETURN(prepared.prompt_ids, EncodePrompt(request.prompt, /*needs_new_token=*/true));
  ASSIGN_OR_RETURN(prepared.max_new_tokens,
                   ResolveMaxNewTokens(request.max_new_tokens,
                                       static_cast<int64_t>(prepared.prompt_ids.size()),
                                       model_->config().n_positions, options_));
  prepared.sampling = request.sampling;
  prepared.stop = request.stop;
  prepared.stop_at_eos = !request.ignore_eos;
  prepared.edits = std::move(view);
  return prepared;
}

absl::StatusOr<GenerateResult> Engine::Generate(const TextGenerateRequest& request,
                                                const TokenCallback& on_token) {
  const Clock::time_point start = Clock::now();
  ASSIGN_OR_RETURN(romed::GenerateRequest prepared, PrepareGenerate(request));
  ASSIGN_OR_RETURN(ConcurrencyLimiter::Slot slot, limiter_.TryAcquire());
  if (metrics_ != nullptr) metrics_->AddPromptTokens(prepared.prompt_ids.size());
  TokenTimer timer(metrics_, start, on_token);
  absl::StatusOr<GenerateResult> result =
      RunGenerate(prepared, [&timer](const GeneratedToken& t) { return timer.OnToken(t); });
  if (result.ok() && metrics_ != nullptr) metrics_->AddGeneratedTokens(result->ids.size());
  return result;
}

absl::StatusOr<GenerateResult> Engine::RunGenerate(const romed::GenerateRequest& request,
                                                   const TokenCallback& on_token) {
  if (batcher_ != nullptr) return batcher_->Generate(request, on_token);
  return generator_->Generate(request, on_token);
}

absl::StatusOr<ScoreResult> Engine::Score(const TextScoreRequest& request) {
  ASSIGN_OR_RETURN(std::shared_ptr<const EditView> view, SessionView(request.session_id));
  RETURN_IF_ERROR(ValidateContinuations(request.continuations, options_.limits));
  ASSIGN_OR_RETURN(std::vector<int64_t> prompt_ids,
                   EncodePrompt(request.prompt, /*needs_new_token=*/false));
  const int64_t context = model_->config().n_positions;
  std::vector<std::vector<int64_t>> continuation_ids;
  for (size_t i = 0; i < request.continuations.size(); ++i) {
    ASSIGN_OR_RETURN(std::vector<int64_t> ids, tokenizer_->Encode(request.continuations[i]));
    const int64_t total = static_cast<int64_t>(prompt_ids.size() + ids.size());
    if (total > context) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt (", prompt_ids.size(), " tokens) + continuations[", i, "] (", ids.size(),
          " tokens) exceeds the model's context of ", context, " tokens"));
    }
    continuation_ids.push_back(std::move(ids));
  }
  ASSIGN_OR_RETURN(ConcurrencyLimiter::Slot slot, limiter_.TryAcquire());
  if (metrics_ != nullptr) metrics_->AddPromptTokens(prompt_ids.size());
  ASSIGN_OR_RETURN(std::vector<ContinuationScore> scored,
                   ScoreContinuations(*model_, prompt_ids, continuation_ids, view));
  ScoreResult result;
  result.prompt_tokens = static_cast<int64_t>(prompt_ids.size());
  for (size_t i = 0; i < scored.size(); ++i) {
    ScoredContinuation& out = result.scores.emplace_back();
    out.continuation = request.continuations[i];
    out.ids = std::move(scored[i].ids);
    for (int64_t id : out.ids) out.tokens.emplace_back(tokenizer_->IdToToken(id));
    out.token_logprobs = std::move(scored[i].token_logprobs);
    out.total_logprob = scored[i].total_logprob;
    out.mean_logprob = out.ids.empty() ? 0.0 : out.total_logprob / double(out.ids.size());
  }
  return result;
}

}  // namespace romed
