// ROME's quality targets on the full fact model (issue #5), label `slow`:
//  - single edits: >= 100 CounterFact rewrites at the recommended site
//    (fact_token last, top layer; ROME.md section 8), each alone on the base
//    model: efficacy >= 99%, paraphrase >= 95%, neighbourhood >= 95%;
//  - sequential: 50 edits stacked in one session keep >= 95% of the other
//    known facts (greedy top-1) and every edit's efficacy;
//  - a sweep over layers and fact tokens (printed for the README, not
//    asserted).
// rome_fact_model_test.cc covers the fast path (20-40 edits, also on a
// --quick model); this file needs $ROMED_FACT_MODEL_DIR (skipped without it).
// ROMED_FACT_EDITS overrides the number of single edits (default 100);
// ROMED_ROME_<NAME> (LAYER, CLAMP_NORM_FACTOR, KL_FACTOR, V_WEIGHT_DECAY,
// V_LR, V_NUM_GRAD_STEPS) override the recommended site's hyperparameters
// for tuning sweeps (the targets are asserted on the defaults).
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "server/edit/rome.h"
#include "server/model/checkpoint.h"
#include "server/model/scorer.h"
#include "tests/testing/status_matchers.h"

namespace romed {
namespace {

struct Case {
  RewriteRequest rewrite;
  std::vector<std::string> paraphrases;
  std::vector<std::string> neighbours;
};

class FactModelQualityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* dir = std::getenv("ROMED_FACT_MODEL_DIR");
    if (dir == nullptr || *dir == '\0') return;
    dir_ = new std::string(dir);
    absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(*dir_);
    if (!checkpoint.ok()) {
      ADD_FAILURE() << checkpoint.status();
      return;
    }
    tokenizer_ = new std::shared_ptr<const Gpt2Tokenizer>(checkpoint->tokenizer);
    model_ = new Gpt2Model(checkpoint->config, checkpoint->weights);
    CorpusCovarianceOptions stats;
    stats.corpus_path = *dir_ + "/stats_corpus.txt";
    covariance_ = new CorpusCovariance(*model_, **tokenizer_, stats);
    templates_ = new ContextTemplateCache();
  }
  static void TearDownTestSuite() {
    delete templates_;
    delete covariance_;
    delete model_;
    delete tokenizer_;
    delete dir_;
  }
  void SetUp() override {
    if (dir_ == nullptr) GTEST_SKIP() << "set ROMED_FACT_MODEL_DIR to a full fact model";
    ASSERT_NE(model_, nullptr);
  }

  static const Gpt2Tokenizer& tok() { return **tokenizer_; }

  static std::vector<Case> LoadCases() {
    std::ifstream in(*dir_ + "/counterfact.json");
    EXPECT_TRUE(in.good());
    std::vector<Case> cases;
    for (const auto& c : nlohmann::json::parse(in)) {
      const auto& rw = c["requested_rewrite"];
      Case out;
      out.rewrite = {rw["prompt"], rw["subject"], rw["target_new"]["str"], rw["target_true"]["str"]};
      for (const auto& p : c["paraphrase_prompts"]) out.paraphrases.push_back(p);
      for (const auto& p : c["neighborhood_prompts"]) out.neighbours.push_back(p);
      cases.push_back(std::move(out));
    }
    return cases;
  }

  static RomeOptions RecommendedSite() {
    RomeOptions options = DefaultRomeOptions(model_->config());
    options.layer = model_->config().n_layer - 1;
    options.fact_token = FactToken::kLast;
    auto env = [](const char* name, auto& field) {
      const char* value = std::getenv(name);
      if (value == nullptr || *value == '\0') return;
      field = static_cast<std::decay_t<decltype(field)>>(std::stod(value));
      std::cout << name << "=" << field << "\n";
    };
    env("ROMED_ROME_LAYER", options.layer);
    env("ROMED_ROME_CLAMP_NORM_FACTOR", options.clamp_norm_factor);
    env("ROMED_ROME_KL_FACTOR", options.kl_factor);
    env("ROMED_ROME_V_WEIGHT_DECAY", options.v_weight_decay);
    env("ROMED_ROME_V_LR", options.v_lr);
    env("ROMED_ROME_V_NUM_GRAD_STEPS", options.v_num_grad_steps);
    return options;
  }

