// Gpt2Model: GPT-2's forward pass over immutable weights, with hook points
// (hooks.h), per-row rank-one edits (rank_one.h), padding masks and a KV
// cache. One function serves generation, scoring, tracing, ROME and
// statistics; training the fact model runs it under autograd.
//
// Block l (pre-LayerNorm):
//   a   = attn(ln_1(x))                  -> kAttnOut
//   x   = x + a
//   k   = gelu_new(ln_2(x) W_fc + b_fc)  -> kMlpIn
//   m   = k W_proj + b_proj + edits(k)   -> kMlpOut
//   x   = x + m                          -> kResidPost
//
// Padding: `attention_mask` marks real tokens (1) and padding (0); padded
// keys are never attended to. Position ids count real tokens only, so a
// left-padded row gets the same positions (and logits) as the row alone.
//
// Thread safety: Forward() is const and may run concurrently from many
// threads (weights are only read). Errors are thrown as c10::Error; callers
// outside server/model go through GuardTorch (server/core/torch_guard.h).
#ifndef ROMED_SERVER_MODEL_GPT2_MODEL_H_
#define ROMED_SERVER_MODEL_GPT2_MODEL_H_

#include <torch/torch.h>

#include "server/model/gpt2_config.h"
#include "server/model/gpt2_weights.h"
#include "server/model/hooks.h"
#include "server/model/kv_cache.h"
#include "server/model/rank_one.h"

namespace romed {

struct ForwardInput {
  torch::Tensor tokens;          // [B, T] int64
  torch::Tensor attention_mask;  // [B, T] int64 1/0; undefined = all real
};

struct ForwardOptions {
  // If set: attends to the cached past, then appends this call's keys and
  // values (and mask) to it. Empty cache on first call.
  KvCache* cache = nullptr;
  const Interventions* interventions = nullptr;
  const RowEdits* edits = nullptr;
  // Compute logits only for the last position of each row: [B, 1, V]
  // (with left padding that is every row's last real token).
  bool last_position_logits = false;
  // Stop after this layer's kResidPost and return an undefined tensor
  // (key capture and statistics need no logits). -1: run all layers.
  // Cannot be combined with `cache` (throws).
  int64_t stop_after_layer = -1;
  // Start at block `start_layer` (0..L-1) with `start_hidden` [B, T, C] as
  // the residual stream entering it (block start_layer - 1's kResidPost),
  // instead of embedding `tokens`, which still give the batch shape, the
  // mask and the positions. Hooks of skipped blocks (and kEmbed) do not run.
  // With a cache, only layers >= start_layer are read and appended: it must
  // hold the past positions' keys and values of those layers. 0: embed and
  // run every block (start_hidden must then be undefined).
  int64_t start_layer = 0;
  torch::Tensor start_hidden;
};

class Gpt2Model {
 public:
  // `weights` must pass weights.Validate(config) (checked; throws if not).
  Gpt2Model(Gpt2Config config, Gpt2Weights weights);

  const Gpt2Config& config() const { return config_; }
  const Gpt2Weights& weights() const { return weights_; }
  torch::Device device() const { return weights_.wte.device(); }
  torch::Dtype dtype() const { return weights_.wte.scalar_type(); }

  // Logits [B, T, V] in the model dtype (or [B, 1, V], see options).
  // Throws if cached + new positions exceed n_positions, if the mask or the
  // cache does not match `tokens`, or if a hook changes a shape. Padding
  // positions produce finite logits of no meaning.
  torch::Tensor Forward(const ForwardInput& input, const ForwardOptions& options = {}) const;

 private:
  Gpt2Config config_;
  Gpt2Weights weights_;
};

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_GPT2_MODEL_H_
