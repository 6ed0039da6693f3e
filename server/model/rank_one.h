// Rank-one edits as factors (ARCHITECTURE.md section 1).
//
// The base weights are never written. An edit is a set of rank-one deltas
// {layer, u [M], lambda [C]}; at an edited layer the MLP projection computes
//   mlp_out = k W_proj + b + sum_i (u_i . k) lambda_i
//           = k W_proj + b + (k U^T) Lambda        (two thin GEMMs)
// with k [.., M] the key (input of W_proj), U [r, M], Lambda [r, C].
// (W_proj here is the Conv1D weight [M, C]; ROME's W is its transpose, so
// ROME's update W + lambda u^T is exactly this term.)
#ifndef ROMED_SERVER_MODEL_RANK_ONE_H_
#define ROMED_SERVER_MODEL_RANK_ONE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace romed {

struct RankOneDelta {
  int64_t layer = 0;
  torch::Tensor u;       // [M] key direction
  torch::Tensor lambda;  // [C] value change per unit (u . k)
};

// An immutable stack of deltas grouped by layer. Built once per session
// state; shared read-only by concurrent forwards (thread-safe).
class EditView {
 public:
  // Stacks `deltas` (in order) per layer on `device` in `dtype`.
  static std::shared_ptr<const EditView> Build(const std::vector<RankOneDelta>& deltas,
                                               torch::Device device, torch::Dtype dtype);

  bool empty() const { return by_layer_.empty(); }
  bool HasLayer(int64_t layer) const { return by_layer_.count(layer) > 0; }
  int64_t rank(int64_t layer) const;  // number of deltas at `layer`
  int64_t size() const { return static_cast<int64_t>(order_.size()); }
  // The deltas in build order, on the view's device and dtype. Each u and
  // lambda is a view into the stacked factors (no copy): the view holds one
  // copy of every delta, U [r, M] and Lambda [r, C] per layer, nothing more.
  std::vector<RankOneDelta> deltas() const;

  // (k U^T) Lambda for keys `key` [..., M] at `layer`: the [..., C] term the
  // forward adds to the MLP output. Undefined tensor if no delta at `layer`.
  torch::Tensor Contribution(int64_t layer, const torch::Tensor& key) const;

 private:
  struct Factors {
    torch::Tensor u;       // [r, M]
    torch::Tensor lambda;  // [r, C]
  };
  std::map<int64_t, Factors> by_layer_;
  // Build order: (layer, row of that layer's factors) per delta.
  std::vector<std::pair<int64_t, int64_t>> order_;
};

// Which edit view each row of one forward call uses (A/B in one batch).
struct RowEdits {
  std::vector<std::shared_ptr<const EditView>> views;  // distinct views
  // [B] index into `views` per row, -1 for the base model. Empty means every
  // row uses views[0].
  std::vector<int> row_view;
};

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_RANK_ONE_H_
