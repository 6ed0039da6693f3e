// TraceOptions: every knob of a causal trace, each with its default.
//
//   TraceOptions options;                  // three kinds, paper defaults
//   options.samples = 20;
//   options.check_cancelled = [&] { return DeadlineStatus(ctx); };
//   ASSIGN_OR_RETURN(TraceResult r, TracePrompt(model, tokenizer, prompt, subject, options));
#ifndef ROMED_SERVER_TRACE_TRACE_OPTIONS_H_
#define ROMED_SERVER_TRACE_TRACE_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/model/rank_one.h"
#include "server/trace/trace_result.h"

namespace romed {

// Most noise samples one trace may ask for.
inline constexpr int64_t kMaxTraceSamples = 64;

// The paper restores 10 of GPT-2 XL's 48 layers together; scaled to depth:
// max(1, round(10 * L / 48)). 4 layers -> 1, 12 -> 3, 24 -> 5, 48 -> 10.
int64_t DefaultTraceWindow(int64_t num_layers);

// How strong the noise on the subject's token embeddings is.
struct NoiseScale {
  enum class Mode {
    kMultiple,  // value x the embedding std (TraceOptions::embedding_std)
    kAbsolute,  // value is sigma itself
  };
  Mode mode = Mode::kMultiple;
  double value = 3.0;  // the paper's nu = 3 x std; must be >= 0
};

struct TraceOptions {
  // Which grids to compute, in this order. Must be non-empty, no repeats.
  std::vector<TraceKind> kinds = {TraceKind::kState, TraceKind::kMlp, TraceKind::kAttn};

  // Layers restored together for kMlp / kAttn: restoring "layer l" restores
  // [l - window/2, l + ceil(window/2)) clipped to [0, L), as the reference
  // code does. nullopt: DefaultTraceWindow(L). Must be in [1, L].
  std::optional<int64_t> window;

  // Noise sigma (absolute, or a multiple of the embedding std).
  NoiseScale noise;

  // Std of token embeddings for NoiseScale::kMultiple. The server measures it
  // over the subject tokens of the model's known facts (noise.h, cached per
  // model), as the paper does; nullopt: std over all vocabulary embeddings.
  std::optional<double> embedding_std;

  // Noise samples (rows per restoration). In [1, kMaxTraceSamples].
  int64_t samples = 10;

  // Seeds the noise; every restoration sees the same noise.
  uint64_t seed = 1;

  // The answer whose probability is traced: nullopt = the clean top-1 token;
  // otherwise this text's FIRST token (give it with its leading space, " Paris").
  std::optional<std::string> target;

  // Trace this edited model (a session's view); null = the base model.
  std::shared_ptr<const EditView> edit_view;

  // Severing of the state restorations (see SeverMode).
  SeverMode sever = SeverMode::kNone;

  // Most batch rows in one forward (at least one restoration, `samples`
  // rows, always runs). Memory per forward is about rows x T x (M + L x 2C)
  // floats (MLP activations and the KV cache of the corrupted prefix).
  int64_t max_batch_rows = 256;

  // Batching cost model (causal_trace.h): the fixed cost of running one block
  // in one forward pass (dispatch, small kernels), in multiply-adds. The
  // planner splits a token's restorations into forwards that each start at
  // their first restored layer when the work saved exceeds this per skipped
  // or added block. 0 splits wherever a forward could start later; a huge
  // value keeps one forward per max_batch_rows. Must be >= 0. Scores do not
  // depend on it (beyond float round-off).
  double block_overhead_macs = 4e6;

  // Longest prompt in tokens; 0 = the model's context (n_positions).
  int64_t max_prompt_tokens = 0;

  // Checked before every forward pass; a non-OK status (CancelledError,
  // DeadlineExceededError) stops the trace and is returned as is.
  std::function<absl::Status()> check_cancelled;

  // Called after every forward pass with (forwards done, forwards planned).
  std::function<void(int64_t done, int64_t total)> progress;
};

}  // namespace romed

#endif  // ROMED_SERVER_TRACE_TRACE_OPTIONS_H_
