// ROME's rank-one update (ROME.md section 3.4). With ROME's W = W_proj^T
// (m -> d) and C = E[k k^T] over the statistics corpus:
//   u      = C^-1 k* / ||C^-1 k*||            (Cholesky solve, float64)
//   Lambda = (v* - W_cur k_n) / (u . k_n)
// where W_cur k_n is the CURRENT state's MLP output (base W_proj, bias and
// the session's existing deltas at the layer) at the numerator key k_n:
//   - UpdateKeyForm::kConsistent (r-ROME, default): k_n = k*, so the
//     updated layer maps k* to v* exactly;
//   - UpdateKeyForm::kReleasedCode: k_n = the bare prompt's key (the
//     released code's form).
// W_hat = W_cur + Lambda u^T is the closed form of
//   minimise ||W_hat K - V||_F  subject to  W_hat k* = v*
// when W_cur is the least-squares memory of (K, V) and C = K K^T / n.
// Returned as a factor RankOneDelta{layer, u, lambda = Lambda}: the base
// weights are never written (rank_one.h).
#ifndef ROMED_SERVER_EDIT_ROME_UPDATE_H_
#define ROMED_SERVER_EDIT_ROME_UPDATE_H_

#include <memory>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "server/edit/covariance.h"
#include "server/edit/rome_key.h"
#include "server/edit/rome_options.h"
#include "server/model/gpt2_model.h"
#include "server/model/rank_one.h"

namespace romed {

// Notation: M key width, C model width.
struct RankOneSolution {
  torch::Tensor u;       // [M] float64, unit norm
  torch::Tensor lambda;  // [C] float64
};

// The update's algebra on plain tensors (float64): `cholesky` [M, M] lower
// factor of C; `k_star` [M]; `v_star` [C]; `current_output` [C] = W_cur k_n
// (+ bias); `numerator_key` [M] = k_n. FailedPreconditionError if k* is zero
// or u . k_n vanishes (the update would be unbounded). Never throws.
absl::StatusOr<RankOneSolution> SolveRankOneUpdate(const torch::Tensor& cholesky,
                                                   const torch::Tensor& k_star,
                                                   const torch::Tensor& v_star,
                                                   const torch::Tensor& current_output,
                                                   const torch::Tensor& numerator_key);

// The current state's MLP output at `layer` for one key [M]: key W_proj +
// b_proj + the contributions of `current`'s deltas at `layer` (null = base).
// [C] float64 CPU. Throws c10::Error on shape mismatch (callers guard).
torch::Tensor CurrentMlpOutput(const Gpt2Model& model, const EditView* current, int64_t layer,
                               const torch::Tensor& key);

// The update for `key` / `v_star` at `layer` on the current state, as a
// factor (u, lambda float32 CPU). Errors as SolveRankOneUpdate, and
// InternalError for a torch failure.
absl::StatusOr<RankOneDelta> ComputeRankOneUpdate(const Gpt2Model& model,
                                                  const std::shared_ptr<const EditView>& current,
                                                  int64_t layer, const CovarianceStats& stats,
                                                  const RomeKey& key, const torch::Tensor& v_star,
                                                  UpdateKeyForm form);

}  // namespace romed

#endif  // ROMED_SERVER_EDIT_ROME_UPDATE_H_
