// Hook points of the forward pass and the Interventions that act on them.
//
// Every algorithm that looks inside the model (causal tracing, ROME's key and
// value, covariance statistics) is written against this interface; none
// patches the model from outside. Names follow TransformerLens:
//
//   point        shape      what it is (layer l)
//   kEmbed       [B,T,C]    token embeddings wte[ids], BEFORE position
//                           embeddings are added (layer ignored; use 0).
//                           Causal tracing adds noise here.
//   kResidPre    [B,T,C]    residual stream entering block l
//   kAttnOut     [B,T,C]    attention output (after c_proj, with bias)
//   kMlpIn       [B,T,M]    input of W_proj = gelu(c_fc(ln_2(x))): ROME's key
//   kMlpOut      [B,T,C]    MLP output (W_proj k + b + session deltas)
//   kResidPost   [B,T,C]    residual stream leaving block l
//
// Positions in a Site are indices into THIS call's T tokens (with a KV cache
// the past is not addressable). Hooks at one address run in the order added.
//
// Not thread-safe: build one Interventions per forward call.
#ifndef ROMED_SERVER_MODEL_HOOKS_H_
#define ROMED_SERVER_MODEL_HOOKS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace romed {

enum class HookPoint { kEmbed, kResidPre, kAttnOut, kMlpIn, kMlpOut, kResidPost };

// "embed", "resid_pre", "attn_out", "mlp_in", "mlp_out", "resid_post".
std::string_view HookPointName(HookPoint point);

struct HookAddress {
  HookPoint point = HookPoint::kResidPost;
  int64_t layer = 0;
  bool operator<(const HookAddress& o) const {
    return std::make_pair(static_cast<int>(point), layer) <
           std::make_pair(static_cast<int>(o.point), o.layer);
  }
  bool operator==(const HookAddress& o) const { return point == o.point && layer == o.layer; }
};

// One (batch row, position) cell.
struct Site {
  int64_t row = 0;
  int64_t position = 0;
};

// A hook receives the activation at its address and returns the tensor that
// continues through the model (the same tensor, or a new one of equal shape).
using HookFn = std::function<torch::Tensor(const torch::Tensor& activation)>;

class Interventions {
 public:
  // Generic hook.
  void AddHook(HookAddress address, HookFn fn);

  // Records the activation (the whole [B,T,W] tensor, as it is after earlier
  // hooks at this address) so Captured() can return it after the forward.
  // Not detached: under autograd it stays in the graph.
  void Capture(HookAddress address);

  // Overwrites the activation at `sites` with the rows of `values` [S, W]
  // (S = sites.size()), or with `values` [W] at every site.
  void Replace(HookAddress address, std::vector<Site> sites, torch::Tensor values);

  // Adds `delta` ([W], or [S, W] one per site) at `sites`. Differentiable in
  // `delta` (ROME optimises it through this).
  void Add(HookAddress address, std::vector<Site> sites, torch::Tensor delta);

  // True if any hook or capture is registered at `address`.
  bool Has(HookAddress address) const;

  // Runs the hooks registered at `address` on `activation`. Called by the
  // forward pass; returns `activation` unchanged if none.
  torch::Tensor Apply(HookAddress address, torch::Tensor activation) const;

  // The tensor captured at `address` by the last forward (undefined if none).
  torch::Tensor Captured(HookAddress address) const;

 private:
  std::map<HookAddress, std::vector<HookFn>> hooks_;
  mutable std::map<HookAddress, torch::Tensor> captured_;
};

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_HOOKS_H_
