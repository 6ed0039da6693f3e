// The request and result of Engine::Compare (engine.h): the same prompts on
// two model variants (the original model or a session's edited model) in one
// batch. Plain data, text in and out, no gRPC; the service converts
// romed.v1.CompareRequest / CompareResponse to and from these.
#ifndef ROMED_SERVER_ENGINE_COMPARE_TYPES_H_
#define ROMED_SERVER_ENGINE_COMPARE_TYPES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/engine/engine_types.h"
#include "server/model/generator.h"
#include "server/model/sampling.h"

namespace romed {

// Most top-k next tokens a Compare may ask for per variant.
inline constexpr int64_t kMaxCompareTopK = 100;

struct TextCompareRequest {
  std::string session_a;              // variant a: a session id; "" = original model
  std::string session_b;              // variant b: likewise (equal to a is allowed)
  std::vector<std::string> prompts;   // 1..--max_continuations, each non-empty UTF-8
  // Tokens generated per prompt and variant: 0 = no generation; else
  // 1..--max_new_tokens, and prompt + max_new_tokens must fit the context.
  int64_t max_new_tokens = 0;
  // Both variants of a prompt sample with these parameters and the same seed,
  // so with temperature 0 (greedy) or one seed their texts differ only
  // through the edit. Validated as Generate's.
  SamplingParams sampling;
  std::vector<std::string> stop;      // as Generate's: at most --max_stop_sequences
  bool ignore_eos = false;            // as Generate's
  // Scored after every prompt under both variants (each non-empty UTF-8,
  // usually with a leading space). 0..--max_continuations, and
  // prompts x targets <= --max_continuations (the rows of one Score).
  std::vector<std::string> targets;
  int64_t top_k = 0;                  // next tokens reported per variant: 0..kMaxCompareTopK
  bool kl = false;                    // KL(a || b) of the next-token distributions
};

struct NextTokenProb {
  int64_t id = 0;
  std::string token;  // vocabulary string ("Ġworld")
  float prob = 0.0f;  // p(id | prompt) under the variant
};

// One prompt's results under one variant.
struct CompareSide {
  std::optional<GenerateResult> generation;     // set when max_new_tokens > 0
  std::vector<ScoredContinuation> targets;      // one per request target, in order
  std::vector<NextTokenProb> top;               // top_k entries, most likely first (ties: lower id)
};

struct CompareRowResult {
  std::string prompt;
  int64_t prompt_tokens = 0;
  CompareSide a;
  CompareSide b;
  // KL(p_a || p_b) in nats, sum over the vocabulary of the next-token
  // distributions after the prompt, computed in float64 and clamped at 0
  // (round-off); exactly 0 when a and b are one model; set when asked.
  std::optional<double> kl;
};

struct CompareResult {
  std::vector<CompareRowResult> rows;  // one per prompt, in order
  int64_t deltas_a = 0;                // rank-one deltas variant a runs (0 = original model)
  int64_t deltas_b = 0;
  // Rows of the batched generation (2 x prompts; prompts when a and b are one
  // model; 0 without generation) and of the one scoring forward (2 x prompts
  // x max(1, targets), halved likewise; 0 without targets when either no
  // top-k / KL is asked or a generation's first step gave them).
  int64_t generation_rows = 0;
  int64_t scoring_rows = 0;
  double total_time_s = 0.0;
};

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_COMPARE_TYPES_H_
