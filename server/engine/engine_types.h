// The requests and results of the Engine's API (engine.h): plain data, text
// in and out, no gRPC. The service converts romed.v1 messages to and from
// these; model-level types (ids, SamplingParams, GenerateResult) are reused
// where they already say what a client needs.
#ifndef ROMED_SERVER_ENGINE_ENGINE_TYPES_H_
#define ROMED_SERVER_ENGINE_ENGINE_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "server/engine/engine_options.h"
#include "server/model/generator.h"
#include "server/model/gpt2_config.h"
#include "server/model/sampling.h"

namespace romed {

// The loaded model and the engine's configuration (GetModelInfo).
struct EngineInfo {
  std::string architecture;   // "gpt2"
  std::string model_dir;      // as given to LoadCheckpoint
  std::string checksum;       // hex SHA-256 of the checkpoint files
  int64_t num_parameters = 0;
  Gpt2Config config;
  std::string dtype;          // compute dtype, "float32"
  std::string device;         // "cpu", "cuda:0"
  std::string blas;           // DescribeBlas()
  int threads = 0;            // intra-op threads
  EngineLimits limits;
  int64_t max_batch_size = 1;
};

struct TokenizeResult {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;  // vocabulary strings ("Ġworld"), one per id
};

struct TextGenerateRequest {
  std::string prompt;                // non-empty UTF-8
  int64_t max_new_tokens = 0;        // 1..limit; 0 = default (see EngineOptions)
  SamplingParams sampling;           // validated by ValidateSampling
  std::vector<std::string> stop;     // each non-empty UTF-8; at most the limit
  bool ignore_eos = false;           // keep going past <|endoftext|>
  std::string session_id;            // empty = base model
};

struct TextScoreRequest {
  std::string prompt;                      // non-empty UTF-8
  std::vector<std::string> continuations;  // 1..limit, each non-empty UTF-8
  std::string session_id;                  // empty = base model
};

struct ScoredContinuation {
  std::string continuation;
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;
  std::vector<float> token_logprobs;  // log p(ids[i] | prompt, ids[<i])
  double total_logprob = 0.0;         // sum of token_logprobs
  double mean_logprob = 0.0;          // total / number of tokens
};

struct ScoreResult {
  std::vector<ScoredContinuation> scores;  // one per continuation, in order
  int64_t prompt_tokens = 0;
};

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_ENGINE_TYPES_H_
