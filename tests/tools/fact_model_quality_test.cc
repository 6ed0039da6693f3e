// The quality targets for the full fact model (label `slow`: trains
// the full recipe, ~10 minutes on 2 cores). The model is then reloaded from
// disk, so the check also covers what romed actually serves.
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

class FullModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(2);
    dir_ = new std::string(romed::testing::MakeTempDir("fact_full") + "/model");
    auto report = MakeFactModel(FullRecipe(1), *dir_, {}, &std::cerr);
    ASSERT_THAT(report, IsOk());
    report_ = new FactModelReport(*report);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(std::filesystem::path(*dir_).parent_path());
    delete dir_;
    delete report_;
  }
  static std::string* dir_;
  static FactModelReport* report_;
};
std::string* FullModelTest::dir_ = nullptr;
FactModelReport* FullModelTest::report_ = nullptr;

TEST_F(FullModelTest, AnswersKnownFactsAndHeldOutPhrasings) {
  std::cerr << "training " << report_->training.seconds << " s, final loss "
            << report_->training.final_loss << "\n";
  EXPECT_GE(report_->facts.trained_accuracy, 0.97);
  EXPECT_GE(report_->facts.held_out_accuracy, 0.95);
}

TEST_F(FullModelTest, CounterFactBeforeEditsHasLowEfficacyAndHighNeighbourhood) {
  EXPECT_GE(report_->num_cases, 500);
  EXPECT_LE(report_->counterfact.efficacy, 0.10);
  EXPECT_GE(report_->counterfact.neighborhood, 0.95);
}

TEST_F(FullModelTest, ReloadedModelAnswersEveryListedKnownFact) {
  auto checkpoint = LoadCheckpoint(*dir_);
  ASSERT_THAT(checkpoint, IsOk());
  const Gpt2Model model(checkpoint->config, checkpoint->weights);
  std::ifstream in(*dir_ + "/known_facts.json");
  const auto known = nlohmann::json::parse(in);
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
