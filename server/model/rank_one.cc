#include "server/model/rank_one.h"

namespace romed {

std::shared_ptr<const EditView> EditView::Build(const std::vector<RankOneDelta>& deltas,
                                                torch::Device device, torch::Dtype dtype) {
  auto view = std::make_shared<EditView>();
  view->order_.reserve(deltas.size());
  std::map<int64_t, std::vector<torch::Tensor>> us, lambdas;
  for (const RankOneDelta& delta : deltas) {
    TORCH_CHECK(delta.u.dim() == 1 && delta.lambda.dim() == 1,
                "RankOneDelta at layer ", delta.layer, ": u and lambda must be vectors, got ",
                delta.u.sizes(), " and ", delta.lambda.sizes());
    view->order_.emplace_back(delta.layer, static_cast<int64_t>(us[delta.layer].size()));
    us[delta.layer].push_back(delta.u.to(device, dtype));
    lambdas[delta.layer].push_back(delta.lambda.to(device, dtype));
  }
  for (auto& [layer, u_list] : us) {
    // torch::stack checks that every u (and every lambda) at a layer has one width.
    view->by_layer_[layer] = Factors{torch::stack(u_list), torch::stack(lambdas[layer])};
  }
  return view;
}

std::vector<RankOneDelta> EditView::deltas() const {
  std::vector<RankOneDelta> out;
  out.reserve(order_.size());
  for (const auto& [layer, row] : order_) {
    const Factors& f = by_layer_.at(layer);
    out.push_back(RankOneDelta{layer, f.u[row], f.lambda[row]});
  }
  return out;
}

int64_t EditView::rank(int64_t layer) const {
  auto it = by_layer_.find(layer);
  return it == by_layer_.end() ? 0 : it->second.u.size(0);
}

torch::Tensor EditView::Contribution(int64_t layer, const torch::Tensor& key) const {
  auto it = by_layer_.find(layer);
  if (it == by_layer_.end()) return torch::Tensor();
  const Factors& f = it->second;
  // [..., M] x [M, r] -> [..., r]; [..., r] x [r, C] -> [..., C].
  return key.matmul(f.u.t()).matmul(f.lambda);
}

}  // namespace romed
