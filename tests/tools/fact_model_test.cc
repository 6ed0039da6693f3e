// Tests of romed-fact-model: the world's invariants (fast, no training), and
// one --quick run whose outputs are loaded and parsed like a user would.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "server/model/checkpoint.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"
#include "tools/fact_model/corpus.h"
#include "tools/fact_model/counterfact.h"
#include "tools/fact_model/evaluation.h"
#include "tools/fact_model/fact_model.h"
#include "tools/fact_model/output_dir.h"
#include "tools/fact_model/trainer.h"
#include "tools/fact_model/world.h"

namespace romed::fact_model {
namespace {

namespace fs = std::filesystem;
using ::romed::testing::IsOk;
using ::romed::testing::StatusIs;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

World FullWorld(uint64_t seed = 1) { return BuildWorld(FullRecipe(seed)).value(); }

// Every prompt of every phrasing of `relation`, mapped to its fact.
std::map<std::string, Fact> PromptIndex(const World& world, int relation) {
  std::map<std::string, Fact> index;
  for (int s = 0; s < static_cast<int>(world.subjects().size()); ++s) {
    const Fact& fact = world.FactAbout(s, relation);
    for (int p = 0; p < kPhrasingsPerRelation; ++p) index[world.Prompt(fact, p)] = fact;
  }
  return index;
}

TEST(WorldTest, HasFourHundredPeopleSixRelationsAndOneFactEach) {
  const World world = FullWorld();
  EXPECT_EQ(world.subjects().size(), 400u);
  EXPECT_EQ(world.first_names().size(), 40u);
  EXPECT_EQ(world.last_names().size(), 50u);
  EXPECT_EQ(world.relations().size(), 6u);
  EXPECT_EQ(world.facts().size(), 400u * 6u);
  for (const Relation& relation : world.relations()) {
    EXPECT_GE(relation.objects.size(), 20u) << relation.id;
    EXPECT_LE(relation.objects.size(), 30u) << relation.id;
    EXPECT_EQ(relation.phrasings.size(), static_cast<size_t>(kPhrasingsPerRelation));
  }
}

TEST(WorldTest, NamesAreDistinctAndBuiltFromThePools) {
  const World world = FullWorld();
  std::set<std::string> names;
  const std::set<std::string> firsts(world.first_names().begin(), world.first_names().end());
  const std::set<std::string> lasts(world.last_names().begin(), world.last_names().end());
  for (const Person& person : world.subjects()) {
    names.insert(person.Name());
    EXPECT_TRUE(firsts.count(person.first_name)) << person.Name();
    EXPECT_TRUE(lasts.count(person.last_name)) << person.Name();
  }
  EXPECT_EQ(names.size(), world.subjects().size());
}

TEST(WorldTest, EveryObjectIsTheTruthForAtLeastElevenPeople) {
  const World world = FullWorld();
  for (int r = 0; r < static_cast<int>(world.relations().size()); ++r) {
    for (int o = 0; o < static_cast<int>(world.relations()[r].objects.size()); ++o) {
      EXPECT_GE(world.SubjectsWithObject(r, o).size(), 11u) << world.relations()[r].objects[o];
    }
  }
}

TEST(WorldTest, EachPhrasingIsHeldOutForOneFifthOfPeople) {
  const World world = FullWorld();
  std::map<std::pair<int, int>, int> held_out;  // (relation, phrasing) -> people
  for (const Fact& fact : world.facts()) ++held_out[{fact.relation, fact.held_out_phrasing}];
  for (const auto& [key, count] : held_out) EXPECT_EQ(count, 400 / kPhrasingsPerRelation);
}

TEST(WorldTest, IsTheSameForTheSameSeedAndDiffersForAnother) {
  const World a = FullWorld(3), b = FullWorld(3), c = FullWorld(4);
  EXPECT_EQ(a.SingleTokenWords(), b.SingleTokenWords());
  EXPECT_NE(a.SingleTokenWords(), c.SingleTokenWords());
  EXPECT_EQ(TrainingFactSentences(a), TrainingFactSentences(b));
  EXPECT_NE(TrainingFactSentences(a), TrainingFactSentences(c));
}

TEST(WorldTest, RejectsMoreSubjectsThanNames) {
  WorldOptions options;
  options.num_subjects = 101;
  options.num_first_names = 10;
  options.num_last_names = 10;
  EXPECT_THAT(World::Build(options), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CorpusTest, HeldOutPhrasingsNeverAppearInTheTrainingText) {
  const World world = FullWorld();
  const std::vector<std::string> trained = TrainingFactSentences(world);
  const std::set<std::string> trained_set(trained.begin(), trained.end());
  EXPECT_EQ(trained.size(), world.facts().size() * (kPhrasingsPerRelation - 1));
  SeededRandom rng(5);
  const SentenceMix mix(world, CorpusOptions{}, rng);
  std::set<std::string> drawn;
  for (const std::string& doc : MakeDocuments(mix, 2000, 8, rng)) {
    for (absl::string_view s : absl::StrSplit(doc.substr(0, doc.size() - 1), ". ")) {
      drawn.insert(std::string(s));
    }
  }
  for (const Fact& fact : world.facts()) {
    const std::string held_out = world.Sentence(fact, fact.held_out_phrasing);
    EXPECT_FALSE(trained_set.count(held_out)) << held_out;
    EXPECT_FALSE(drawn.count(held_out)) << held_out;
  }
}

TEST(CounterFactTest, HasAtLeastFiveHundredCasesOnDistinctFacts) {
  const World world = FullWorld();
  const auto cases = BuildCounterFact(world, FullRecipe(1).counterfact, 9);
  EXPECT_GE(cases.size(), 500u);
  std::set<std::pair<int, int>> facts;
  for (const auto& c : cases) facts.insert({c.fact.subject, c.fact.relation});
  EXPECT_EQ(facts.size(), cases.size());
}

TEST(CounterFactTest, NeighbourhoodPromptsHaveTheTrueObjectAndAttributePromptsTheNewOne) {
  const World world = FullWorld();
  for (const auto& c : BuildCounterFact(world, FullRecipe(1).counterfact, 9)) {
    const auto index = PromptIndex(world, c.fact.relation);
    EXPECT_NE(c.target_new, c.fact.object);
    ASSERT_EQ(c.neighborhood_prompts.size(), 10u);
    for (const std::string& prompt : c.neighborhood_prompts) {
      ASSERT_TRUE(index.count(prompt)) << prompt;
      EXPECT_EQ(index.at(prompt).object, c.fact.object) << prompt;
      EXPECT_NE(index.at(prompt).subject, c.fact.subject) << prompt;
    }
    ASSERT_EQ(c.attribute_prompts.size(), 10u);
    for (const std::string& prompt : c.attribute_prompts) {
      EXPECT_EQ(index.at(prompt).object, c.target_new) << prompt;
    }
  }
}

TEST(CounterFactTest, FirstParaphraseIsTheHeldOutPhrasingAndTheRewriteIsTrained) {
  const World world = FullWorld();
  for (const auto& c : BuildCounterFact(world, FullRecipe(1).counterfact, 9)) {
    EXPECT_NE(c.rewrite_phrasing, c.fact.held_out_phrasing);
    ASSERT_EQ(c.paraphrase_prompts.size(), 2u);
    EXPECT_EQ(c.paraphrase_prompts[0], world.Prompt(c.fact, c.fact.held_out_phrasing));
  }
}

TEST(CounterFactTest, JsonHasTheCounterFactRecordFields) {
  const World world = FullWorld();
  const auto cases = BuildCounterFact(world, FullRecipe(1).counterfact, 9);
  const auto json = nlohmann::json::parse(CounterFactToJson(world, cases));
  ASSERT_EQ(json.size(), cases.size());
  const auto& rewrite = json[0]["requested_rewrite"];
  EXPECT_TRUE(absl::StrContains(rewrite["prompt"].get<std::string>(), "{}"));
  EXPECT_EQ(rewrite["subject"], world.subjects()[cases[0].fact.subject].Name());
  EXPECT_TRUE(rewrite["target_new"].contains("str"));
  EXPECT_TRUE(rewrite["target_true"].contains("str"));
  EXPECT_TRUE(rewrite.contains("relation_id"));
  for (const char* key : {"case_id", "paraphrase_prompts", "neighborhood_prompts",
                          "attribute_prompts", "generation_prompts"}) {
    EXPECT_TRUE(json[0].contains(key)) << key;
  }
}

TEST(TrainerTest, LearningRateWarmsUpThenDecaysToTenPercent) {
  TrainOptions options;
  options.steps = 1000;
  options.warmup_steps = 100;
  EXPECT_NEAR(LearningRateAt(options, 0), options.learning_rate / 100, 1e-12);
  EXPECT_NEAR(LearningRateAt(options, 99), options.learning_rate, 1e-12);
  EXPECT_NEAR(LearningRateAt(options, 999), 0.1 * options.learning_rate, 1e-12);
  EXPECT_GT(LearningRateAt(options, 500), LearningRateAt(options, 600));
}

TEST(StagingDirTest, RefusesANonEmptyDirectoryUnlessForced) {
  const std::string out = romed::testing::MakeTempDir("fact_out");
  ASSERT_THAT(WriteTextFile(out + "/keep.txt", "x"), IsOk());
  EXPECT_THAT(StagingDir::Create(out, /*force=*/false),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("--force")));
  auto staging = StagingDir::Create(out, /*force=*/true);
  ASSERT_THAT(staging, IsOk());
  ASSERT_THAT(WriteTextFile(staging->path() + "/new.txt", "y"), IsOk());
  ASSERT_THAT(staging->Commit(), IsOk());
  EXPECT_FALSE(fs::exists(out + "/keep.txt"));
  EXPECT_EQ(ReadFile(out + "/new.txt"), "y");
}

TEST(StagingDirTest, LeavesNothingBehindWithoutCommit) {
  const std::string parent = romed::testing::MakeTempDir("fact_parent");
  {
    auto staging = StagingDir::Create(parent + "/model", /*force=*/false);
    ASSERT_THAT(staging, IsOk());
    ASSERT_THAT(WriteTextFile(staging->path() + "/partial.txt", "z"), IsOk());
  }
  EXPECT_TRUE(fs::is_empty(parent));
}

TEST(StagingDirTest, RefusesAFileAsTheDestination) {
  const std::string parent = romed::testing::MakeTempDir("fact_file");
  ASSERT_THAT(WriteTextFile(parent + "/model", "not a dir"), IsOk());
  EXPECT_THAT(StagingDir::Create(parent + "/model", /*force=*/true),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(StagingDirTest, RefusesAnUnwritableParent) {
  if (geteuid() == 0) GTEST_SKIP() << "root can write anywhere";
  const std::string parent = romed::testing::MakeTempDir("fact_ro");
  fs::permissions(parent, fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THAT(StagingDir::Create(parent + "/model", false),
              StatusIs(absl::StatusCode::kPermissionDenied));
  fs::permissions(parent, fs::perms::owner_all);
}

// One --quick model for the whole suite.
class QuickModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(romed::testing::MakeTempDir("fact_quick") + "/model");
    auto report = MakeFactModel(QuickRecipe(kSeed), *dir_, {}, nullptr);
    ASSERT_THAT(report, IsOk());
    report_ = new FactModelReport(*report);
  }
  static void TearDownTestSuite() {
    fs::remove_all(fs::path(*dir_).parent_path());
    delete dir_;
    delete report_;
  }
  static std::string File(const std::string& name) { return *dir_ + "/" + name; }

  static constexpr uint64_t kSeed = 7;
  static std::string* dir_;
  static FactModelReport* report_;
};
std::string* QuickModelTest::dir_ = nullptr;
FactModelReport* QuickModelTest::report_ = nullptr;

TEST_F(QuickModelTest, WritesACheckpointThatLoads) {
  auto checkpoint = LoadCheckpoint(*dir_);
  ASSERT_THAT(checkpoint, IsOk());
  EXPECT_EQ(checkpoint->config.n_layer, 2);
  EXPECT_EQ(checkpoint->config.n_positions, 64);
  EXPECT_EQ(checkpoint->config.vocab_size, checkpoint->tokenizer->vocab_size());
  EXPECT_EQ(checkpoint->config.eos_token_id, checkpoint->tokenizer->eos_id());
  EXPECT_EQ(checkpoint->weights.NumParameters(), report_->num_parameters);
}

TEST_F(QuickModelTest, NamePartsAndObjectsAreOneTokenAfterASpaceAndFirstNamesAlsoBare) {
  auto checkpoint = LoadCheckpoint(*dir_);
  ASSERT_THAT(checkpoint, IsOk());
  const World world = BuildWorld(QuickRecipe(kSeed)).value();
  for (const std::string& word : world.SingleTokenWords()) {
    EXPECT_THAT(SingleTokenId(*checkpoint->tokenizer, word), IsOk()) << "'" << word << "'";
  }
  for (const std::string& name : world.first_names()) {
    EXPECT_THAT(SingleTokenId(*checkpoint->tokenizer, name), IsOk()) << name;
  }
  const Relation& relation = world.relations()[0];
  EXPECT_THAT(SingleTokenId(*checkpoint->tokenizer, " " + relation.objects[0]), IsOk());
}

// Rows are short documents: after "<|endoftext|>" a sentence starts bare
// ("Dora Zope ..."), after ". " with a space; about half of the sentences
// after the first of a row start a new document.
TEST_F(QuickModelTest, TrainingRowsAreShortDocumentsWithBareFirstWords) {
  auto checkpoint = LoadCheckpoint(*dir_);
  ASSERT_THAT(checkpoint, IsOk());
  const Gpt2Tokenizer& tokenizer = *checkpoint->tokenizer;
  const FactModelRecipe recipe = QuickRecipe(kSeed);
  const World world = BuildWorld(recipe).value();
  SeededRandom rng(3);
  const SentenceMix mix(world, recipe.corpus, rng);
  auto sampler = RowSampler::Create(mix, tokenizer, 65, recipe.corpus, /*seed=*/11);
  ASSERT_THAT(sampler, IsOk());
  const std::vector<int64_t> ids = sampler->NextRows(200);
  ASSERT_EQ(ids.size(), 200u * 65u);
  int breaks = 0, joins = 0;
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    if (i % 65 == 64) continue;  // the next id starts another row
    const std::string next(tokenizer.IdToToken(ids[i + 1]));
    if (ids[i] == tokenizer.eos_id() && i % 65 != 0) {
      ++breaks;
      EXPECT_FALSE(absl::StartsWith(next, "\u0120")) << "a document starts with a space: " << next;
    } else if (tokenizer.IdToToken(ids[i]) == ".") {
      ++joins;
    }
  }
  const double share = static_cast<double>(breaks) / (breaks + joins);
  EXPECT_NEAR(share, recipe.corpus.document_break_probability, 0.05) << breaks << " / " << joins;
}

TEST_F(QuickModelTest, ManifestNamesTheRecipeAndRemeasuringGivesTheSameFigures) {
  auto recipe = RecipeOfModelDir(*dir_);
  ASSERT_THAT(recipe, IsOk());
  EXPECT_EQ(recipe->name, "quick");
  EXPECT_EQ(recipe->seed, kSeed);
  auto again = EvaluateFactModel(*recipe, *dir_);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->facts.trained_accuracy, report_->facts.trained_accuracy);
  EXPECT_EQ(again->facts.held_out_accuracy, report_->facts.held_out_accuracy);
  EXPECT_EQ(again->counterfact.efficacy, report_->counterfact.efficacy);
  EXPECT_EQ(again->counterfact.neighborhood, report_->counterfact.neighborhood);
  EXPECT_EQ(again->num_parameters, report_->num_parameters);
  const auto manifest = nlohmann::json::parse(ReadFile(File("fact_model.json")));
  EXPECT_EQ(manifest["steps"], 200);
  EXPECT_EQ(manifest["known_facts"], report_->num_known);
  EXPECT_DOUBLE_EQ(manifest["held_out_accuracy"].get<double>(),
                   report_->facts.held_out_accuracy);
}

TEST_F(QuickModelTest, AccuracyByPhrasingAveragesToTheOverallAccuracy) {
  const FactEvaluation& f = report_->facts;
  double trained = 0, held_out = 0;
  for (int p = 0; p < kPhrasingsPerRelation; ++p) {
    EXPECT_GE(f.trained_accuracy_by_phrasing[p], 0.0);
    EXPECT_LE(f.trained_accuracy_by_phrasing[p], 1.0);
    trained += f.trained_accuracy_by_phrasing[p];
    held_out += f.held_out_accuracy_by_phrasing[p];
  }
  // Every phrasing is held out for the same number of facts (WorldTest).
  EXPECT_NEAR(trained / kPhrasingsPerRelation, f.trained_accuracy, 1e-9);
  EXPECT_NEAR(held_out / kPhrasingsPerRelation, f.held_out_accuracy, 1e-9);
}

TEST_F(QuickModelTest, KnownFactsParseAndAreFactsOfTheWorld) {
  const auto known = nlohmann::json::parse(ReadFile(File("known_facts.json")));
  EXPECT_EQ(static_cast<int64_t>(known.size()), report_->num_known);
  for (const auto& record : known) {
    const std::string prompt = record["prompt"];
    EXPECT_EQ(FillTemplate(record["template"], record["subject"]), prompt);
    EXPECT_EQ(record["prediction"], " " + record["attribute"].get<std::string>());
    EXPECT_TRUE(record.contains("known_id") && record.contains("relation_id"));
  }
}

TEST_F(QuickModelTest, CounterFactParsesWithOneHundredCases) {
  const auto cases = nlohmann::json::parse(ReadFile(File("counterfact.json")));
  EXPECT_EQ(cases.size(), 100u);
  EXPECT_EQ(cases[0]["neighborhood_prompts"].size(), 10u);
}

TEST_F(QuickModelTest, StatsCorpusHasOneDocumentPerLine) {
  const std::string text = ReadFile(File("stats_corpus.txt"));
  const std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  EXPECT_EQ(lines.size(), 300u);
  EXPECT_TRUE(absl::EndsWith(lines[0], "."));
}

TEST_F(QuickModelTest, ReadmeStatesTheTrainingRunAndAccuracy) {
  const std::string readme = ReadFile(File("README.md"));
  EXPECT_THAT(readme, HasSubstr("## Training"));
  EXPECT_THAT(readme, HasSubstr("held-out phrasing"));
  EXPECT_THAT(readme, HasSubstr("--quick"));
  EXPECT_EQ(report_->training.steps, 200);
  EXPECT_LT(report_->training.final_loss, report_->training.first_loss);
}

TEST_F(QuickModelTest, RefusesToOverwriteWithoutForceAndLeavesTheModelIntact) {
  const std::string before = ReadFile(File("model.safetensors"));
  EXPECT_THAT(MakeFactModel(QuickRecipe(kSeed), *dir_, {}, nullptr),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(ReadFile(File("model.safetensors")), before);
}

// The executable: bad flags and a non-empty --out exit non-zero.
int RunTool(const std::string& args) {
  const char* binary_dir = std::getenv("ROMED_BINARY_DIR");
  const std::string tool = std::string(binary_dir ? binary_dir : ".") +
                           "/tools/fact_model/romed-fact-model";
  const int status = std::system((tool + " " + args + " 2>/dev/null").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(QuickModelTest, ToolExitsNonZeroOnANonEmptyOutOrABadSeed) {
  const std::string before = ReadFile(File("model.safetensors"));
  EXPECT_EQ(RunTool("--quick --out=" + *dir_), 1);
  EXPECT_EQ(ReadFile(File("model.safetensors")), before);
  const std::string parent = romed::testing::MakeTempDir("fact_seed");
  const std::string fresh = parent + "/model";
  EXPECT_EQ(RunTool("--quick --seed=-3 --out=" + fresh), 1);
  EXPECT_NE(RunTool("--quick --seed=abc --out=" + fresh), 0);
  EXPECT_NE(RunTool("--quick --seed=99999999999999999999999 --out=" + fresh), 0);
  EXPECT_EQ(RunTool("--quick --steps=-1 --out=" + fresh), 1);
  EXPECT_EQ(RunTool("--quick --threads=0 --out=" + fresh), 1);
  EXPECT_EQ(RunTool("--quick"), 1);  // no --out
  EXPECT_TRUE(fs::is_empty(parent));
}

// A destination that cannot be created (its parent is a file: unwritable
// even for root) fails before any training, leaving nothing behind.
TEST_F(QuickModelTest, ToolExitsNonZeroOnAnUnwritableOutAndLeavesNothing) {
  const std::string parent = romed::testing::MakeTempDir("fact_unwritable");
  ASSERT_THAT(WriteTextFile(parent + "/file", "x"), IsOk());
  EXPECT_EQ(RunTool("--quick --out=" + parent + "/file/model"), 1);
  EXPECT_EQ(RunTool("--quick --out=" + parent + "/file"), 1);
  EXPECT_EQ(ReadFile(parent + "/file"), "x");
  EXPECT_EQ(std::distance(fs::directory_iterator(parent), fs::directory_iterator()), 1);
}

TEST_F(QuickModelTest, ToolEvaluatesAMadeModelAndRejectsAMissingOne) {
  EXPECT_EQ(RunTool("--evaluate=" + *dir_), 0);
  EXPECT_EQ(RunTool("--evaluate=" + romed::testing::MakeTempDir("fact_none")), 1);
}

TEST(FactModelTest, FailsBeforeTrainingWhenTheDestinationCannotBeMade) {
  const std::string parent = romed::testing::MakeTempDir("fact_early");
  ASSERT_THAT(WriteTextFile(parent + "/file", "x"), IsOk());
  FactModelRecipe recipe = FullRecipe(1);
  recipe.train.steps = 1000000;  // would take days if it got that far
  EXPECT_THAT(MakeFactModel(recipe, parent + "/file/model", {}, nullptr),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(ReadFile(parent + "/file"), "x");
}

TEST(FactModelTest, RecipeOfModelDirNeedsAValidManifest) {
  const std::string dir = romed::testing::MakeTempDir("fact_manifest");
  EXPECT_THAT(RecipeOfModelDir(dir), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_THAT(WriteTextFile(dir + "/fact_model.json", "{not json"), IsOk());
  EXPECT_THAT(RecipeOfModelDir(dir), StatusIs(absl::StatusCode::kDataLoss));
  ASSERT_THAT(WriteTextFile(dir + "/fact_model.json", R"({"recipe": "huge", "seed": 1})"), IsOk());
  EXPECT_THAT(RecipeOfModelDir(dir), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("huge")));
  ASSERT_THAT(WriteTextFile(dir + "/fact_model.json", R"({"recipe": "full", "seed": 4})"), IsOk());
  auto recipe = RecipeOfModelDir(dir);
  ASSERT_THAT(recipe, IsOk());
  EXPECT_EQ(recipe->name, "full");
  EXPECT_EQ(recipe->seed, 4u);
}

}  // namespace
}  // namespace romed::fact_model
