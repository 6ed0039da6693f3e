// The Engine's causal-trace requests and results as plain data (text in,
// numbers out; no libtorch, no gRPC). The service converts romed.v1 messages
// to and from these (server/service/proto_convert_trace.h); Engine::Trace and
// Engine::TraceFacts (engine.h) validate and run them.
//
//   TextTraceRequest request;
//   request.prompt = "Dora Zope is originally from";
//   request.subject = "Dora Zope";
//   ASSIGN_OR_RETURN(TraceResult r, engine->Trace(request, {}));
#ifndef ROMED_SERVER_ENGINE_TRACE_TYPES_H_
#define ROMED_SERVER_ENGINE_TRACE_TYPES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/trace/trace_aggregate.h"
#include "server/trace/trace_result.h"

namespace romed {

// Most facts one TraceFacts request may trace, and how many it traces when
// the request leaves the number unset.
inline constexpr int64_t kMaxTraceFacts = 1000;
inline constexpr int64_t kDefaultTraceFacts = 50;

// One Trace request. Every field's default is the paper's.
struct TextTraceRequest {
  std::string prompt;   // non-empty UTF-8, <= --max_prompt_tokens tokens
  std::string subject;  // occurs in the prompt; not the whole prompt
  // Grids in order; empty = state, mlp, attn. No repeats.
  std::vector<TraceKind> kinds;
  // Layers restored together for mlp / attn, in [1, L]; nullopt = the
  // depth-scaled default (DefaultTraceWindow).
  std::optional<int64_t> window;
  // At most one of the two: an absolute sigma, or a multiple of the model's
  // embedding std (subject tokens of its known facts, else the vocabulary).
  // Neither: 3 x the std. Each finite and >= 0.
  std::optional<double> noise_sigma;
  std::optional<double> noise_multiplier;
  // Noise samples in [1, kMaxTraceSamples]; nullopt = 10.
  std::optional<int64_t> samples;
  uint64_t seed = 0;
  // The answer text (its first token is traced); empty = the clean top-1.
  std::string answer;
  // Trace this session's edited model; empty = the base model.
  std::string session_id;
  SeverMode sever = SeverMode::kNone;
};

// How a running trace reports progress and learns it should stop. Either
// may be empty. Both are called on the calling thread.
struct TraceCallbacks {
  // Checked before every forward pass; a non-OK status (CancelledError,
  // DeadlineExceededError) stops the work and is returned as is.
  std::function<absl::Status()> check_cancelled;
  // Trace: after every forward pass, (forwards done, forwards planned).
  std::function<void(int64_t done, int64_t total)> progress;
};

// A fact to trace with TraceFacts.
struct TraceFact {
  std::string prompt;
  std::string subject;
  std::string answer;  // e.g. " Vienna"; empty = the clean top-1 token
};

struct TextTraceFactsRequest {
  // The facts; empty = the model's <model_dir>/known_facts.json.
  std::vector<TraceFact> facts;
  // Trace the first n, in [1, kMaxTraceFacts]; nullopt = kDefaultTraceFacts
  // (or all there are, if fewer).
  std::optional<int64_t> n;
  // kinds, window, noise, samples, seed, session_id and sever apply to every
  // fact; prompt, subject and answer must be empty.
  TextTraceRequest options;
  // Store the recommendation in Engine::edit_sites() (needs the mlp kind and
  // an empty session_id).
  bool store_recommendation = false;
};

// What one traced fact gave, reported as soon as it is traced.
struct TraceFactSummary {
  int64_t index = 0;  // in the traced list, from 0
  int64_t total = 0;  // facts being traced
  TraceFact fact;
  std::string answer_text;  // the traced answer token's text
  double high_score = 0;
  double low_score = 0;
};

using TraceFactCallback = std::function<void(const TraceFactSummary&)>;

struct TraceFactsResult {
  AggregateTable table;
  // nullopt when the mlp kind was not traced.
  std::optional<SiteRecommendation> recommendation;
  bool stored = false;  // now the model's default edit site
  double time_s = 0;
};

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_TRACE_TYPES_H_
