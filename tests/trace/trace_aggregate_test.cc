// Averaging by position class and the edit-site advice, on synthetic grids.
#include "server/trace/trace_aggregate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;

// A T-token trace, subject [b, e), L layers, every score `low`, with `kinds`.
TraceResult Flat(int64_t T, int64_t b, int64_t e, int64_t L, double low,
                 std::vector<TraceKind> kinds = {TraceKind::kState, TraceKind::kMlp,
                                                 TraceKind::kAttn}) {
  TraceResult trace;
  trace.tokens.assign(T, 0);
  trace.subject_begin = b;
  trace.subject_end = e;
  trace.num_layers = L;
  trace.low_score = low;
  trace.high_score = 0.9;
  for (TraceKind kind : kinds) {
    trace.scores.push_back({kind, std::vector<std::vector<double>>(T, std::vector<double>(L, low))});
  }
  return trace;
}

double Effect(const AggregateTable& table, TraceKind kind, PositionClass position, int64_t l) {
  return table.Find(kind)->effect[static_cast<int>(position)][l];
}

TEST(AggregateTracesTest, SortsRowsIntoTheSixClasses) {
  // T 8, subject [1, 4): first 1, middle 2, last 3, after 4, further 5..6, last 7.
  TraceResult trace = Flat(8, 1, 4, 2, 0.1);
  for (int64_t t = 0; t < 8; ++t) trace.scores[0].values[t][1] = 0.1 + 0.01 * t;
  auto table = AggregateTraces({trace});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_NEAR(Effect(*table, TraceKind::kState, PositionClass::kFirstSubject, 1), 0.01, 1e-12);
  EXPECT_NEAR(Effect(*table, TraceKind::kState, PositionClass::kMiddleSubject, 1), 0.02, 1e-12);
  EXPECT_NEAR(Effect(*table, TraceKind::kState, PositionClass::kLastSubject, 1), 0.03, 1e-12);
  EXPECT_NEAR(Effect(*table, TraceKind::kState, PositionClass::kFirstAfter, 1), 0.04, 1e-12);
  EXPECT_NEAR(Effect(*table, TraceKind::kState, PositionClass::kFurther, 1), 0.055, 1e-12);
  EXPECT_NEAR(Effect(*table, TraceKind::kState, PositionClass::kLastToken, 1), 0.07, 1e-12);
  EXPECT_EQ(table->Find(TraceKind::kState)->count,
            (std::vector<int64_t>{1, 1, 1, 1, 2, 1}));
  EXPECT_NEAR(Effect(*table, TraceKind::kState, PositionClass::kLastToken, 0), 0.0, 1e-12);
}

TEST(AggregateTracesTest, AveragesOverFactsWithEachFactsOwnLowScore) {
  TraceResult a = Flat(4, 0, 1, 1, 0.1), b = Flat(5, 1, 3, 1, 0.3);
  a.scores[1].values[3][0] = 0.5;  // last token, effect 0.4
  b.scores[1].values[4][0] = 0.5;  // last token, effect 0.2
  auto table = AggregateTraces({a, b});
  ASSERT_TRUE(table.ok());
  EXPECT_NEAR(Effect(*table, TraceKind::kMlp, PositionClass::kLastToken, 0), 0.3, 1e-12);
  EXPECT_NEAR(table->mean_low, 0.2, 1e-12);
  // One-token subject: no middle rows in a; b has none either.
  EXPECT_EQ(table->Find(TraceKind::kMlp)->count[static_cast<int>(PositionClass::kMiddleSubject)], 0);
}

TEST(AggregateTracesTest, RejectsMixedDepthsAndMissingKinds) {
  EXPECT_THAT(AggregateTraces({}).status(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AggregateTraces({Flat(4, 0, 1, 2, 0), Flat(4, 0, 1, 3, 0)}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(AggregateTraces({Flat(4, 0, 1, 2, 0), Flat(4, 0, 1, 2, 0, {TraceKind::kState})})
                  .status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(RecommendEditSiteTest, PicksThePeakOfTheWindowedMlpEffect) {
  TraceResult trace = Flat(6, 1, 3, 4, 0.0);
  trace.scores[1].values[2][1] = 0.3;  // last subject token, layer 1
  trace.scores[1].values[5][3] = 0.2;  // last token, layer 3
  trace.scores[1].values[4][0] = 0.9;  // "further" tokens are not a ROME site
  trace.scores[0].values[5][3] = 1.0;  // states do not count
  auto site = RecommendEditSite(*AggregateTraces({trace}));
  ASSERT_TRUE(site.ok()) << site.status();
  EXPECT_EQ(site->fact_token, "subject_last");
  EXPECT_EQ(site->layer, 1);
  EXPECT_NEAR(site->effect, 0.3, 1e-12);

  trace.scores[1].values[5][3] = 0.8;
  site = RecommendEditSite(*AggregateTraces({trace}));
  EXPECT_EQ(site->fact_token, "last");
  EXPECT_EQ(site->layer, 3);
}

TEST(RecommendEditSiteTest, NeedsMlpScores) {
  EXPECT_THAT(RecommendEditSite(*AggregateTraces({Flat(4, 0, 1, 2, 0, {TraceKind::kState})}))
                  .status(),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(RecommendEditSiteTest, RoundTripsThroughJson) {
  SiteRecommendation site;
  site.fact_token = "subject_first";
  site.position = PositionClass::kFirstSubject;
  site.layer = 7;
  site.effect = 0.25;
  site.num_facts = 50;
  site.window = 3;
  auto back = RecommendationFromJson(RecommendationToJson(site));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->fact_token, "subject_first");
  EXPECT_EQ(back->position, PositionClass::kFirstSubject);
  EXPECT_EQ(back->layer, 7);
  EXPECT_EQ(back->num_facts, 50);
  EXPECT_EQ(back->window, 3);
  EXPECT_THAT(RecommendationFromJson("{\"fact_token\": \"middle\", \"layer\": 1}").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RecommendationFromJson("not json").status(),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FormatAggregateTableTest, ShowsEveryClassAndLayer) {
  std::string text = FormatAggregateTable(*AggregateTraces({Flat(6, 1, 3, 4, 0.0)}));
  EXPECT_THAT(text, ::testing::HasSubstr("last subject token"));
  EXPECT_THAT(text, ::testing::HasSubstr("further tokens"));
  EXPECT_THAT(text, ::testing::HasSubstr("attn"));
}

}  // namespace
}  // namespace romed
