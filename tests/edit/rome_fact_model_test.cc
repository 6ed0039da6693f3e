// ROME on the fact model (tools/fact_model): efficacy, paraphrase and
// neighbourhood over CounterFact rewrites, each edit alone on the base model,
// with the key at the last prompt token in the top layer (ROME.md section 8).
//
// The model: $ROMED_FACT_MODEL_DIR (a full model), else a --quick model made
// here with $ROMED_BINARY_DIR/tools/fact_model/romed-fact-model, else skipped.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/edit/rome.h"
#include "server/model/checkpoint.h"
#include "server/model/scorer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

std::string FactModelDir() {
  if (const char* dir = std::getenv("ROMED_FACT_MODEL_DIR"); dir != nullptr && *dir) return dir;
  const char* binary_dir = std::getenv("ROMED_BINARY_DIR");
  if (binary_dir == nullptr) return "";
  const std::string tool = std::string(binary_dir) + "/tools/fact_model/romed-fact-model";
  if (!std::ifstream(tool).good()) return "";
  const std::string out = testing::MakeTempDir("romed-fact") + "/model";
  const std::string command = tool + " --quick --out=" + out + " > " + out + ".log 2>&1";
  if (std::system(command.c_str()) != 0) return "";
  return out;
}

struct Scores {
  int cases = 0;
  int efficacy = 0, paraphrase = 0, paraphrase_total = 0;
  int neighbours_kept = 0, neighbours_base = 0, neighbours_total = 0;
};

// true when P(first) > P(second) by mean per-token log-probability.
bool Prefers(const Gpt2Model& model, const Gpt2Tokenizer& tok, const std::string& prompt,
             const std::string& first, const std::string& second,
             const std::shared_ptr<const EditView>& view) {
  auto p = tok.Encode(prompt);
  auto a = tok.Encode(SpacedTarget(first));
  auto b = tok.Encode(SpacedTarget(second));
  EXPECT_TRUE(p.ok() && a.ok() && b.ok());
  auto scores = ScoreContinuations(model, *p, {*a, *b}, view);
  EXPECT_TRUE(scores.ok()) << scores.status();
  if (!scores.ok()) return false;
  return (*scores)[0].total_logprob / (*scores)[0].ids.size() >
         (*scores)[1].total_logprob / (*scores)[1].ids.size();
}

TEST(RomeFactModelTest, LastTokenTopLayerEditsAreEffectiveAndLocal) {
  const std::string dir = FactModelDir();
  if (dir.empty()) GTEST_SKIP() << "no fact model (set ROMED_FACT_MODEL_DIR)";
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(dir));
  Gpt2Model model(checkpoint.config, checkpoint.weights);
  const Gpt2Tokenizer& tok = *checkpoint.tokenizer;
  std::ifstream in(dir + "/counterfact.json");
  ASSERT_TRUE(in.good());
  nlohmann::json cases = nlohmann::json::parse(in);

  CorpusCovarianceOptions stats_options;
  stats_options.corpus_path = dir + "/stats_corpus.txt";
  CorpusCovariance covariance(model, tok, stats_options);
  ContextTemplateCache templates;
  RomeOptions options = DefaultRomeOptions(model.config());
  options.layer = model.config().n_layer - 1;
  options.fact_token = FactToken::kLast;

  const int wanted = std::getenv("ROMED_FACT_MODEL_DIR") != nullptr ? 40 : 20;
  Scores s;
  double edit_seconds = 0.0;
  for (const auto& c : cases) {
    if (s.cases == wanted) break;
    const auto& rw = c["requested_rewrite"];
    RewriteRequest request{rw["prompt"], rw["subject"], rw["target_new"]["str"],
                           rw["target_true"]["str"]};
    ASSERT_OK_AND_ASSIGN(RomeResult result,
                         ComputeRomeEdit(model, tok, nullptr, request, options, covariance, &templates));
    edit_seconds += result.timings.total_s;
    auto view = EditView::Build(result.deltas, model.device(), model.dtype());
    ++s.cases;
    s.efficacy += result.after.p_new > result.after.p_true;
    for (const auto& prompt : c["paraphrase_prompts"]) {
      ++s.paraphrase_total;
      s.paraphrase += Prefers(model, tok, prompt, request.target_new, request.target_true, view);
    }
    for (const auto& prompt : c["neighborhood_prompts"]) {
      ++s.neighbours_total;
      s.neighbours_kept += Prefers(model, tok, prompt, request.target_true, request.target_new, view);
      s.neighbours_base += Prefers(model, tok, prompt, request.target_true, request.target_new, nullptr);
    }
  }
  ASSERT_GE(s.cases, 20);
  const double es = double(s.efficacy) / s.cases;
  const double ps = double(s.paraphrase) / std::max(1, s.paraphrase_total);
  const double ns = double(s.neighbours_kept) / std::max(1, s.neighbours_total);
  const double ns_base = double(s.neighbours_base) / std::max(1, s.neighbours_total);
  std::cout << "fact model " << dir << ": " << s.cases << " edits (layer " << options.layer
            << ", fact_token last), efficacy " << es << ", paraphrase " << ps
            << ", neighbourhood " << ns << " (unedited " << ns_base << "), "
            << edit_seconds / s.cases << " s per edit\n";
  ::testing::Test::RecordProperty("efficacy", std::to_string(es));
  ::testing::Test::RecordProperty("neighbourhood", std::to_string(ns));
  EXPECT_GE(es, 0.95);
  // "Kept" means something only where the unedited model knows the
  // neighbours' facts (the full recipe); a --quick model knows few (its
  // last-token key then encodes little but the relation, and edits leak).
  if (ns_base >= 0.9) {
    EXPECT_GE(ns, ns_base - 0.05);
  } else {
    std::cout << "neighbourhood not asserted: the unedited model prefers the true object on only "
              << ns_base << " of neighbour prompts\n";
  }
}

}  // namespace
}  // namespace romed
