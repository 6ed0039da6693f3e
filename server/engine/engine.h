// Engine: romed's core API for serving one loaded model. The transport
// (server/service) sees only this header and engine_types.h; nothing here
// knows gRPC. Text in, text out: the engine tokenizes, validates against its
// limits, admits or rejects, and runs the model layer.
//
//   ASSIGN_OR_RETURN(Checkpoint ckpt, LoadCheckpoint(dir));
//   ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine,
//                    Engine::Create(std::move(ckpt), EngineOptions{}, &metrics));
//   ASSIGN_OR_RETURN(GenerateResult r, engine->Generate({.prompt = "Paris is"}));
//
// Errors (absl canonical codes; the service maps them 1:1 to gRPC's):
//   INVALID_ARGUMENT    malformed input: empty or non-UTF-8 text, a prompt
//                       longer than --max_prompt_tokens or the context,
//                       max_new_tokens out of range, bad sampling values, too
//                       many stop sequences / continuations, an empty one.
//                       The message names the field, the numbers and the flag.
//   NOT_FOUND           a session_id that names no session.
//   RESOURCE_EXHAUSTED  --max_concurrent_requests Generate/Score requests are
//                       already running (admission never queues).
//   INTERNAL            the model failed (a libtorch error, with context).
// Validation happens before admission, so bad input never takes a slot and
// nothing changes on any error.
//
// Thread safety: every method may be called concurrently; concurrent
// Generate/Score calls run concurrently (each on its caller's thread, or
// batched together when EngineOptions::max_batch_size > 1).
#ifndef ROMED_SERVER_ENGINE_ENGINE_H_
#define ROMED_SERVER_ENGINE_ENGINE_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/engine/compare_types.h"
#include "server/engine/concurrency_limiter.h"
#include "server/engine/edit_site_store.h"
#include "server/engine/edit_types.h"
#include "server/engine/engine_options.h"
#include "server/engine/engine_types.h"
#include "server/engine/export_types.h"
#include "server/engine/trace_types.h"
#include "server/model/checkpoint.h"
#include "server/model/generator.h"
#include "server/model/gpt2_model.h"
#include "server/model/rank_one.h"
#include "server/model/tokenizer.h"
#include "server/session/session_registry.h"
#include "server/trace/noise.h"
#include "server/trace/trace_options.h"

namespace romed {

class GenerateBatcher;
class ServingMetrics;

class Engine {
 public:
  // Takes the loaded checkpoint (its weights become the immutable model),
  // opens the session store under options.state_dir (in memory when empty)
  // and restores every stored session. `metrics` may be null (no metrics);
  // otherwise it must outlive the engine. InvalidArgumentError for
  // inconsistent options (a limit < 1); the store's errors (e.g.
  // FailedPreconditionError for sessions made on another model).
  static absl::StatusOr<std::unique_ptr<Engine>> Create(Checkpoint checkpoint,
                                                        EngineOptions options,
                                                        ServingMetrics* metrics = nullptr);
  // Waits for batched work in flight; callers must not call in concurrently.
  ~Engine();

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The model, its checksum, dtype, device, BLAS, threads and limits.
  EngineInfo Info() const;

  // Token ids and vocabulary strings of `text` (may be empty: no tokens).
  // INVALID_ARGUMENT for invalid UTF-8 (with the byte offset).
  absl::StatusOr<TokenizeResult> Tokenize(std::string_view text) const;

  // Generates a continuation of request.prompt. `on_token` (may be null) is
  // called on the calling thread, or on the batcher's, once per new token;
  // returning false stops generation with FinishReason::kCancelled (the
  // result so far is returned, OK).
  absl::StatusOr<GenerateResult> Generate(const TextGenerateRequest& request,
                                          const TokenCallback& on_token = nullptr);

  // Log-probabilities of each continuation after the prompt, equal to
  // ScoreContinuations() on the same ids.
  absl::StatusOr<ScoreResult> Score(const TextScoreRequest& request);

  // --------------------------------------------- shared by every verb
  // The edited model a request on `session_id` runs: null for "" (the base
  // model), else the session's current EditView (empty for an empty stack).
  // NotFoundError for an unknown id, with how to create one. The snapshot is
  // immutable: an Edit that lands later does not change it.
  absl::StatusOr<std::shared_ptr<const EditView>> SessionView(std::string_view session_id) const;

  // A slot of --max_concurrent_heavy_jobs for Edit / Trace / ComputeStats,
  // held while the job runs. RESOURCE_EXHAUSTED when all are taken.
  absl::StatusOr<ConcurrencyLimiter::Slot> AcquireHeavyJob() { return heavy_limiter_.TryAcquire(); }

