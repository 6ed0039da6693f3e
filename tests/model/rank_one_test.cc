// EditView: stacking rank-one deltas per layer and their contribution.
#include "server/model/rank_one.h"

#include <vector>

#include <gtest/gtest.h>

namespace romed {
namespace {

constexpr int64_t kM = 6, kC = 4;

RankOneDelta Delta(int64_t layer, uint64_t seed) {
  torch::manual_seed(seed);
  return {layer, torch::randn({kM}), torch::randn({kC})};
}

TEST(EditViewTest, AnEmptyViewHasNoLayers) {
  auto view = EditView::Build({}, torch::kCPU, torch::kFloat32);
  EXPECT_TRUE(view->empty());
  EXPECT_FALSE(view->HasLayer(0));
  EXPECT_EQ(view->rank(0), 0);
  EXPECT_FALSE(view->Contribution(0, torch::ones({kM})).defined());
}

TEST(EditViewTest, GroupsDeltasByLayerKeepingTheirOrder) {
  std::vector<RankOneDelta> deltas = {Delta(2, 1), Delta(5, 2), Delta(2, 3)};
  auto view = EditView::Build(deltas, torch::kCPU, torch::kFloat32);
  EXPECT_EQ(view->rank(2), 2);
  EXPECT_EQ(view->rank(5), 1);
  EXPECT_FALSE(view->HasLayer(3));
  EXPECT_EQ(view->deltas().size(), 3u);
}

TEST(EditViewTest, ContributionIsTheSumOfEachDeltaTimesItsKeyProjection) {
  std::vector<RankOneDelta> deltas = {Delta(2, 1), Delta(2, 3)};
  auto view = EditView::Build(deltas, torch::kCPU, torch::kFloat32);
  torch::Tensor keys = torch::randn({3, 5, kM});  // [B, T, M]
  torch::Tensor expected = torch::zeros({3, 5, kC});
  for (const auto& d : deltas) {
    expected += keys.matmul(d.u).unsqueeze(-1) * d.lambda;
  }
  torch::Tensor got = view->Contribution(2, keys);
  ASSERT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-5));
}

TEST(EditViewTest, BuildConvertsToTheRequestedDtype) {
  auto view = EditView::Build({Delta(0, 4)}, torch::kCPU, torch::kFloat64);
  EXPECT_EQ(view->Contribution(0, torch::ones({kM}, torch::kFloat64)).scalar_type(),
            torch::kFloat64);
}

TEST(EditViewTest, DeltasOfDifferentWidthsAtOneLayerAreAnError) {
  RankOneDelta bad{0, torch::ones({kM + 1}), torch::ones({kC})};
  EXPECT_THROW(EditView::Build({Delta(0, 1), bad}, torch::kCPU, torch::kFloat32), c10::Error);
}

}  // namespace
}  // namespace romed
