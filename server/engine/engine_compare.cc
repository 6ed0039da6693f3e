// Engine::Compare (issue #6): the same prompts on two variants in one batch.
// Generations run as one batched decode of 2 x P rows (row 2i is prompt i on
// variant a, row 2i+1 on b; the Generator gives each row its own edit view);
// targets, top-k and KL come from one scoring forward of
// 2 x P x max(1, targets) rows (ScoreRows); without targets, top-k and KL of
// a generating Compare come from the decode's first step (no scoring
// forward). When both variants are one model
// only a's rows run and b's results are copies. Notation: P prompts, V
// vocabulary.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"
#include "server/engine/engine.h"
#include "server/engine/request_validation.h"
#include "server/metrics/metrics.h"
#include "server/model/scorer.h"

namespace romed {

// Everything Compare needs after validation: tokens and edit views.
struct Engine::PreparedCompare {
  std::shared_ptr<const EditView> view_a;  // null = original model
  std::shared_ptr<const EditView> view_b;
  std::vector<std::vector<int64_t>> prompt_ids;  // [P]
  std::vector<std::vector<int64_t>> target_ids;  // one per target
  int64_t max_new_tokens = 0;                    // 0 = no generation
};

namespace {

using Clock = std::chrono::steady_clock;

absl::Status WithField(const std::string& field, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(field, ": ", status.message()));
}

// Counts and ranges that need no tokens; nothing-to-do is an error too.
absl::Status ValidateCompareShape(const TextCompareRequest& request, const EngineLimits& limits,
                                  int64_t vocab_size) {
  const int64_t prompts = static_cast<int64_t>(request.prompts.size());
  const int64_t targets = static_cast<int64_t>(request.targets.size());
  const int64_t limit = limits.max_continuations;
  if (prompts == 0) return absl::InvalidArgumentError("prompts is empty; give 1 or more prompts");
  if (prompts > limit) {
    return absl::InvalidArgumentError(absl::StrCat(prompts, " prompts; at most ", limit,
                                                   " are allowed (--max_continuations)"));
  }
  if (prompts * std::max<int64_t>(targets, 1) > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        prompts, " prompts x ", targets, " targets = ", prompts * targets,
        " scored rows per variant; at most ", limit, " are allowed (--max_continuations)"));
  }
  const int64_t top_limit = std::min(kMaxCompareTopK, vocab_size);
  if (request.top_k < 0 || request.top_k > top_limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k is ", request.top_k, "; it must be 0..", top_limit));
  }
  if (request.max_new_tokens < 0 || request.max_new_tokens > limits.max_new_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_new_tokens is ", request.max_new_tokens, "; it must be 0 (no generation)..",
        limits.max_new_tokens, " (--max_new_tokens)"));
  }
  if (request.max_new_tokens == 0 && targets == 0 && request.top_k == 0 && !request.kl) {
    return absl::InvalidArgumentError(
        "nothing to compare: ask for max_new_tokens > 0, targets, top_k > 0 or kl");
  }
  RETURN_IF_ERROR(ValidateSampling(request.sampling));
  RETURN_IF_ERROR(ValidateStopSequences(request.stop, limits));
  for (size_t j = 0; j < request.targets.size(); ++j) {
    RETURN_IF_ERROR(ValidateText(absl::StrCat("targets[", j, "]"), request.targets[j],
                                 /*allow_empty=*/false));
  }
  return absl::OkStatus();
}

// Rows [P x views] of the batched decode: prompt i on each view in turn.
// The targets are scored from each row's prompt cache and the next-token
// distribution kept from the first step, so no separate scoring forward runs.
std::vector<romed::GenerateRequest> GenerationRows(
    const TextCompareRequest& request, const std::vector<std::vector<int64_t>>& ids,
    const std::vector<std::vector<int64_t>>& target_ids,
    const std::vector<std::shared_ptr<const EditView>>& views, int64_t max_new_tokens) {
  std::vector<romed::GenerateRequest> rows;
  for (const std::vector<int64_t>& prompt : ids) {
    for (const std::shared_ptr<const EditView>& view : views) {
      romed::GenerateRequest& row = rows.emplace_back();
      row.prompt_ids = prompt;
      row.max_new_tokens = max_new_tokens;
      row.sampling = request.sampling;
      row.stop = request.stop;
      row.stop_at_eos = !request.ignore_eos;
      row.edits = view;
      row.keep_first_logprobs = request.top_k > 0 || request.kl;
      row.score_continuations = target_ids;
    }
  }
  return rows;
}