  // --------------------------------------------- sessions, Edit, Revert, ComputeStats
  // (issue #5; implemented in engine_sessions.cc; types in edit_types.h)
  //
  // Session verbs answer INVALID_ARGUMENT for an empty or non-UTF-8 id and
  // NOT_FOUND for an unknown one; the registry's codes otherwise
  // (session_registry.h). Every error leaves every session unchanged.

  // A new empty session. RESOURCE_EXHAUSTED at --max_sessions;
  // INVALID_ARGUMENT for a name or labels past their limits.
  absl::StatusOr<std::shared_ptr<const SessionState>> CreateSession(
      const CreateSessionRequest& request);
  absl::StatusOr<std::shared_ptr<const SessionState>> GetSession(std::string_view id) const;
  // page_size 0..1000 (0 = 100); page_token "" or an earlier next_page_token.
  absl::StatusOr<SessionListPage> ListSessions(int64_t page_size,
                                               const std::string& page_token) const;
  absl::Status DeleteSession(std::string_view id);

  // ROME: computes request.rewrites in order on the session's current state
  // and pushes them as one stack entry, committed to the store before it
  // returns. Options: DefaultRomeOptions(model) <- the tracing
  // recommendation (edit_sites()) <- request.overrides. Statistics C come
  // from the engine's CorpusCovariance over the stats corpus (computed on
  // first use at a layer, then cached in memory and under state_dir), or
  // C = I when overrides.identity_covariance.
  // Errors, all before anything changes:
  //   INVALID_ARGUMENT    empty session_id; no rewrites or too many; a prompt
  //                       without "{}" or with two; a subject not in the
  //                       prompt; empty subject or target_new; non-UTF-8
  //                       text; layer or hyperparameters out of range;
  //                       prompt + target longer than the context.
  //   NOT_FOUND           unknown session.
  //   RESOURCE_EXHAUSTED  the session holds --max_edits_per_session edits;
  //                       --max_concurrent_heavy_jobs jobs are running.
  //   FAILED_PRECONDITION the stats corpus is missing or empty (the message
  //                       says how to fix it or to ask for identity).
  //   CANCELLED           `cancelled` returned true (polled before the
  //                       statistics batches and each rewrite).
  // target_new equal to the current answer is allowed and reported
  // (RewriteResultRecord::target_already_predicted). Generate/Score on the
  // session during the edit run on the snapshot before it.
  absl::StatusOr<EditResult> Edit(const TextEditRequest& request,
                                  const CancelCheck& cancelled = nullptr);

  // Pops entries (RevertTarget::Pop(n)) or keeps those up to an id
  // (KeepUpTo); outputs then equal those before the removed edits bit for
  // bit. INVALID_ARGUMENT for n < 1 or more than the stack holds; NOT_FOUND
  // for an id not on the stack.
  absl::StatusOr<RevertResult> Revert(std::string_view session_id, RevertTarget target);

  // The session's stack, bottom first.
  absl::StatusOr<std::vector<EditEntry>> ListEdits(std::string_view session_id) const;

  // C = E[k k^T] at request.layer over a corpus, cached under state_dir;
  // `on_progress` (may be null) after every batch, on the calling thread.
  // Served from the cache (memory or disk) unless request.recompute. Takes a
  // heavy-job slot. INVALID_ARGUMENT: layer out of range, max_tokens < 0;
  // NOT_FOUND: the corpus path does not exist; FAILED_PRECONDITION: it holds
  // no text; RESOURCE_EXHAUSTED: no heavy-job slot; CANCELLED.
  absl::StatusOr<ComputeStatsResult> ComputeStats(
      const ComputeStatsRequest& request,
      const std::function<void(const CovarianceProgress&)>& on_progress = nullptr,
      const CancelCheck& cancelled = nullptr);

  // The stats corpus Edit uses (EngineOptions::stats_corpus or
  // <model dir>/stats_corpus.txt).
  std::string DefaultStatsCorpus() const;

 private:
  struct EditResources;  // shared by every Edit: templates, covariance (engine_sessions.cc)
  EditResources& edit_resources();
  absl::StatusOr<RomeOptions> ResolveRomeOptions(const RomeOverrides& overrides,
                                                 std::map<std::string, std::string>* used) const;
  absl::Status ValidateEditRequest(const TextEditRequest& request) const;
  void RecordEditTimings(const EditEntry& entry) const;
  std::once_flag edit_resources_once_;
  std::shared_ptr<EditResources> edit_resources_;  // created on first use

