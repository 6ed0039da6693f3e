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
//   NOT_FOUND           a non-empty session_id (sessions arrive with issue #5).
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

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/engine/concurrency_limiter.h"
#include "server/engine/engine_options.h"
#include "server/engine/engine_types.h"
#include "server/model/checkpoint.h"
#include "server/model/generator.h"
#include "server/model/gpt2_model.h"
#include "server/model/tokenizer.h"

namespace romed {

class GenerateBatcher;
class ServingMetrics;

class Engine {
 public:
  // Takes the loaded checkpoint (its weights become the immutable model).
  // `metrics` may be null (no metrics); otherwise it must outlive the
  // engine. InvalidArgumentError for inconsistent options (a limit < 1).
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

  // The model layer underneath (for tests and benchmarks).
  const Gpt2Model& model() const { return *model_; }
  const Gpt2Tokenizer& tokenizer() const { return *tokenizer_; }
  const EngineOptions& options() const { return options_; }

 private:
  Engine(Checkpoint checkpoint, EngineOptions options, ServingMetrics* metrics);

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
  std::shared_ptr<const Gpt2Tokenizer> tokenizer_;
  std::shared_ptr<const Gpt2Model> model_;
  std::unique_ptr<Generator> generator_;
  std::unique_ptr<GenerateBatcher> batcher_;  // null when max_batch_size == 1
  ConcurrencyLimiter limiter_;
};

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_ENGINE_H_
