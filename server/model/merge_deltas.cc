#include "server/model/merge_deltas.h"

#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"

namespace romed {
namespace {

absl::Status CheckDelta(const Gpt2Config& config, const RankOneDelta& delta, size_t index) {
  const int64_t m = config.mlp_width();
  const std::string where = absl::StrCat("delta ", index, ": ");
  if (delta.layer < 0 || delta.layer >= config.n_layer) {
    return absl::InvalidArgumentError(absl::StrCat(where, "layer ", delta.layer,
                                                   " is outside 0..", config.n_layer - 1));
  }
  if (!delta.u.defined() || delta.u.dim() != 1 || delta.u.size(0) != m) {
    return absl::InvalidArgumentError(absl::StrCat(where, "u must be [", m, "]"));
  }
  if (!delta.lambda.defined() || delta.lambda.dim() != 1 || delta.lambda.size(0) != config.n_embd) {
    return absl::InvalidArgumentError(absl::StrCat(where, "lambda must be [", config.n_embd, "]"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Gpt2Weights> MergeDeltas(const Gpt2Config& config, const Gpt2Weights& weights,
                                        const std::vector<RankOneDelta>& deltas) {
  for (size_t i = 0; i < deltas.size(); ++i) RETURN_IF_ERROR(CheckDelta(config, deltas[i], i));
  return GuardTorch("merging deltas into the weights", [&] {
    // To() copies only when the dtype or device changes: clone the projections we write.
    Gpt2Weights merged = weights.To(torch::kCPU, torch::kFloat32);
    std::map<int64_t, torch::Tensor> sums;  // layer -> sum_i u_i lambda_i^T [M, C] float64
    for (const RankOneDelta& delta : deltas) {
      torch::Tensor u = delta.u.to(torch::kCPU, torch::kFloat64);
      torch::Tensor lambda = delta.lambda.to(torch::kCPU, torch::kFloat64);
      torch::Tensor outer = torch::outer(u, lambda);
      auto [it, inserted] = sums.emplace(delta.layer, outer);
      if (!inserted) it->second.add_(outer);
    }
    for (const auto& [layer, sum] : sums) {
      torch::Tensor& w = merged.layers[layer].mlp_proj_weight;
      w = (w.to(torch::kFloat64) + sum).to(torch::kFloat32);
    }
    return merged;
  });
}

}  // namespace romed
