#include "server/model/hooks.h"

#include <utility>

namespace romed {
namespace {

// Row and position index tensors [S] for `sites`, on `device`.
std::pair<torch::Tensor, torch::Tensor> SiteIndices(const std::vector<Site>& sites,
                                                    torch::Device device) {
  std::vector<int64_t> rows, positions;
  rows.reserve(sites.size());
  positions.reserve(sites.size());
  for (const Site& site : sites) {
    rows.push_back(site.row);
    positions.push_back(site.position);
  }
  auto options = torch::TensorOptions().dtype(torch::kInt64);
  auto n = static_cast<int64_t>(sites.size());
  return {torch::from_blob(rows.data(), {n}, options).to(device, /*non_blocking=*/false,
                                                         /*copy=*/true),
          torch::from_blob(positions.data(), {n}, options).to(device, false, true)};
}

// `values` ([W] or [S, W]) as [S, W] in the dtype and device of `activation`
// [B, T, W]. Differentiable in `values`.
torch::Tensor ValuesPerSite(const torch::Tensor& values, const torch::Tensor& activation,
                            int64_t num_sites) {
  const int64_t width = activation.size(-1);
  torch::Tensor v = values.to(activation.options());
  TORCH_CHECK((v.dim() == 1 && v.size(0) == width) ||
                  (v.dim() == 2 && v.size(0) == num_sites && v.size(1) == width),
              "intervention values must be [W] or [S, W] with W = ", width, " and S = ",
              num_sites, ", got ", v.sizes());
  return v.expand({num_sites, width});
}

}  // namespace

std::string_view HookPointName(HookPoint point) {
  switch (point) {
    case HookPoint::kEmbed:
      return "embed";
    case HookPoint::kResidPre:
      return "resid_pre";
    case HookPoint::kAttnOut:
      return "attn_out";
    case HookPoint::kMlpIn:
      return "mlp_in";
    case HookPoint::kMlpOut:
      return "mlp_out";
    case HookPoint::kResidPost:
      return "resid_post";
  }
  return "unknown";
}

void Interventions::AddHook(HookAddress address, HookFn fn) {
  TORCH_CHECK(fn, "AddHook: empty hook function");
  hooks_[address].push_back(std::move(fn));
}

// A capture is stored as an empty HookFn: Apply() records the activation
// into captured_ when it meets one. (A lambda capturing `this` would dangle
// if the Interventions were moved after registration.)
void Interventions::Capture(HookAddress address) { hooks_[address].push_back(HookFn()); }

void Interventions::Replace(HookAddress address, std::vector<Site> sites, torch::Tensor values) {
  AddHook(address, [sites = std::move(sites), values = std::move(values)](
                       const torch::Tensor& activation) -> torch::Tensor {
    if (sites.empty()) {
      // Every row and position: [W] or a full [B, T, W] broadcast.
      return values.to(activation.options()).expand_as(activation);
    }
    auto [rows, positions] = SiteIndices(sites, activation.device());
    auto per_site = ValuesPerSite(values, activation, static_cast<int64_t>(sites.size()));
    return activation.index_put({rows, positions}, per_site);
  });
}

void Interventions::Add(HookAddress address, std::vector<Site> sites, torch::Tensor delta) {
  AddHook(address, [sites = std::move(sites), delta = std::move(delta)](
                       const torch::Tensor& activation) -> torch::Tensor {
    if (sites.empty()) return activation + delta.to(activation.options());
    auto [rows, positions] = SiteIndices(sites, activation.device());
    auto per_site = ValuesPerSite(delta, activation, static_cast<int64_t>(sites.size()));
    return activation.index_put({rows, positions}, per_site, /*accumulate=*/true);
  });
}

bool Interventions::Has(HookAddress address) const { return hooks_.count(address) > 0; }

torch::Tensor Interventions::Apply(HookAddress address, torch::Tensor activation) const {
  auto it = hooks_.find(address);
  if (it == hooks_.end()) return activation;
  for (const HookFn& fn : it->second) {
    if (!fn) {
      captured_[address] = activation;
      continue;
    }
    torch::Tensor next = fn(activation);
    TORCH_CHECK(next.sizes() == activation.sizes(), "hook at ", HookPointName(address.point),
                " layer ", address.layer, " changed the shape from ", activation.sizes(),
                " to ", next.sizes());
    activation = std::move(next);
  }
  return activation;
}

torch::Tensor Interventions::Captured(HookAddress address) const {
  auto it = captured_.find(address);
  return it == captured_.end() ? torch::Tensor() : it->second;
}

}  // namespace romed