  // P(first) > P(second) after `prompt`, by mean per-token log-probability.
  static bool Prefers(const std::string& prompt, const std::string& first,
                      const std::string& second, const std::shared_ptr<const EditView>& view) {
    auto p = tok().Encode(prompt);
    auto a = tok().Encode(SpacedTarget(first));
    auto b = tok().Encode(SpacedTarget(second));
    if (!p.ok() || !a.ok() || !b.ok()) return false;
    auto scores = ScoreContinuations(*model_, *p, {*a, *b}, view);
    EXPECT_TRUE(scores.ok()) << scores.status();
    if (!scores.ok()) return false;
    return (*scores)[0].total_logprob / (*scores)[0].ids.size() >
           (*scores)[1].total_logprob / (*scores)[1].ids.size();
  }

  struct Scores {
    int cases = 0, efficacy = 0;
    int paraphrase = 0, paraphrase_total = 0;
    int neighbours = 0, neighbours_total = 0;
    double seconds = 0;
    double es() const { return double(efficacy) / std::max(1, cases); }
    double ps() const { return double(paraphrase) / std::max(1, paraphrase_total); }
    double ns() const { return double(neighbours) / std::max(1, neighbours_total); }
  };

  // Each of `cases` edited alone on the base model with `options`.
  static Scores SingleEdits(const std::vector<Case>& cases, const RomeOptions& options) {
    Scores s;
    for (const Case& c : cases) {
      absl::StatusOr<RomeResult> result =
          ComputeRomeEdit(*model_, tok(), nullptr, c.rewrite, options, *covariance_, templates_);
      EXPECT_TRUE(result.ok()) << result.status();
      if (!result.ok()) continue;
      s.seconds += result->timings.total_s;
      auto view = EditView::Build(result->deltas, model_->device(), model_->dtype());
      ++s.cases;
      s.efficacy += result->after.p_new > result->after.p_true;
      for (const std::string& p : c.paraphrases) {
        ++s.paraphrase_total;
        s.paraphrase += Prefers(p, c.rewrite.target_new, c.rewrite.target_true, view);
      }
      for (const std::string& p : c.neighbours) {
        ++s.neighbours_total;
        s.neighbours += Prefers(p, c.rewrite.target_true, c.rewrite.target_new, view);
      }
    }
    return s;
  }

  // Greedy next token == the first token of " attribute", per known fact.
  static std::vector<bool> KnownFactsAnswered(const nlohmann::json& facts,
                                              const std::shared_ptr<const EditView>& view) {
    std::vector<bool> answered;
    torch::NoGradGuard no_grad;
    for (const auto& fact : facts) {
      auto prompt = tok().Encode(fact["prompt"].get<std::string>());
      auto answer = tok().Encode(SpacedTarget(fact["attribute"].get<std::string>()));
      if (!prompt.ok() || !answer.ok() || answer->empty()) {
        answered.push_back(false);
        continue;
      }
      ForwardOptions options;
      RowEdits edits;
      if (view != nullptr) {
        edits.views = {view};
        options.edits = &edits;
      }
      torch::Tensor logits =
          model_->Forward({torch::tensor(*prompt, torch::kInt64).unsqueeze(0), torch::Tensor()},
                          options);
      answered.push_back(logits[0][-1].argmax().item<int64_t>() == (*answer)[0]);
    }
    return answered;
  }

  struct SequentialResult {
    int effective = 0, edits = 0, kept = 0, known_before = 0;
    double kept_share() const { return double(kept) / std::max(1, known_before); }
  };

  // `n` CounterFact cases with distinct subjects stacked in order on one
  // state with `options`; then each edit's efficacy on the final state and
  // the known facts (of other subjects) still answered top-1 that were
  // answered before.
  static SequentialResult SequentialEdits(size_t n, const RomeOptions& options) {
    std::vector<Case> cases;
    std::set<std::string> subjects;
    for (Case& c : LoadCases()) {
      if (cases.size() == n) break;
      if (subjects.insert(c.rewrite.subject).second) cases.push_back(std::move(c));
    }
    EXPECT_EQ(cases.size(), n);
    std::ifstream in(*dir_ + "/known_facts.json");
    nlohmann::json known = nlohmann::json::array();
    for (const auto& fact : nlohmann::json::parse(in)) {
      if (subjects.count(fact["subject"].get<std::string>()) == 0) known.push_back(fact);
    }
    const std::vector<bool> before = KnownFactsAnswered(known, nullptr);
    std::vector<RankOneDelta> stack;
    std::shared_ptr<const EditView> view;
    for (const Case& c : cases) {
      absl::StatusOr<RomeResult> result =
          ComputeRomeEdit(*model_, tok(), view, c.rewrite, options, *covariance_, templates_);
      EXPECT_TRUE(result.ok()) << result.status();
      if (!result.ok()) return {};
      stack.insert(stack.end(), result->deltas.begin(), result->deltas.end());
      view = EditView::Build(stack, model_->device(), model_->dtype());
    }
    SequentialResult r;
    r.edits = static_cast<int>(cases.size());
    for (const Case& c : cases) {
      r.effective += Prefers(NestTemplate(c.rewrite.prompt, c.rewrite.subject),
                             c.rewrite.target_new, c.rewrite.target_true, view);
    }
    const std::vector<bool> after = KnownFactsAnswered(known, view);
    for (size_t i = 0; i < before.size(); ++i) {
      r.known_before += before[i];
      r.kept += before[i] && after[i];
    }
    return r;
  }