// The k most likely tokens of `logprobs` [V]; ties go to the lower id.
std::vector<NextTokenProb> TopTokens(const torch::Tensor& logprobs, int64_t k,
                                     const Gpt2Tokenizer& tokenizer) {
  std::vector<NextTokenProb> top;
  if (k == 0) return top;
  const auto [values, indices] =
      logprobs.sort(/*stable=*/true, /*dim=*/-1, /*descending=*/true);
  for (int64_t i = 0; i < k; ++i) {
    NextTokenProb& t = top.emplace_back();
    t.id = indices[i].item<int64_t>();
    t.token = tokenizer.IdToToken(t.id);
    t.prob = static_cast<float>(std::exp(values[i].item<double>()));
  }
  return top;
}

// KL(p || q) = sum_v p_v (log p_v - log q_v), in float64; round-off can
// make a KL near 0 slightly negative, so it is clamped at 0.
double KlDivergence(const torch::Tensor& logp, const torch::Tensor& logq) {
  const torch::Tensor lp = logp.to(torch::kFloat64);
  const torch::Tensor lq = logq.to(torch::kFloat64);
  return std::max(0.0, (lp.exp() * (lp - lq)).sum().item<double>());
}

// Whether two views run the same model (both the base, or one snapshot).
bool SameModel(const std::shared_ptr<const EditView>& a, const std::shared_ptr<const EditView>& b) {
  const bool a_base = a == nullptr || a->empty();
  const bool b_base = b == nullptr || b->empty();
  return (a_base && b_base) || a == b;
}

ScoredContinuation ToScored(const std::string& text, const ContinuationScore& score,
                            const Gpt2Tokenizer& tokenizer) {
  ScoredContinuation out;
  out.continuation = text;
  out.ids = score.ids;
  for (int64_t id : out.ids) out.tokens.emplace_back(tokenizer.IdToToken(id));
  out.token_logprobs = score.token_logprobs;
  out.total_logprob = score.total_logprob;
  out.mean_logprob = out.ids.empty() ? 0.0 : out.total_logprob / double(out.ids.size());
  return out;
}

}  // namespace

absl::StatusOr<Engine::PreparedCompare> Engine::PrepareCompare(
    const TextCompareRequest& request) const {
  PreparedCompare prepared;
  absl::StatusOr<std::shared_ptr<const EditView>> a = SessionView(request.session_a);
  RETURN_IF_ERROR(WithField("variant a", a.status()));
  absl::StatusOr<std::shared_ptr<const EditView>> b = SessionView(request.session_b);
  RETURN_IF_ERROR(WithField("variant b", b.status()));
  prepared.view_a = *std::move(a);
  prepared.view_b = *std::move(b);
  const int64_t context = model_->config().n_positions;
  RETURN_IF_ERROR(ValidateCompareShape(request, options_.limits, model_->config().vocab_size));
  const bool generate = request.max_new_tokens > 0;
  for (size_t i = 0; i < request.prompts.size(); ++i) {
    const std::string field = absl::StrCat("prompts[", i, "]");
    RETURN_IF_ERROR(ValidateText(field, request.prompts[i], /*allow_empty=*/false));
    absl::StatusOr<std::vector<int64_t>> ids = EncodePrompt(request.prompts[i], generate);
    RETURN_IF_ERROR(WithField(field, ids.status()));
    if (generate) {
      RETURN_IF_ERROR(WithField(field, ResolveMaxNewTokens(request.max_new_tokens,
                                                           static_cast<int64_t>(ids->size()),
                                                           context, options_)
                                           .status()));
    }
    prepared.prompt_ids.push_back(*std::move(ids));
  }
  for (size_t j = 0; j < request.targets.size(); ++j) {
    ASSIGN_OR_RETURN(std::vector<int64_t> ids, tokenizer_->Encode(request.targets[j]));
    for (size_t i = 0; i < prepared.prompt_ids.size(); ++i) {
      const size_t total = prepared.prompt_ids[i].size() + ids.size();
      if (static_cast<int64_t>(total) > context) {
        return absl::InvalidArgumentError(absl::StrCat(
            "prompts[", i, "] (", prepared.prompt_ids[i].size(), " tokens) + targets[", j, "] (",
            ids.size(), " tokens) exceeds the model's context of ", context, " tokens"));
      }
    }
    prepared.target_ids.push_back(std::move(ids));
  }
  prepared.max_new_tokens = request.max_new_tokens;
  return prepared;
}

