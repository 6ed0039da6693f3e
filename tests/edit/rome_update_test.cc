// The rank-one update's algebra against an independent constrained
// least-squares solution (KKT system), on small random problems in float64.
#include "server/edit/rome_update.h"

#include <iostream>

#include <gtest/gtest.h>

#include "server/edit/covariance.h"
#include "tests/testing/status_matchers.h"

namespace romed {
namespace {

constexpr int64_t kM = 7, kD = 5, kN = 60;  // key width, value width, associations

struct Problem {
  torch::Tensor K;       // [M, N] keys
  torch::Tensor V;       // [D, N] values
  torch::Tensor W;       // [D, M] least-squares memory of (K, V)
  torch::Tensor C;       // [M, M] K K^T / N
  torch::Tensor k_star;  // [M]
  torch::Tensor v_star;  // [D]
};

Problem RandomProblem(uint64_t seed) {
  torch::manual_seed(seed);
  auto f64 = torch::kFloat64;
  Problem p;
  p.K = torch::randn({kM, kN}, f64);
  p.V = torch::randn({kD, kM}, f64).matmul(p.K) + 0.3 * torch::randn({kD, kN}, f64);
  // W = V K^T (K K^T)^-1: the unconstrained minimiser of ||W K - V||.
  p.W = torch::linalg_solve(p.K.matmul(p.K.t()), p.K.matmul(p.V.t())).t();
  p.C = p.K.matmul(p.K.t()) / kN;
  p.k_star = torch::randn({kM}, f64);
  p.v_star = torch::randn({kD}, f64);
  return p;
}

// argmin ||W_hat K - V||_F s.t. W_hat k* = v*, row by row through the KKT
// system [[2 K K^T, k*], [k*^T, 0]] [w; mu] = [2 K v; v*].
torch::Tensor SolveByKkt(const Problem& p) {
  torch::Tensor A = torch::zeros({kM + 1, kM + 1}, torch::kFloat64);
  A.slice(0, 0, kM).slice(1, 0, kM).copy_(2 * p.K.matmul(p.K.t()));
  A.slice(0, 0, kM).select(1, kM).copy_(p.k_star);
  A.select(0, kM).slice(0, 0, kM).copy_(p.k_star);
  torch::Tensor W_hat = torch::zeros({kD, kM}, torch::kFloat64);
  for (int64_t i = 0; i < kD; ++i) {
    torch::Tensor b = torch::zeros({kM + 1}, torch::kFloat64);
    b.slice(0, 0, kM).copy_(2 * p.K.matmul(p.V[i]));
    b[kM] = p.v_star[i];
    W_hat[i] = torch::linalg_solve(A, b).slice(0, 0, kM);
  }
  return W_hat;
}

TEST(RankOneUpdateTest, ClosedFormEqualsConstrainedLeastSquares) {
  double worst = 0.0;
  for (uint64_t seed : {1, 2, 3}) {
    Problem p = RandomProblem(seed);
    double ridge = 0.0;
    ASSERT_OK_AND_ASSIGN(torch::Tensor L, RegularisedCholesky(p.C, &ridge));
    EXPECT_EQ(ridge, 0.0);
    ASSERT_OK_AND_ASSIGN(RankOneSolution s,
                         SolveRankOneUpdate(L, p.k_star, p.v_star, p.W.matmul(p.k_star), p.k_star));
    torch::Tensor closed = p.W + torch::outer(s.lambda, s.u);
    torch::Tensor direct = SolveByKkt(p);
    const double diff = (closed - direct).abs().max().item<double>();
    worst = std::max(worst, diff);
    EXPECT_LT(diff, 1e-9) << "seed " << seed;
    EXPECT_NEAR(s.u.norm().item<double>(), 1.0, 1e-12);
  }
  std::cout << "max |closed form - KKT solution| = " << worst << "\n";
}

TEST(RankOneUpdateTest, ConsistentUpdateMapsKeyToValue) {
  Problem p = RandomProblem(4);
  double ridge = 0.0;
  ASSERT_OK_AND_ASSIGN(torch::Tensor L, RegularisedCholesky(p.C, &ridge));
  ASSERT_OK_AND_ASSIGN(RankOneSolution s,
                       SolveRankOneUpdate(L, p.k_star, p.v_star, p.W.matmul(p.k_star), p.k_star));
  torch::Tensor mapped = (p.W + torch::outer(s.lambda, s.u)).matmul(p.k_star);
  EXPECT_LT(((mapped - p.v_star).norm() / p.v_star.norm()).item<double>(), 1e-12);
}

TEST(RankOneUpdateTest, ReleasedFormMapsTheNumeratorKeyNotKStar) {
  Problem p = RandomProblem(5);
  torch::Tensor bare = p.k_star + 0.5 * torch::randn({kM}, torch::kFloat64);
  double ridge = 0.0;
  ASSERT_OK_AND_ASSIGN(torch::Tensor L, RegularisedCholesky(p.C, &ridge));
  ASSERT_OK_AND_ASSIGN(RankOneSolution s,
                       SolveRankOneUpdate(L, p.k_star, p.v_star, p.W.matmul(bare), bare));
  torch::Tensor W_hat = p.W + torch::outer(s.lambda, s.u);
  EXPECT_LT((W_hat.matmul(bare) - p.v_star).norm().item<double>(), 1e-10);
  EXPECT_GT((W_hat.matmul(p.k_star) - p.v_star).norm().item<double>(), 1e-3);
}

TEST(RankOneUpdateTest, IdentityCovarianceGivesTheMinimumNormChange) {
  Problem p = RandomProblem(6);
  torch::Tensor I = torch::eye(kM, torch::kFloat64);
  ASSERT_OK_AND_ASSIGN(RankOneSolution s,
                       SolveRankOneUpdate(I, p.k_star, p.v_star, p.W.matmul(p.k_star), p.k_star));
  // u is k*'s direction; the change is (v* - W k*) k*^T / ||k*||^2.
  torch::Tensor expected = torch::outer(p.v_star - p.W.matmul(p.k_star), p.k_star) /
                           p.k_star.dot(p.k_star);
  EXPECT_LT((torch::outer(s.lambda, s.u) - expected).abs().max().item<double>(), 1e-12);
}

TEST(RankOneUpdateTest, ZeroKeyIsAFailedPrecondition) {
  torch::Tensor I = torch::eye(kM, torch::kFloat64);
  EXPECT_THAT(SolveRankOneUpdate(I, torch::zeros({kM}, torch::kFloat64),
                                 torch::ones({kD}, torch::kFloat64),
                                 torch::zeros({kD}, torch::kFloat64),
                                 torch::zeros({kM}, torch::kFloat64)),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(RankOneUpdateTest, SingularCovarianceGetsARidge) {
  torch::Tensor diagonal = torch::ones({kM}, torch::kFloat64);
  diagonal[kM - 1] = 0.0;  // a key unit that never fires: C is singular
  double ridge = 0.0;
  ASSERT_OK_AND_ASSIGN(torch::Tensor L, RegularisedCholesky(torch::diag(diagonal), &ridge));
  EXPECT_GT(ridge, 0.0);
  EXPECT_TRUE(torch::isfinite(L).all().item<bool>());
}

}  // namespace
}  // namespace romed
