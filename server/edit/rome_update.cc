#include "server/edit/rome_update.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"

namespace romed {

absl::StatusOr<RankOneSolution> SolveRankOneUpdate(const torch::Tensor& cholesky,
                                                   const torch::Tensor& k_star,
                                                   const torch::Tensor& v_star,
                                                   const torch::Tensor& current_output,
                                                   const torch::Tensor& numerator_key) {
  return GuardTorch("ROME rank-one update", [&]() -> absl::StatusOr<RankOneSolution> {
    const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU);
    torch::Tensor k = k_star.to(f64);
    const double k_norm = k.norm().item<double>();
    if (!(k_norm > 0) || !std::isfinite(k_norm)) {
      return absl::FailedPreconditionError(absl::StrCat("the key k* has norm ", k_norm));
    }
    torch::Tensor u = torch::cholesky_solve(k.unsqueeze(1), cholesky.to(f64), /*upper=*/false)
                          .squeeze(1);  // C^-1 k*, [M]
    u = u / u.norm();
    torch::Tensor k_n = numerator_key.to(f64);
    const double denominator = u.dot(k_n).item<double>();
    if (!(std::abs(denominator) > 1e-12 * k_n.norm().item<double>()) || !std::isfinite(denominator)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "u . k is ", denominator, ": the numerator key is orthogonal to C^-1 k*"));
    }
    torch::Tensor lambda = (v_star.to(f64) - current_output.to(f64)) / denominator;
    return RankOneSolution{u, lambda};
  });
}

torch::Tensor CurrentMlpOutput(const Gpt2Model& model, const EditView* current, int64_t layer,
                               const torch::Tensor& key) {
  const Gpt2LayerWeights& w = model.weights().layers.at(layer);
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(torch::kCPU);
  torch::Tensor k = key.to(f64);
  torch::Tensor out = k.matmul(w.mlp_proj_weight.to(f64)) + w.mlp_proj_bias.to(f64);  // [C]
  if (current != nullptr) {
    for (const RankOneDelta& delta : current->deltas()) {
      if (delta.layer != layer) continue;
      out = out + delta.u.to(f64).dot(k) * delta.lambda.to(f64);
    }
  }
  return out;
}

absl::StatusOr<RankOneDelta> ComputeRankOneUpdate(const Gpt2Model& model,
                                                  const std::shared_ptr<const EditView>& current,
                                                  int64_t layer, const CovarianceStats& stats,
                                                  const RomeKey& key, const torch::Tensor& v_star,
                                                  UpdateKeyForm form) {
  torch::Tensor numerator_key, current_output;
  RETURN_IF_ERROR(GuardTorch("ROME current output", [&] {
    numerator_key = form == UpdateKeyForm::kConsistent ? key.k_star : key.bare_key;
    current_output = CurrentMlpOutput(model, current.get(), layer, numerator_key);
  }));
  ASSIGN_OR_RETURN(RankOneSolution solution,
                   SolveRankOneUpdate(stats.cholesky, key.k_star, v_star, current_output,
                                      numerator_key));
  return RankOneDelta{layer, solution.u.to(torch::kFloat32), solution.lambda.to(torch::kFloat32)};
}

}  // namespace romed