absl::StatusOr<CompareResult> Engine::Compare(const TextCompareRequest& request,
                                              const CancelCheck& cancelled) {
  const Clock::time_point start = Clock::now();
  ASSIGN_OR_RETURN(PreparedCompare prepared, PrepareCompare(request));
  ASSIGN_OR_RETURN(ConcurrencyLimiter::Slot slot, limiter_.TryAcquire());
  CompareResult result;
  result.deltas_a = prepared.view_a == nullptr ? 0 : prepared.view_a->size();
  result.deltas_b = prepared.view_b == nullptr ? 0 : prepared.view_b->size();
  for (size_t i = 0; i < request.prompts.size(); ++i) {
    CompareRowResult& row = result.rows.emplace_back();
    row.prompt = request.prompts[i];
    row.prompt_tokens = static_cast<int64_t>(prepared.prompt_ids[i].size());
    if (metrics_ != nullptr) metrics_->AddPromptTokens(2 * row.prompt_tokens);
  }
  if (prepared.max_new_tokens > 0) {
    RETURN_IF_ERROR(CompareGenerations(request, prepared, cancelled, &result));
  }
  if (cancelled && cancelled()) {
    return absl::CancelledError("Compare: the client cancelled or went away; stopped computing");
  }
  // A generation already scored the targets from its prompt cache and kept
  // its first step's next-token distributions (top-k, KL): no scoring
  // forward then.
  const bool scored_by_generation = prepared.max_new_tokens > 0;
  if (!scored_by_generation && (!request.targets.empty() || request.top_k > 0 || request.kl)) {
    RETURN_IF_ERROR(CompareScores(request, prepared, &result));
  }
  result.total_time_s = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

// The views the batch runs: {a, b}, or {a} alone when both are one model
// (b's results are then a copy of a's, and KL is exactly 0).
std::vector<std::shared_ptr<const EditView>> Engine::CompareViews(
    const PreparedCompare& prepared) {
  if (SameModel(prepared.view_a, prepared.view_b)) return {prepared.view_a};
  return {prepared.view_a, prepared.view_b};
}

absl::Status Engine::CompareGenerations(const TextCompareRequest& request,
                                        const PreparedCompare& prepared,
                                        const CancelCheck& cancelled, CompareResult* result) {
  const std::vector<std::shared_ptr<const EditView>> views = CompareViews(prepared);
  const std::vector<romed::GenerateRequest> rows = GenerationRows(
      request, prepared.prompt_ids, prepared.target_ids, views, prepared.max_new_tokens);
  std::vector<TokenCallback> callbacks;
  if (cancelled) {
    callbacks.assign(rows.size(), [&cancelled](const GeneratedToken&) { return !cancelled(); });
  }
  ASSIGN_OR_RETURN(std::vector<GenerateResult> generated,
                   generator_->GenerateBatch(rows, callbacks));
  result->generation_rows = static_cast<int64_t>(rows.size());
  for (const GenerateResult& g : generated) {
    if (g.finish == FinishReason::kCancelled) {
      return absl::CancelledError("Compare: the client cancelled or went away; stopped generating");
    }
    if (metrics_ != nullptr) metrics_->AddGeneratedTokens(g.ids.size());
  }
  const size_t nv = views.size();
  const bool next_tokens = rows.front().keep_first_logprobs;
  for (size_t i = 0; i < result->rows.size(); ++i) {
    CompareRowResult& out = result->rows[i];
    out.a.generation = generated[i * nv];
    out.b.generation = std::move(generated[i * nv + nv - 1]);
    if (next_tokens) {
      RETURN_IF_ERROR(FillNextTokens(request, out.a.generation->first_logprobs,
                                     out.b.generation->first_logprobs, nv == 1, &out));
      out.a.generation->first_logprobs = torch::Tensor();
      out.b.generation->first_logprobs = torch::Tensor();
    }
    CompareSide* sides[2] = {&out.a, &out.b};
    for (CompareSide* side : sides) {
      std::vector<ContinuationScore>& scores = side->generation->continuation_scores;
      for (size_t j = 0; j < scores.size(); ++j) {
        side->targets.push_back(ToScored(request.targets[j], scores[j], *tokenizer_));
      }
      scores.clear();
    }
  }
  return absl::OkStatus();
}

absl::Status Engine::CompareScores(const TextCompareRequest& request,
                                   const PreparedCompare& prepared, CompareResult* result) {
  // Rows: for prompt i and view v, one row per target, or one bare prompt
  // row when there are no targets. The first row of each (i, v) also gives
  // the next-token distribution after the prompt.
  const std::vector<std::shared_ptr<const EditView>> views = CompareViews(prepared);
  const size_t nv = views.size();
  const size_t per_view = std::max<size_t>(prepared.target_ids.size(), 1);
  std::vector<ScoreRow> rows;
  for (const std::vector<int64_t>& prompt : prepared.prompt_ids) {
    for (size_t view = 0; view < nv; ++view) {
      for (size_t j = 0; j < per_view; ++j) {
        ScoreRow& row = rows.emplace_back();
        row.prompt_ids = prompt;
        if (!prepared.target_ids.empty()) row.continuation_ids = prepared.target_ids[j];
        row.view = static_cast<int>(view);
      }
    }
  }
  const bool want_next = request.top_k > 0 || request.kl;
  ASSIGN_OR_RETURN(std::vector<RowScore> scored, ScoreRows(*model_, rows, views, want_next));
  result->scoring_rows = static_cast<int64_t>(rows.size());
  return GuardTorch("compare next tokens", [&]() -> absl::Status {
    c10::InferenceMode inference_mode;
    for (size_t i = 0; i < result->rows.size(); ++i) {
      CompareRowResult& out = result->rows[i];
      // b's rows are a's when both variants are one model.
      const RowScore* first[2] = {&scored[i * nv * per_view],
                                  &scored[(i * nv + nv - 1) * per_view]};
      CompareSide* sides[2] = {&out.a, &out.b};
      for (int v = 0; v < 2; ++v) {
        for (size_t j = 0; j < prepared.target_ids.size(); ++j) {
          sides[v]->targets.push_back(
              ToScored(request.targets[j], first[v][j].score, *tokenizer_));
        }
      }
      if (want_next) {
        RETURN_IF_ERROR(FillNextTokens(request, first[0]->next_token_logprobs,
                                       first[1]->next_token_logprobs, nv == 1, &out));
      }
    }
    return absl::OkStatus();
  });
}

absl::Status Engine::FillNextTokens(const TextCompareRequest& request, const torch::Tensor& logp_a,
                                    const torch::Tensor& logp_b, bool same_model,
                                    CompareRowResult* row) const {
  return GuardTorch("compare next tokens", [&]() -> absl::Status {
    c10::InferenceMode inference_mode;
    row->a.top = TopTokens(logp_a, request.top_k, *tokenizer_);
    row->b.top = TopTokens(logp_b, request.top_k, *tokenizer_);
    if (request.kl) row->kl = same_model ? 0.0 : KlDivergence(logp_a, logp_b);
    return absl::OkStatus();
  });
}

}  // namespace romed