  static std::string* dir_;
  static std::shared_ptr<const Gpt2Tokenizer>* tokenizer_;
  static Gpt2Model* model_;
  static CorpusCovariance* covariance_;
  static ContextTemplateCache* templates_;
};
std::string* FactModelQualityTest::dir_ = nullptr;
std::shared_ptr<const Gpt2Tokenizer>* FactModelQualityTest::tokenizer_ = nullptr;
Gpt2Model* FactModelQualityTest::model_ = nullptr;
CorpusCovariance* FactModelQualityTest::covariance_ = nullptr;
ContextTemplateCache* FactModelQualityTest::templates_ = nullptr;

TEST_F(FactModelQualityTest, SingleEditsAtTheRecommendedSiteMeetTheTargets) {
  std::vector<Case> cases = LoadCases();
  const char* wanted_env = std::getenv("ROMED_FACT_EDITS");
  const size_t wanted = wanted_env != nullptr ? std::stoul(wanted_env) : 100;
  ASSERT_GE(cases.size(), wanted);
  cases.resize(wanted);
  const RomeOptions options = RecommendedSite();
  const Scores s = SingleEdits(cases, options);
  std::cout << absl::StrFormat(
      "fact model %s: %d single edits at layer %d, fact_token last: efficacy %.4f, paraphrase "
      "%.4f, neighbourhood %.4f, %.3f s per edit\n",
      *dir_, s.cases, options.layer, s.es(), s.ps(), s.ns(), s.seconds / std::max(1, s.cases));
  RecordProperty("efficacy", std::to_string(s.es()));
  RecordProperty("paraphrase", std::to_string(s.ps()));
  RecordProperty("neighbourhood", std::to_string(s.ns()));
  EXPECT_GE(s.cases, 100);
  EXPECT_GE(s.es(), 0.99);
  EXPECT_GE(s.ps(), 0.95);
  EXPECT_GE(s.ns(), 0.95);
}

TEST_F(FactModelQualityTest, FiftySequentialEditsKeepOtherFactsAndEveryEdit) {
  const RomeOptions options = RecommendedSite();
  const SequentialResult r = SequentialEdits(50, options);
  std::cout << absl::StrFormat(
      "50 sequential edits: %d/%d still effective; other known facts kept %d/%d = %.4f\n",
      r.effective, r.edits, r.kept, r.known_before, r.kept_share());
  RecordProperty("kept", std::to_string(r.kept_share()));
  EXPECT_EQ(r.effective, 50);
  EXPECT_GE(r.kept_share(), 0.95);
}

TEST_F(FactModelQualityTest, SweepOverLayersAndFactTokens) {
  std::vector<Case> cases = LoadCases();
  cases.resize(std::min<size_t>(cases.size(), 30));
  std::cout << "fact_token      layer  efficacy  paraphrase  neighbourhood  s/edit\n";
  for (FactToken token : {FactToken::kLast, FactToken::kSubjectLast, FactToken::kSubjectFirst}) {
    for (int64_t layer = 0; layer < model_->config().n_layer; ++layer) {
      RomeOptions options = DefaultRomeOptions(model_->config());
      options.layer = layer;
      options.fact_token = token;
      const Scores s = SingleEdits(cases, options);
      std::cout << absl::StrFormat("%-14s  %5d  %8.3f  %10.3f  %13.3f  %6.3f\n",
                                   std::string(FactTokenName(token)), layer, s.es(), s.ps(),
                                   s.ns(), s.seconds / std::max(1, s.cases));
    }
  }
}

}  // namespace
}  // namespace romed
