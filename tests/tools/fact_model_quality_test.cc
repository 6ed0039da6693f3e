// The quality targets for the full fact model (label `slow`).
//
// The model: $ROMED_FACT_MODEL_DIR (scripts/make_fact_model.sh makes
// models/fact; scripts/test.sh with ROMED_SLOW=1 sets the variable), else a
// full model trained here (~10 minutes on 2 cores). Either way the model is
// measured again after loading it from disk, so the check covers what romed
// actually serves, and the figures the tool wrote (fact_model.json) must agree.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "server/model/checkpoint.h"
#include "server/model/gpt2_model.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"
#include "tools/fact_model/evaluation.h"
#include "tools/fact_model/fact_model.h"

namespace romed::fact_model {
namespace {

using ::romed::testing::IsOk;

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
}

class FullModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(2);
    if (const char* dir = std::getenv("ROMED_FACT_MODEL_DIR"); dir != nullptr && *dir) {
      dir_ = new std::string(dir);
    } else {
      temp_ = new std::string(romed::testing::MakeTempDir("fact_full"));
      dir_ = new std::string(*temp_ + "/model");
      std::cerr << "ROMED_FACT_MODEL_DIR is not set: training the full model into " << *dir_
                << "\n";
      ASSERT_THAT(MakeFactModel(FullRecipe(1), *dir_, {}, &std::cerr), IsOk());
    }
    auto recipe = RecipeOfModelDir(*dir_);
    ASSERT_THAT(recipe, IsOk());
    recipe_ = new FactModelRecipe(*recipe);
    auto report = EvaluateFactModel(*recipe, *dir_);
    ASSERT_THAT(report, IsOk());
    report_ = new FactModelReport(*report);
    manifest_ = new nlohmann::json(ReadJson(*dir_ + "/fact_model.json"));
  }
  static void TearDownTestSuite() {
    if (temp_ != nullptr) std::filesystem::remove_all(*temp_);
    delete temp_;
    delete dir_;
    delete recipe_;
    delete report_;
    delete manifest_;
  }
  static std::string* temp_;
  static std::string* dir_;
  static FactModelRecipe* recipe_;
  static FactModelReport* report_;
  static nlohmann::json* manifest_;
};
std::string* FullModelTest::temp_ = nullptr;
std::string* FullModelTest::dir_ = nullptr;
FactModelRecipe* FullModelTest::recipe_ = nullptr;
FactModelReport* FullModelTest::report_ = nullptr;
nlohmann::json* FullModelTest::manifest_ = nullptr;

TEST_F(FullModelTest, IsTheFullRecipe) {
  EXPECT_EQ(recipe_->name, "full");
  EXPECT_EQ((*manifest_)["steps"].get<int64_t>(), FullRecipe(1).train.steps);
}

TEST_F(FullModelTest, AnswersKnownFactsAndHeldOutPhrasings) {
  std::cerr << "trained phrasings " << report_->facts.trained_accuracy << ", held out "
            << report_->facts.held_out_accuracy << "\n";
  EXPECT_GE(report_->facts.trained_accuracy, 0.97);
  EXPECT_GE(report_->facts.held_out_accuracy, 0.95);
}

TEST_F(FullModelTest, CounterFactBeforeEditsHasLowEfficacyAndHighNeighbourhood) {
  EXPECT_GE(report_->num_cases, 500);
  EXPECT_LE(report_->counterfact.efficacy, 0.10);
  EXPECT_GE(report_->counterfact.neighborhood, 0.95);
}

TEST_F(FullModelTest, ReloadedModelMeasuresWhatTheToolWrote) {
  // Equal up to a few argmax flips from reordered float sums (other thread
  // counts); the weights themselves round-trip exactly (float32 on disk).
  const double tolerance = 0.002;
  EXPECT_NEAR((*manifest_)["trained_accuracy"].get<double>(), report_->facts.trained_accuracy,
              tolerance);
  EXPECT_NEAR((*manifest_)["held_out_accuracy"].get<double>(), report_->facts.held_out_accuracy,
              tolerance);
  EXPECT_NEAR((*manifest_)["efficacy"].get<double>(), report_->counterfact.efficacy, tolerance);
  EXPECT_NEAR((*manifest_)["neighborhood"].get<double>(), report_->counterfact.neighborhood,
              tolerance);
}

TEST_F(FullModelTest, ReloadedModelAnswersEveryListedKnownFact) {
  auto checkpoint = LoadCheckpoint(*dir_);
  ASSERT_THAT(checkpoint, IsOk());
  const Gpt2Model model(checkpoint->config, checkpoint->weights);
  const nlohmann::json known = ReadJson(*dir_ + "/known_facts.json");
  ASSERT_TRUE(known.is_array());
  EXPECT_GE(known.size(), 0.97 * 2400);
  std::vector<TokenIds> prompts;
  std::vector<int64_t> answers;
  for (const auto& record : known) {
    prompts.push_back(checkpoint->tokenizer->Encode(record["prompt"].get<std::string>()).value());
    answers.push_back(
        SingleTokenId(*checkpoint->tokenizer, " " + record["attribute"].get<std::string>()).value());
  }
  const torch::Tensor predicted = NextTokenLogits(model, prompts).argmax(-1);
  const double right =
      (predicted == torch::tensor(answers, torch::kInt64)).to(torch::kFloat64).mean().item<double>();
  EXPECT_EQ(right, 1.0);
}

}  // namespace
}  // namespace romed::fact_model