 public:

  // --------------------------------------------- Trace (issue #4; engine_trace.cc)
  // Causal trace of one prompt (trace_types.h, server/trace/causal_trace.h),
  // on the session's edited model when session_id is set. Noise defaults to
  // 3 x the std of subject-token embeddings over <model_dir>/known_facts.json
  // (the vocabulary's std if there is none), measured once per engine.
  // Errors, checked in this order, nothing computed before the last:
  //   INVALID_ARGUMENT    empty / non-UTF-8 / too long prompt (names
  //                       --max_prompt_tokens), subject empty, not in the
  //                       prompt or covering it, window outside [1, L],
  //                       samples outside [1, 64], noise negative or not
  //                       finite or both forms given, repeated kinds, an
  //                       answer with no tokens;
  //   NOT_FOUND           unknown session_id;
  //   RESOURCE_EXHAUSTED  --max_concurrent_heavy_jobs jobs already running;
  //   CANCELLED / DEADLINE_EXCEEDED  what callbacks.check_cancelled returned.
  absl::StatusOr<TraceResult> Trace(const TextTraceRequest& request,
                                    const TraceCallbacks& callbacks);

  // Traces many facts with the same options (one heavy-job slot for all),
  // averages them (AggregateTraces), recommends the edit site
  // (RecommendEditSite) and, if asked, stores it in edit_sites().
  // `on_fact` (may be null) is called after each fact. Errors: Trace's for
  // the options and for any fact (the message names the fact's index), all
  // facts checked before the first is traced; INVALID_ARGUMENT for n outside
  // [1, kMaxTraceFacts], prompt/subject/answer set in the options, or
  // storing without the mlp kind or with a session; FAILED_PRECONDITION if
  // no facts are given and the model has no known_facts.json (DATA_LOSS if
  // it cannot be parsed); edit_sites().Put's errors.
  absl::StatusOr<TraceFactsResult> TraceFacts(const TextTraceFactsRequest& request,
                                              const TraceCallbacks& callbacks,
                                              const TraceFactCallback& on_fact = nullptr);

  // The std of token embeddings the default noise multiplies, and its basis
  // (cached after the first call).
  absl::StatusOr<std::pair<double, NoiseBasis>> TraceEmbeddingStd();

  // --------------------------------------------- Compare (issue #6; engine_compare.cc)
  // The same prompts on variant a and variant b (each a session's edited
  // model or the original model; compare_types.h) in one batch: greedy or
  // seeded generations (one batched decode of 2 x prompts rows, each row on
  // its variant's edit view), every target's log-probs, the top-k next tokens
  // and KL(a || b) of the next-token distributions (one scoring forward).
  // Each number equals Generate / Score on that variant alone (to float32
  // round-off of the batch shape). Takes one --max_concurrent_requests slot.
  // Errors, all before anything runs:
  //   INVALID_ARGUMENT    no prompts or more than --max_continuations;
  //                       prompts x targets > --max_continuations; an empty,
  //                       non-UTF-8 or too long prompt or target (the message
  //                       names prompts[i] / targets[j] and the limit);
  //                       max_new_tokens outside 0..--max_new_tokens or past
  //                       the context; top_k outside 0..min(100, V); bad
  //                       sampling or stop sequences; nothing asked for.
  //   NOT_FOUND           an unknown session (the message names the variant).
  //   RESOURCE_EXHAUSTED  --max_concurrent_requests requests are running.
  //   CANCELLED           `cancelled` (may be null) returned true: polled
  //                       once per decoded token and before the scoring pass.
  // a == b is allowed (the batch runs it once: equal columns, KL exactly 0).
  absl::StatusOr<CompareResult> Compare(const TextCompareRequest& request,
                                        const CancelCheck& cancelled = nullptr);

 private:
  struct PreparedCompare;  // validated tokens and views (engine_compare.cc)
  absl::StatusOr<PreparedCompare> PrepareCompare(const TextCompareRequest& request) const;
  static std::vector<std::shared_ptr<const EditView>> CompareViews(
      const PreparedCompare& prepared);
  absl::Status CompareGenerations(const TextCompareRequest& request,
                                  const PreparedCompare& prepared, const CancelCheck& cancelled,
                                  CompareResult* result);
  absl::Status CompareScores(const TextCompareRequest& request, const PreparedCompare& prepared,
                             CompareResult* result);
  // Top-k and KL of one prompt from the two variants' log p(. | prompt) [V].
  absl::Status FillNextTokens(const TextCompareRequest& request, const torch::Tensor& logp_a,
                              const torch::Tensor& logp_b, bool same_model,
                              CompareRowResult* row) const;

