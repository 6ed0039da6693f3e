// EngineOptions: the serving limits and execution knobs of an Engine. main.cc
// maps flags of the same names onto these fields; tests set them directly.
#ifndef ROMED_SERVER_ENGINE_ENGINE_OPTIONS_H_
#define ROMED_SERVER_ENGINE_ENGINE_OPTIONS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace romed {

// Request limits (reported by GetModelInfo as romed.v1.Limits). Each is a
// flag of the same name; a request past one gets INVALID_ARGUMENT (a size
// the client chose) or RESOURCE_EXHAUSTED (server capacity), as stated per
// field.
struct EngineLimits {
  // Longest prompt, in tokens (also capped by the model's context).
  // INVALID_ARGUMENT past it.
  int64_t max_prompt_tokens = 1024;
  // Largest max_new_tokens a request may ask for. INVALID_ARGUMENT past it.
  int64_t max_new_tokens = 512;
  // Most stop sequences per Generate request. INVALID_ARGUMENT past it.
  int64_t max_stop_sequences = 8;
  // Most continuations per Score request. INVALID_ARGUMENT past it.
  int64_t max_continuations = 64;
  // Generate/Score requests running at once; the next one gets
  // RESOURCE_EXHAUSTED (admission does not queue).
  int64_t max_concurrent_requests = 16;
  // Sessions that may exist at once; CreateSession past it: RESOURCE_EXHAUSTED.
  int64_t max_sessions = 1000;
  // Stack entries per session; Edit past it: RESOURCE_EXHAUSTED.
  int64_t max_edits_per_session = 1000;
  // Edit / Trace / ComputeStats jobs running at once; the next one gets
  // RESOURCE_EXHAUSTED (admission does not queue).
  int64_t max_concurrent_heavy_jobs = 1;
};

struct EngineOptions {
  EngineLimits limits;
  // Durable state: sessions.db (sessions and their edit stacks), stats/
  // (covariance statistics), sites/ (edit-site recommendations). "" keeps
  // everything in memory (tests): nothing survives the process.
  std::string state_dir;
  // Text corpus (UTF-8 file or directory) for Edit's covariance statistics;
  // "" = <model dir>/stats_corpus.txt (the fact model ships one). Flag
  // --stats_corpus.
  std::string stats_corpus;
  // max_new_tokens used when a request leaves it 0 (then also capped by the
  // limit and by the room left in the context).
  int64_t default_new_tokens = 32;
  // Up to this many concurrent Generate requests run together in one batched
  // decode (generate_batcher.h); 1 runs each request on its caller's thread.
  // Batching pays on CPU too: 8 concurrent 32-token requests on a gpt2-shaped
  // model, 2 threads, took 0.54x the time of per-request threads.
  int64_t max_batch_size = 8;
  // How long the batcher waits for more requests after the first one.
  absl::Duration batch_window = absl::Milliseconds(2);
};

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_ENGINE_OPTIONS_H_
