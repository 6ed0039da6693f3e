// Causal tracing (ROME.md section 2), batched.
//
// The method: one clean run gives the answer o and high = p(o); S corrupted
// runs add sigma x N(0,1) to the subject's token embeddings (the same noise
// for every restoration) and give low = mean p(o); then for every
// (kind, token t, layer l) the clean value is copied into the corrupted runs
// and scores[kind][t][l] = mean over samples of p(o).
//
// What is batched (the paper's code runs one batch of S + 1 rows over the
// whole prompt per (kind, t, l), about 3 T L forwards):
//  - the clean run happens once, and so does the corrupted run;
//  - many restorations share a forward: rows are restorations x samples, up
//    to TraceOptions::max_batch_rows per forward;
//  - positions before a forward's earliest restored token t cannot change,
//    so it starts at t on a KV cache of the corrupted prefix [0, t);
//  - blocks before its earliest restored layer compute exactly the
//    corrupted run, so it starts at that layer from the corrupted run's
//    hidden state (Gpt2Model's start_layer);
//  - which restorations share a forward is planned by a small dynamic
//    programme over a cost model (blocks run x rows x positions x block MACs,
//    plus TraceOptions::block_overhead_macs per block and forward): deep,
//    wide models get per-token forwards that start late, small models a few
//    large forwards across tokens;
//  - cells that cannot change p(o) are not run at all and score exactly low:
//    tokens before the subject (clean = corrupted there), and a restoration
//    confined to the last layer at a token other than the last.
// The numbers equal the per-(token, layer) reference (tests/trace) to float
// round-off (< 1e-5 in p).
//
// Cost: the reference runs ~3 T L forwards of (S + 1) x T token-rows x L
// blocks with full logits; this runs, per restoration at (t, l), S x (T - t)
// token-rows x (L - l) blocks and S last-position logits: for a T-token
// prompt ~(S + 1) / S x 2 x 2 ~ 4.4x fewer block FLOPs, plus the LM head
// (large for shallow, wide-vocabulary models) and the skipped cells. For a
// deep model that bounds the exact speed-up near 5x: the paper's 10x needs
// the LM head to dominate (bench/results/trace_cpu.md).
//
// Thread safety: the functions are reentrant; the model is only read.
#ifndef ROMED_SERVER_TRACE_CAUSAL_TRACE_H_
#define ROMED_SERVER_TRACE_CAUSAL_TRACE_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "server/model/gpt2_model.h"
#include "server/model/tokenizer.h"
#include "server/trace/trace_options.h"
#include "server/trace/trace_result.h"

namespace romed {

// A prompt already tokenised, with its subject located (subject_locator.h).
struct TraceInput {
  std::vector<int64_t> tokens;  // [T]
  int64_t subject_begin = 0;    // subject tokens [begin, end)
  int64_t subject_end = 0;
  std::optional<int64_t> answer_token;  // nullopt: the clean top-1 token
};

// Traces `input` (options.target is ignored here: see TracePrompt).
// Errors:
//  - InvalidArgumentError: empty prompt, prompt longer than the limit, a
//    token outside the vocabulary, subject range empty / outside the prompt /
//    covering the whole prompt, window outside [1, L], samples outside
//    [1, kMaxTraceSamples], negative or non-finite noise, no or repeated
//    kinds, answer token outside the vocabulary, max_batch_rows < 1;
//  - whatever options.check_cancelled returns (CancelledError,
//    DeadlineExceededError), as soon as it is checked;
//  - InternalError / ResourceExhaustedError from libtorch (never an exception).
// The result's token_texts and answer_text are left empty.
absl::StatusOr<TraceResult> CausalTrace(const Gpt2Model& model, const TraceInput& input,
                                        const TraceOptions& options);

// Tokenises `prompt`, locates `subject` (LocateSubject's errors), resolves
// options.target to its first token (InvalidArgumentError if it has none),
// traces, and fills in the token and answer texts.
absl::StatusOr<TraceResult> TracePrompt(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                        std::string_view prompt, std::string_view subject,
                                        const TraceOptions& options);

// The layers [first, last) restored together for a window "at" `layer`:
// [layer - window/2, layer + ceil(window/2)) clipped to [0, num_layers).
std::pair<int64_t, int64_t> WindowLayers(int64_t layer, int64_t window, int64_t num_layers);

}  // namespace romed

#endif  // ROMED_SERVER_TRACE_CAUSAL_TRACE_H_
