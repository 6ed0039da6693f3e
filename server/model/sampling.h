// Next-token selection: greedy, temperature, top-k and nucleus (top-p).
// Pure functions over one row of logits; no model needed.
#ifndef ROMED_SERVER_MODEL_SAMPLING_H_
#define ROMED_SERVER_MODEL_SAMPLING_H_

#include <cstdint>
#include <random>

#include <torch/torch.h>

#include "absl/status/status.h"

namespace romed {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy (argmax); must be >= 0
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all; must be >= 0
  float top_p = 1.0f;        // keep the smallest set with mass >= top_p; in (0, 1]
  uint64_t seed = 0;         // seeds the per-request generator (see MakeRng)
};

// InvalidArgumentError naming the field for values outside the ranges above.
absl::Status ValidateSampling(const SamplingParams& params);

// The generator a request samples from: same seed, same tokens.
std::mt19937_64 MakeRng(uint64_t seed);

struct SampledToken {
  int64_t id = 0;
  float logprob = 0.0f;  // log p(id) under the model (temperature 1, untruncated)
};

// Chooses the next token from `logits` [V] (any float dtype, any device).
// Greedy ties break to the lowest id.
SampledToken SampleToken(const torch::Tensor& logits, const SamplingParams& params,
                         std::mt19937_64& rng);

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_SAMPLING_H_
