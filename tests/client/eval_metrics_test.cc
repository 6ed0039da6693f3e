// CounterFact metrics (client/eval_metrics.h) against values computed by
// hand from ROME.md section 6's definitions.
#include "client/eval_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace romed::client {
namespace {

TargetComparison Probabilities(double p_new, double p_true) {
  return {std::log(p_new), std::log(p_true)};
}

TEST(HarmonicMeanTest, ReproducesThePapersUneditedGpt2XlScore) {
  // Paper, GPT-2 XL unedited: ES 22.2, PS 24.7, NS 78.1 -> S 30.5.
  EXPECT_NEAR(100 * HarmonicMean({0.222, 0.247, 0.781}), 30.5, 0.05);
  // ROME: ES 100, PS 96.4, NS 75.4 -> S 89.2.
  EXPECT_NEAR(100 * HarmonicMean({1.0, 0.964, 0.754}), 89.2, 0.05);
}

TEST(HarmonicMeanTest, IsExactOnSmallValuesAndZeroWhenAnyValueIsZero) {
  EXPECT_DOUBLE_EQ(HarmonicMean({1.0, 0.5}), 2.0 / 3.0);  // 2 / (1 + 2)
  EXPECT_DOUBLE_EQ(HarmonicMean({0.25}), 0.25);
  EXPECT_EQ(HarmonicMean({1.0, 0.0, 1.0}), 0.0);
}

TEST(ScoreTowardNewTest, CountsPromptsPreferringTheNewTargetAndAveragesTheGap) {
  const std::vector<TargetComparison> prompts = {Probabilities(0.6, 0.3),
                                                 Probabilities(0.1, 0.4)};
  const std::optional<RateAndMagnitude> m = ScoreTowardNew(prompts);
  ASSERT_TRUE(m.has_value());
  EXPECT_DOUBLE_EQ(m->score, 0.5);
  EXPECT_NEAR(m->magnitude, ((0.6 - 0.3) + (0.1 - 0.4)) / 2, 1e-12);
}

TEST(ScoreTowardTrueTest, IsTheMirrorForNeighbourhoodPrompts) {
  const std::vector<TargetComparison> prompts = {
      Probabilities(0.1, 0.7), Probabilities(0.2, 0.5), Probabilities(0.6, 0.2)};
  const std::optional<RateAndMagnitude> m = ScoreTowardTrue(prompts);
  ASSERT_TRUE(m.has_value());
  EXPECT_DOUBLE_EQ(m->score, 2.0 / 3.0);
  EXPECT_NEAR(m->magnitude, ((0.7 - 0.1) + (0.5 - 0.2) + (0.2 - 0.6)) / 3, 1e-12);
}

TEST(ScoreTowardNewTest, ATieCountsForNeitherSideAndNoPromptsIsUnset) {
  const std::vector<TargetComparison> tie = {Probabilities(0.3, 0.3)};
  EXPECT_EQ(ScoreTowardNew(tie)->score, 0.0);
  EXPECT_EQ(ScoreTowardTrue(tie)->score, 0.0);
  EXPECT_FALSE(ScoreTowardNew({}).has_value());
  EXPECT_FALSE(ScoreTowardTrue({}).has_value());
}

TEST(WordTokensTest, SplitsWordsPunctuationAndClitics) {
  EXPECT_EQ(WordTokens("Zope's house, in Vienna."),
            (std::vector<std::string>{"Zope", "'s", "house", ",", "in", "Vienna", "."}));
  EXPECT_EQ(WordTokens("  a\tb\n"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(WordTokens("Zürich!"), (std::vector<std::string>{"Zürich", "!"}));
  EXPECT_TRUE(WordTokens("").empty());
}

TEST(NGramEntropyTest, MatchesHandComputedFrequencies) {
  const std::vector<std::string> abab = {"a", "b", "a", "b"};
  // Bigrams ab, ba, ab: frequencies 2/3 and 1/3.
  const double h2 = -(2.0 / 3 * std::log2(2.0 / 3) + 1.0 / 3 * std::log2(1.0 / 3));
  EXPECT_NEAR(NGramEntropy(abab, 2), h2, 1e-12);
  EXPECT_NEAR(NGramEntropy(abab, 3), 1.0, 1e-12);  // aba, bab
  EXPECT_NEAR(NGramEntropy(abab, 1), 1.0, 1e-12);
  EXPECT_EQ(NGramEntropy(abab, 5), 0.0);           // fewer tokens than n
  EXPECT_EQ(NGramEntropy({"a", "a", "a"}, 2), 0.0);  // one bigram repeated
}

TEST(GenerationEntropyTest, WeighsBigramAndTrigramEntropiesAsTheReference) {
  // (2/3 H2 + 4/3 H3) / 2.
  const double h2 = -(2.0 / 3 * std::log2(2.0 / 3) + 1.0 / 3 * std::log2(1.0 / 3));
  EXPECT_NEAR(GenerationEntropy("a b a b"), (2.0 / 3 * h2 + 4.0 / 3 * 1.0) / 2, 1e-12);
  // All distinct: H2 = log2 4, H3 = log2 3.
  EXPECT_NEAR(GenerationEntropy("a b c d e"), (2.0 / 3 * 2 + 4.0 / 3 * std::log2(3.0)) / 2,
              1e-12);
  // A repetitive text is less fluent than a varied one.
  EXPECT_LT(GenerationEntropy("the the the the the the"), GenerationEntropy("a b c d e f"));
  EXPECT_EQ(GenerationEntropy("one"), 0.0);
}

TEST(CleanGenerationTest, ReplacesEndOfTextTokensWithSpaces) {
  EXPECT_EQ(CleanGeneration("is a doctor<|endoftext|>The city"), "is a doctor The city");
  EXPECT_EQ(WordTokens(CleanGeneration("x<|endoftext|>y")), (std::vector<std::string>{"x", "y"}));
}

TEST(CaseMetricsTest, ScoreIsTheHarmonicMeanOfTheCasesRates) {
  CaseMetrics m;
  m.efficacy = RateAndMagnitude{1.0, 0.8};
  m.paraphrase = RateAndMagnitude{0.5, 0.2};
  m.neighborhood = RateAndMagnitude{1.0, 0.6};
  EXPECT_DOUBLE_EQ(*m.Score(), 3.0 / (1 + 2 + 1));
  EXPECT_FALSE(CaseMetrics().Score().has_value());
}

TEST(SummarizeTest, AveragesPerCaseValuesAndLeavesOutCasesWithoutThatKind) {
  CaseMetrics a, b;
  a.efficacy = RateAndMagnitude{1.0, 0.9};
  a.paraphrase = RateAndMagnitude{0.5, 0.1};
  a.neighborhood = RateAndMagnitude{1.0, 0.5};
  a.generation_entropy = 6.0;
  b.efficacy = RateAndMagnitude{0.0, -0.3};  // no paraphrases, no generations
  b.neighborhood = RateAndMagnitude{0.5, 0.1};
  const MetricSummary s = Summarize({a, b});
  EXPECT_EQ(s.cases, 2);
  EXPECT_DOUBLE_EQ(*s.es, 0.5);
  EXPECT_DOUBLE_EQ(*s.em, 0.3);
  EXPECT_DOUBLE_EQ(*s.ps, 0.5);  // case a only
  EXPECT_DOUBLE_EQ(*s.pm, 0.1);
  EXPECT_DOUBLE_EQ(*s.ns, 0.75);
  EXPECT_DOUBLE_EQ(*s.nm, 0.3);
  EXPECT_DOUBLE_EQ(*s.ge, 6.0);
  // S over the means: 3 / (2 + 2 + 4/3).
  EXPECT_DOUBLE_EQ(*s.s, 3.0 / (2 + 2 + 4.0 / 3));
  EXPECT_FALSE(Summarize({}).s.has_value());
}

TEST(RetentionCountTest, ShareIsKeptOverHeldAndAddsUp) {
  RetentionCount r{4, 3};
  r += RetentionCount{6, 6};
  EXPECT_EQ(r.held_before, 10);
  EXPECT_EQ(r.kept, 9);
  EXPECT_DOUBLE_EQ(*r.Share(), 0.9);
  EXPECT_FALSE(RetentionCount{}.Share().has_value());
}

}  // namespace
}  // namespace romed::client
