// Tracing the fact model through the Engine (what Trace / TraceFacts serve),
// labelled `slow`: the averaged table of its first 50 known facts shows
// where it recalls facts (ROME.md section 8), the recommended site follows
// from the table and is stored, Edit then uses it, and a session's trace
// shows the edited answer. Needs the trained model: ROMED_FACT_MODEL_DIR
// (or models/fact under ROMED_SOURCE_DIR); skipped otherwise.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "server/engine/engine.h"
#include "server/model/checkpoint.h"

namespace romed {
namespace {

std::string FactModelDir() {
  const char* dir = std::getenv("ROMED_FACT_MODEL_DIR");
  if (dir != nullptr && *dir != '\0') return dir;
  const char* source = std::getenv("ROMED_SOURCE_DIR");
  std::string fallback = std::string(source != nullptr ? source : ".") + "/models/fact";
  return std::ifstream(fallback + "/known_facts.json").good() ? fallback : "";
}

class TraceFactModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = FactModelDir();
    if (dir.empty()) return;
    auto checkpoint = LoadCheckpoint(dir);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    auto engine = Engine::Create(*std::move(checkpoint), EngineOptions{});
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = engine->release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  void SetUp() override {
    if (engine_ == nullptr) GTEST_SKIP() << "no fact model: set ROMED_FACT_MODEL_DIR";
  }

  static Engine* engine_;
};
Engine* TraceFactModelTest::engine_ = nullptr;

TEST_F(TraceFactModelTest, FiftyKnownFactsAreRecalledAtTheLastTokenAndTheSiteFollows) {
  TextTraceFactsRequest request;  // the model's known facts, the first 50
  request.store_recommendation = true;
  int facts_seen = 0;
  auto result = engine_->TraceFacts(request, {}, [&](const TraceFactSummary& fact) {
    EXPECT_EQ(fact.index, facts_seen++);
    EXPECT_EQ(fact.answer_text, fact.fact.answer) << fact.fact.prompt;
  });
  ASSERT_TRUE(result.ok()) << result.status();
  const AggregateTable& table = result->table;
  std::cout << FormatAggregateTable(table) << "\n"
            << RecommendationToJson(*result->recommendation) << "\n";
  ASSERT_EQ(table.num_facts, 50);
  EXPECT_EQ(facts_seen, 50);
  // The noise destroys the fact: known facts are clean-high, corrupted-low.
  EXPECT_GT(table.mean_high - table.mean_low, 0.5);
  const int64_t L = table.num_layers;
  auto effect = [&](TraceKind kind, PositionClass position, int64_t layer) {
    return table.Find(kind)->effect[static_cast<int>(position)][layer];
  };
  // The last token's state effect rises with depth (small dips allowed)
  // and is large at the top.
  for (int64_t l = 1; l < L; ++l) {
    EXPECT_GE(effect(TraceKind::kState, PositionClass::kLastToken, l),
              effect(TraceKind::kState, PositionClass::kLastToken, l - 1) - 0.02)
        << "layer " << l;
  }
  EXPECT_GT(effect(TraceKind::kState, PositionClass::kLastToken, L - 1), 0.5);
  // The top-layer MLP effect sits at the last token.
  for (int c = 0; c < kNumPositionClasses; ++c) {
    if (c == static_cast<int>(PositionClass::kLastToken)) continue;
    EXPECT_GT(effect(TraceKind::kMlp, PositionClass::kLastToken, L - 1),
              effect(TraceKind::kMlp, static_cast<PositionClass>(c), L - 1))
        << PositionClassName(static_cast<PositionClass>(c));
  }
  // Restoring any single subject position barely helps.
  for (PositionClass position : {PositionClass::kFirstSubject, PositionClass::kMiddleSubject,
                                 PositionClass::kLastSubject}) {
    for (int64_t l = 0; l < L; ++l) {
      EXPECT_LT(effect(TraceKind::kState, position, l), 0.05)
          << PositionClassName(position) << " layer " << l;
    }
  }
  // The recommendation is the table's MLP peak over the classes ROME keys on.
  ASSERT_TRUE(result->recommendation.has_value());
  const SiteRecommendation& site = *result->recommendation;
  EXPECT_EQ(site.fact_token, "last");
  EXPECT_EQ(site.layer, L - 1);
  EXPECT_DOUBLE_EQ(site.effect, effect(TraceKind::kMlp, PositionClass::kLastToken, L - 1));
  for (PositionClass position :
       {PositionClass::kFirstSubject, PositionClass::kLastSubject, PositionClass::kLastToken}) {
    for (int64_t l = 0; l < L; ++l) EXPECT_LE(effect(TraceKind::kMlp, position, l), site.effect);
  }
  // Stored: Edit's default site from now on.
  EXPECT_TRUE(result->stored);
  ASSERT_TRUE(engine_->edit_sites().Get().has_value());
  EXPECT_EQ(engine_->edit_sites().Get()->layer, L - 1);
}

TEST_F(TraceFactModelTest, AnEditedFactTracesToItsNewAnswerInItsSession) {
  TextTraceRequest trace;
  trace.prompt = "Dora Zope is originally from";
  trace.subject = "Dora Zope";
  trace.kinds = {TraceKind::kState};
  auto before = engine_->Trace(trace, {});
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->answer_text, " Vienna");

  auto session = engine_->CreateSession({});
  ASSERT_TRUE(session.ok()) << session.status();
  TextEditRequest edit;
  edit.session_id = (*session)->info.id;
  edit.rewrites.push_back({"{} is originally from", "Dora Zope", "Lisbon", "Vienna"});
  edit.overrides.fact_token = FactToken::kLast;  // what tracing recommends for this model
  edit.overrides.layer = engine_->model().config().n_layer - 1;
  edit.overrides.identity_covariance = true;  // keeps the test fast; the site is what matters
  auto edited = engine_->Edit(edit);
  ASSERT_TRUE(edited.ok()) << edited.status();

  trace.session_id = edit.session_id;
  auto after = engine_->Trace(trace, {});
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->answer_text, " Lisbon");
  EXPECT_GT(after->high_score, 0.5);
  // The base model is untouched.
  trace.session_id.clear();
  auto base = engine_->Trace(trace, {});
  ASSERT_TRUE(base.ok()) << base.status();
  EXPECT_EQ(base->answer_text, " Vienna");
  EXPECT_DOUBLE_EQ(base->high_score, before->high_score);
}

}  // namespace
}  // namespace romed
