// Sampling over tiny hand-computed distributions; no model.
#include "server/model/sampling.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <vector>

#include "tests/testing/status_matchers.h"

namespace romed {
namespace {

using ::romed::testing::IsOk;
using ::romed::testing::StatusIs;
using ::testing::HasSubstr;

// Logits whose softmax is exactly `probs`.
torch::Tensor LogitsOf(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return torch::tensor(logits);
}

SamplingParams Sampled(float temperature, int64_t top_k = 0, float top_p = 1.0f) {
  SamplingParams params;
  params.temperature = temperature;
  params.top_k = top_k;
  params.top_p = top_p;
  return params;
}

// Fraction of `draws` samples that chose each id.
std::vector<double> Frequencies(const torch::Tensor& logits, const SamplingParams& params,
                                int draws, uint64_t seed = 7) {
  std::mt19937_64 rng = MakeRng(seed);
  std::vector<double> freq(logits.numel(), 0.0);
  for (int i = 0; i < draws; ++i) freq[SampleToken(logits, params, rng).id] += 1.0 / draws;
  return freq;
}

// Pearson's chi-square statistic of observed frequencies against `expected`.
double ChiSquare(const std::vector<double>& observed, const std::vector<double>& expected,
                 int draws) {
  double chi2 = 0.0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double diff = (observed[i] - expected[i]) * draws;
    chi2 += diff * diff / (expected[i] * draws);
  }
  return chi2;
}

std::vector<int64_t> DrawIds(const torch::Tensor& logits, const SamplingParams& params,
                             uint64_t seed, int n) {
  std::mt19937_64 rng = MakeRng(seed);
  std::vector<int64_t> ids;
  for (int i = 0; i < n; ++i) ids.push_back(SampleToken(logits, params, rng).id);
  return ids;
}

TEST(ValidateSamplingTest, AcceptsDefaultsAndTypicalValues) {
  EXPECT_THAT(ValidateSampling(SamplingParams{}), IsOk());
  EXPECT_THAT(ValidateSampling(Sampled(0.7f, 40, 0.9f)), IsOk());
  EXPECT_THAT(ValidateSampling(Sampled(0.0f, 0, 1.0f)), IsOk());
}

TEST(ValidateSamplingTest, RejectsNegativeTemperatureNamingIt) {
  EXPECT_THAT(ValidateSampling(Sampled(-0.5f)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature")));
  EXPECT_THAT(ValidateSampling(Sampled(std::nanf(""))),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("temperature")));
}

TEST(ValidateSamplingTest, RejectsNegativeTopKNamingIt) {
  EXPECT_THAT(ValidateSampling(Sampled(1.0f, -1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_k")));
}

TEST(ValidateSamplingTest, RejectsTopPOutsideZeroToOneNamingIt) {
  for (float top_p : {0.0f, -0.1f, 1.01f, std::nanf("")}) {
    EXPECT_THAT(ValidateSampling(Sampled(1.0f, 0, top_p)),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_p")))
        << top_p;
  }
}

TEST(SampleTokenTest, GreedyPicksTheArgmax) {
  std::mt19937_64 rng = MakeRng(0);
  EXPECT_EQ(SampleToken(torch::tensor({0.1f, -2.0f, 3.5f, 1.0f}), Sampled(0.0f), rng).id, 2);
}

TEST(SampleTokenTest, GreedyBreaksTiesToTheLowestId) {
  std::mt19937_64 rng = MakeRng(0);
  EXPECT_EQ(SampleToken(torch::tensor({1.0f, 3.0f, 2.0f, 3.0f}), Sampled(0.0f), rng).id, 1);
}

TEST(SampleTokenTest, LogprobIsLogSoftmaxOfTheRawLogits) {
  std::mt19937_64 rng = MakeRng(0);
  // softmax = {0.25, 0.75}
  const SampledToken token = SampleToken(LogitsOf({0.25, 0.75}), Sampled(0.0f), rng);
  EXPECT_EQ(token.id, 1);
  EXPECT_NEAR(token.logprob, std::log(0.75), 1e-6);
}

TEST(SampleTokenTest, LogprobIgnoresTemperatureAndTruncation) {
  const torch::Tensor logits = LogitsOf({0.5, 0.3, 0.2});
  std::mt19937_64 rng = MakeRng(3);
  for (int i = 0; i < 50; ++i) {
    const SampledToken token = SampleToken(logits, Sampled(2.0f, 2, 0.9f), rng);
    const double expected = std::log(std::vector<double>{0.5, 0.3, 0.2}[token.id]);
    EXPECT_NEAR(token.logprob, expected, 1e-6);
  }
}

TEST(SampleTokenTest, AcceptsOtherDtypesAndABatchDimensionOfOne) {
  std::mt19937_64 rng = MakeRng(0);
  const torch::Tensor logits = torch::tensor({{0.5, 4.0, -1.0}}, torch::kFloat64);
  EXPECT_EQ(SampleToken(logits, Sampled(0.0f), rng).id, 1);
  EXPECT_EQ(SampleToken(logits.to(torch::kBFloat16), Sampled(0.0f), rng).id, 1);
}

TEST(SampleTokenTest, TopKOfOneEqualsGreedy) {
  const torch::Tensor logits = torch::randn({100}, torch::TensorOptions().dtype(torch::kFloat32));
  std::mt19937_64 rng = MakeRng(0);
  const int64_t greedy = SampleToken(logits, Sampled(0.0f), rng).id;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(SampleToken(logits, Sampled(1.5f, 1), rng).id, greedy);
}

TEST(SampleTokenTest, TinyTopPEqualsGreedy) {
  const torch::Tensor logits = torch::randn({100});
  std::mt19937_64 rng = MakeRng(0);
  const int64_t greedy = SampleToken(logits, Sampled(0.0f), rng).id;
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(SampleToken(logits, Sampled(1.5f, 0, 1e-6f), rng).id, greedy);
  }
}

TEST(SampleTokenTest, TopKOfTwoNeverSamplesOutsideTheTopTwo) {
  // The two most likely are ids 3 and 1.
  const torch::Tensor logits = LogitsOf({0.1, 0.25, 0.15, 0.3, 0.2});
  const std::vector<double> freq = Frequencies(logits, Sampled(1.0f, 2), 5000);
  EXPECT_EQ(freq[0] + freq[2] + freq[4], 0.0);
  // Renormalised over the top two: 0.3/0.55 and 0.25/0.55.
  EXPECT_NEAR(freq[3], 0.3 / 0.55, 0.03);
  EXPECT_NEAR(freq[1], 0.25 / 0.55, 0.03);
}

TEST(SampleTokenTest, TopPKeepsTheSmallestSetReachingTheMass) {
  const torch::Tensor logits = LogitsOf({0.05, 0.5, 0.15, 0.3});
  // 0.5 + 0.3 = 0.8 >= 0.75: ids 1 and 3 only.
  std::vector<double> freq = Frequencies(logits, Sampled(1.0f, 0, 0.75f), 5000);
  EXPECT_EQ(freq[0] + freq[2], 0.0);
  EXPECT_NEAR(freq[1], 0.5 / 0.8, 0.03);
  // 0.8 < 0.85: id 2 joins; id 0 never.
  freq = Frequencies(logits, Sampled(1.0f, 0, 0.85f), 5000);
  EXPECT_EQ(freq[0], 0.0);
  EXPECT_GT(freq[2], 0.1);
}

TEST(SampleTokenTest, TopKAppliesBeforeTopP) {
  const torch::Tensor logits = LogitsOf({0.4, 0.3, 0.2, 0.1});
  // Top 3 renormalised: {4/9, 3/9, 2/9}; 4/9 + 3/9 = 0.78 >= 0.7, so id 2 is cut.
  const std::vector<double> freq = Frequencies(logits, Sampled(1.0f, 3, 0.7f), 5000);
  EXPECT_EQ(freq[2] + freq[3], 0.0);
  EXPECT_NEAR(freq[0], 4.0 / 7.0, 0.03);
}

TEST(SampleTokenTest, TemperatureOneFrequenciesMatchTheSoftmax) {
  const std::vector<double> probs = {0.1, 0.4, 0.05, 0.25, 0.2};
  constexpr int kDraws = 20000;
  const std::vector<double> freq = Frequencies(LogitsOf(probs), Sampled(1.0f), kDraws);
  // 4 degrees of freedom: P(chi2 > 18.47) = 0.001.
  EXPECT_LT(ChiSquare(freq, probs, kDraws), 18.47);
}

TEST(SampleTokenTest, TemperatureSharpensTheDistribution) {
  // At temperature 0.5, p_i is proportional to p_i^2: {1, 4, 9} / 14.
  const torch::Tensor logits = LogitsOf({1.0 / 6, 2.0 / 6, 3.0 / 6});
  constexpr int kDraws = 20000;
  const std::vector<double> freq = Frequencies(logits, Sampled(0.5f), kDraws);
  // 2 degrees of freedom: P(chi2 > 13.82) = 0.001.
  EXPECT_LT(ChiSquare(freq, {1.0 / 14, 4.0 / 14, 9.0 / 14}, kDraws), 13.82);
}

TEST(SampleTokenTest, TheSameSeedReproducesTheDraws) {
  const torch::Tensor logits = torch::randn({50});
  const SamplingParams params = Sampled(1.0f, 20, 0.95f);
  EXPECT_EQ(DrawIds(logits, params, 42, 100), DrawIds(logits, params, 42, 100));
  EXPECT_NE(DrawIds(logits, params, 42, 100), DrawIds(logits, params, 43, 100));
}

}  // namespace
}  // namespace romed
