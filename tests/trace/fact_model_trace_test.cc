// What causal tracing shows on the fact model (ROME.md section 8), averaged
// over its first 50 known facts. Needs the trained model: set
// ROMED_FACT_MODEL_DIR (scripts/make_fact_model.sh writes models/fact, which
// is used when present); skipped otherwise, and skipped after printing the
// table for a model that knows fewer than 50 facts (the --quick model knows
// ~14 and has 2 layers).
//
// If ROMED_TRACE_ARTIFACTS names a directory, the averaged table, the edit
// site JSON and the first fact's heatmaps (SVG and terminal) are written there.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/model/checkpoint.h"
#include "server/trace/causal_trace.h"
#include "server/trace/heatmap_svg.h"
#include "server/trace/heatmap_terminal.h"
#include "server/trace/noise.h"
#include "server/trace/trace_aggregate.h"

namespace romed {
namespace {

constexpr int kFacts = 50;

std::string FactModelDir() {
  const char* dir = std::getenv("ROMED_FACT_MODEL_DIR");
  if (dir != nullptr && *dir != '\0') return dir;
  const char* source = std::getenv("ROMED_SOURCE_DIR");
  std::string fallback = std::string(source != nullptr ? source : ".") + "/models/fact";
  return std::ifstream(fallback + "/known_facts.json").good() ? fallback : "";
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(FactModelTraceTest, LooksFactsUpAtTheLastTokenInTheTopLayers) {
  const std::string dir = FactModelDir();
  if (dir.empty()) GTEST_SKIP() << "no fact model: set ROMED_FACT_MODEL_DIR";
  auto checkpoint = LoadCheckpoint(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  Gpt2Model model(checkpoint->config, checkpoint->weights);
  std::stringstream text;
  text << std::ifstream(dir + "/known_facts.json").rdbuf();
  nlohmann::json facts = nlohmann::json::parse(text.str());
  ASSERT_FALSE(facts.empty()) << "no known facts";
  const int num_facts = std::min<int>(kFacts, static_cast<int>(facts.size()));

  std::vector<std::string> subjects;
  for (const auto& fact : facts) subjects.push_back(fact["subject"]);
  auto embedding_std = SubjectEmbeddingStd(model, *checkpoint->tokenizer, subjects);
  ASSERT_TRUE(embedding_std.ok()) << embedding_std.status();
  TraceOptions options;
  options.embedding_std = *embedding_std;

  std::vector<TraceResult> traces;
  for (int i = 0; i < num_facts; ++i) {
    auto trace = TracePrompt(model, *checkpoint->tokenizer, facts[i]["prompt"].get<std::string>(),
                             facts[i]["subject"].get<std::string>(), options);
    ASSERT_TRUE(trace.ok()) << trace.status();
    traces.push_back(std::move(*trace));
  }
  auto table = AggregateTraces(traces);
  ASSERT_TRUE(table.ok()) << table.status();
  auto site = RecommendEditSite(*table);
  ASSERT_TRUE(site.ok()) << site.status();
  std::cout << FormatAggregateTable(*table) << "\nedit site: " << RecommendationToJson(*site)
            << "\n";
  if (const char* out = std::getenv("ROMED_TRACE_ARTIFACTS")) {
    WriteFile(std::string(out) + "/table.txt", FormatAggregateTable(*table));
    WriteFile(std::string(out) + "/edit_site.json", RecommendationToJson(*site));
    WriteFile(std::string(out) + "/trace.svg",
              RenderTraceSvg(traces[0], facts[0]["prompt"].get<std::string>()));
    WriteFile(std::string(out) + "/trace.txt", RenderTraceTerminal(traces[0]));
  }

  if (num_facts < kFacts) {
    GTEST_SKIP() << "the model knows only " << num_facts << " facts (a --quick model?); the "
                 << "assertions need " << kFacts;
  }
  const int64_t L = table->num_layers;
  auto effect = [&](TraceKind kind, PositionClass position, int64_t layer) {
    return table->Find(kind)->effect[static_cast<int>(position)][layer];
  };
  EXPECT_GT(table->mean_high - table->mean_low, 0.5);
  // The last token's state effect rises with depth (allowing small dips).
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
  // Restoring a single subject position barely helps.
  for (PositionClass position : {PositionClass::kFirstSubject, PositionClass::kMiddleSubject,
                                 PositionClass::kLastSubject}) {
    for (int64_t l = 0; l < L; ++l) {
      EXPECT_LT(effect(TraceKind::kState, position, l), 0.05)
          << PositionClassName(position) << " layer " << l;
    }
  }
  // The advice follows from the table: the MLP peak, at the last token.
  EXPECT_EQ(site->fact_token, "last");
  for (PositionClass position :
       {PositionClass::kFirstSubject, PositionClass::kLastSubject, PositionClass::kLastToken}) {
    for (int64_t l = 0; l < L; ++l) EXPECT_LE(effect(TraceKind::kMlp, position, l), site->effect);
  }
}

}  // namespace
}  // namespace romed
