// Merging rank-one deltas into the weights: the plain checkpoint a session's
// edited model equals, for tools that know nothing of factors.
//
// At layer l the factor form computes  k W_proj + b + sum_i (u_i . k) lambda_i
// with W_proj the HF Conv1D weight [M, C] (k [.., M] the key). So the merged
// weight is  W_proj + sum_i u_i lambda_i^T  ([M, 1] x [1, C] outer products):
// ROME's W + lambda u^T on the transposed, Linear-layout W (rank_one.h).
//
// Notation: M = MLP width (config.mlp_width(), 4 * n_embd for GPT-2), C = n_embd.
#ifndef ROMED_SERVER_MODEL_MERGE_DELTAS_H_
#define ROMED_SERVER_MODEL_MERGE_DELTAS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "server/model/gpt2_config.h"
#include "server/model/gpt2_weights.h"
#include "server/model/rank_one.h"

namespace romed {

// A copy of `weights` as float32 CPU tensors with every delta added to its
// layer's h.{l}.mlp.c_proj.weight. Each layer's sum of outer products is
// accumulated in float64 and added to the float32 weight once, so the
// merged weight differs from the factor form by float32 round-off only.
// `weights` are not modified. InvalidArgumentError naming the delta if a
// layer is out of range or u is not [M] or lambda not [C].
absl::StatusOr<Gpt2Weights> MergeDeltas(const Gpt2Config& config, const Gpt2Weights& weights,
                                        const std::vector<RankOneDelta>& deltas);

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_MERGE_DELTAS_H_
