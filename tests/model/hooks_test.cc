// Interventions on plain tensors: no model needed to see what a hook does.
#include "server/model/hooks.h"

#include <vector>

#include <gtest/gtest.h>

namespace romed {
namespace {

const HookAddress kAddress{HookPoint::kMlpOut, 3};

// [B=2, T=3, W=4] with distinct entries.
torch::Tensor Activation() { return torch::arange(24, torch::kFloat32).view({2, 3, 4}); }

TEST(HookPointNameTest, FollowsTransformerLens) {
  EXPECT_EQ(HookPointName(HookPoint::kEmbed), "embed");
  EXPECT_EQ(HookPointName(HookPoint::kResidPre), "resid_pre");
  EXPECT_EQ(HookPointName(HookPoint::kAttnOut), "attn_out");
  EXPECT_EQ(HookPointName(HookPoint::kMlpIn), "mlp_in");
  EXPECT_EQ(HookPointName(HookPoint::kMlpOut), "mlp_out");
  EXPECT_EQ(HookPointName(HookPoint::kResidPost), "resid_post");
}

TEST(InterventionsTest, ApplyWithoutHooksReturnsTheActivationItself) {
  Interventions none;
  torch::Tensor x = Activation();
  EXPECT_FALSE(none.Has(kAddress));
  EXPECT_TRUE(none.Apply(kAddress, x).is_same(x));
}

TEST(InterventionsTest, CaptureRecordsTheActivationAfterEarlierHooks) {
  Interventions interventions;
  interventions.AddHook(kAddress, [](const torch::Tensor& x) { return x * 2; });
  interventions.Capture(kAddress);
  EXPECT_TRUE(interventions.Has(kAddress));
  EXPECT_FALSE(interventions.Captured(kAddress).defined());
  interventions.Apply(kAddress, Activation());
  EXPECT_TRUE(torch::equal(interventions.Captured(kAddress), Activation() * 2));
  EXPECT_FALSE(interventions.Captured({HookPoint::kMlpOut, 2}).defined());
}

TEST(InterventionsTest, CaptureSurvivesMovingTheInterventions) {
  Interventions original;
  original.Capture(kAddress);
  Interventions moved = std::move(original);
  moved.Apply(kAddress, Activation());
  EXPECT_TRUE(torch::equal(moved.Captured(kAddress), Activation()));
}

TEST(InterventionsTest, ReplaceOverwritesOnlyTheSites) {
  Interventions interventions;
  interventions.Replace(kAddress, {{0, 1}, {1, 2}}, torch::full({2, 4}, -1.0));
  torch::Tensor out = interventions.Apply(kAddress, Activation());
  torch::Tensor expected = Activation();
  expected[0][1].fill_(-1);
  expected[1][2].fill_(-1);
  EXPECT_TRUE(torch::equal(out, expected));
}

TEST(InterventionsTest, ReplaceWithOneVectorFillsEverySite) {
  Interventions interventions;
  interventions.Replace(kAddress, {{1, 0}, {1, 1}}, torch::full({4}, 5.0));
  torch::Tensor out = interventions.Apply(kAddress, Activation());
  EXPECT_TRUE(torch::equal(out[1].narrow(0, 0, 2), torch::full({2, 4}, 5.0)));
  EXPECT_TRUE(torch::equal(out[0], Activation()[0]));
}

TEST(InterventionsTest, AddBroadcastsAVectorToEverySite) {
  Interventions interventions;
  interventions.Add(kAddress, {{0, 0}, {1, 1}}, torch::ones({4}));
  torch::Tensor delta = interventions.Apply(kAddress, Activation()) - Activation();
  torch::Tensor expected = torch::zeros({2, 3, 4});
  expected[0][0].fill_(1);
  expected[1][1].fill_(1);
  EXPECT_TRUE(torch::equal(delta, expected));
}

TEST(InterventionsTest, AddWithoutSitesAddsEverywhere) {
  Interventions interventions;
  interventions.Add(kAddress, {}, torch::ones({4}));
  EXPECT_TRUE(torch::equal(interventions.Apply(kAddress, Activation()), Activation() + 1));
}

TEST(InterventionsTest, AddAndReplaceAreDifferentiableInTheirValues) {
  torch::Tensor delta = torch::zeros({1, 4}, torch::requires_grad());
  torch::Tensor value = torch::zeros({4}, torch::requires_grad());
  Interventions interventions;
  interventions.Add(kAddress, {{0, 2}}, delta);
  interventions.Replace(kAddress, {{1, 0}}, value);
  interventions.Apply(kAddress, Activation()).sum().backward();
  EXPECT_TRUE(torch::equal(delta.grad(), torch::ones({1, 4})));
  EXPECT_TRUE(torch::equal(value.grad(), torch::ones({4})));
}

TEST(InterventionsTest, HooksAtOneAddressRunInTheOrderAdded) {
  Interventions interventions;
  interventions.AddHook(kAddress, [](const torch::Tensor& x) { return x + 1; });
  interventions.AddHook(kAddress, [](const torch::Tensor& x) { return x * 10; });
  EXPECT_TRUE(torch::equal(interventions.Apply(kAddress, torch::zeros({1, 1, 1})),
                           torch::full({1, 1, 1}, 10.0)));
}

TEST(InterventionsTest, AHookThatChangesTheShapeIsAnError) {
  Interventions interventions;
  interventions.AddHook(kAddress, [](const torch::Tensor& x) { return x.sum(-1); });
  EXPECT_THROW(interventions.Apply(kAddress, Activation()), c10::Error);
}

}  // namespace
}  // namespace romed