 public:
  // --------------------------------------------- export and import (issue #6; engine_export.cc)
  // The session's stack as one safetensors file (session_export.h): every
  // delta in its stored dtype and every entry's record, with this model's
  // checksum. INVALID_ARGUMENT for an empty id; NOT_FOUND for an unknown
  // session; FAILED_PRECONDITION for a session without edits.
  absl::StatusOr<ExportedSession> ExportSession(std::string_view session_id) const;

  // Puts a file's entries, in order and each with its record, on a new
  // session (request.session_id "") or on an existing session whose stack
  // is empty, committed to the store in one transaction; outputs then equal
  // the exported session's bit for bit. Errors, all before anything changes:
  //   INVALID_ARGUMENT    not a session export (corrupt, truncated, another
  //                       format), a delta of the wrong shape or not finite,
  //                       a file without edits, a bad name;
  //   FAILED_PRECONDITION the file was made on another base model (the
  //                       message names both checksums); the session holds
  //                       edits;
  //   NOT_FOUND           an unknown session_id;
  //   RESOURCE_EXHAUSTED  more entries than --max_edits_per_session; a new
  //                       session past --max_sessions.
  absl::StatusOr<ImportSessionResult> ImportSession(const ImportSessionRequest& request);

  // Writes a Hugging Face GPT-2 directory (config.json, model.safetensors in
  // float32, vocab.json, merges.txt) whose weights are the base weights with
  // the session's deltas merged (MergeDeltas), loadable as a base model by
  // romed or any HF GPT-2 reader. Takes a heavy-job slot. Errors:
  //   INVALID_ARGUMENT    empty session_id or out_dir;
  //   NOT_FOUND           unknown session; out_dir's parent does not exist;
  //   FAILED_PRECONDITION out_dir exists and overwrite is false (the message
  //                       says to pass overwrite), or it is not a directory;
  //   RESOURCE_EXHAUSTED  no heavy-job slot;
  //   the file system's errors (UNAVAILABLE / PERMISSION_DENIED, naming the file).
  // With overwrite, only the four checkpoint files are replaced (each
  // atomically); other files in out_dir stay.
  absl::StatusOr<ExportModelResult> ExportModel(const ExportModelRequest& request);

  // --------------------------------------------- the layers underneath
  const Gpt2Model& model() const { return *model_; }
  const Gpt2Tokenizer& tokenizer() const { return *tokenizer_; }
  const EngineOptions& options() const { return options_; }
  const std::string& checksum() const { return checksum_; }
  SessionRegistry& sessions() { return *sessions_; }
  // The edit site tracing recommended for this model (Edit's default).
  EditSiteStore& edit_sites() { return *edit_sites_; }

 private:
  Engine(Checkpoint checkpoint, EngineOptions options, ServingMetrics* metrics,
         std::unique_ptr<SessionRegistry> sessions);

  // Validates and tokenizes; fills the model-level request.
  absl::StatusOr<romed::GenerateRequest> PrepareGenerate(const TextGenerateRequest& request) const;
  absl::StatusOr<std::vector<int64_t>> EncodePrompt(std::string_view prompt,
                                                    bool needs_new_token) const;
  // Runs one prepared request (directly or through the batcher).
  absl::StatusOr<GenerateResult> RunGenerate(const romed::GenerateRequest& request,
                                             const TokenCallback& on_token);

  const EngineOptions options_;
  ServingMetrics* const metrics_;  // may be null
  const std::string model_dir_;
  const std::string checksum_;
  const TokenizerFiles tokenizer_files_;  // written by ExportModel
  std::shared_ptr<const Gpt2Tokenizer> tokenizer_;
  std::shared_ptr<const Gpt2Model> model_;
  std::unique_ptr<Generator> generator_;
  std::unique_ptr<GenerateBatcher> batcher_;  // null when max_batch_size == 1
  ConcurrencyLimiter limiter_;
  ConcurrencyLimiter heavy_limiter_;
  std::unique_ptr<SessionRegistry> sessions_;
  std::unique_ptr<EditSiteStore> edit_sites_;

  // Trace (engine_trace.cc).
  absl::StatusOr<TraceOptions> PrepareTrace(const TextTraceRequest& request,
                                            const TraceCallbacks& callbacks);
  EmbeddingStdCache trace_embedding_std_;
};

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_ENGINE_H_
