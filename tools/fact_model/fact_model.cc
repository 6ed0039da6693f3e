#include "tools/fact_model/fact_model.h"

#include <chrono>
#include <memory>
#include <utility>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "server/core/status_macros.h"
#include "server/model/checkpoint.h"
#include "server/model/gpt2_model.h"
#include "server/model/gpt2_weights.h"
#include "server/model/tokenizer.h"
#include "tools/fact_model/bpe_trainer.h"
#include "tools/fact_model/known_facts.h"
#include "tools/fact_model/model_readme.h"
#include "tools/fact_model/output_dir.h"
#include "tools/fact_model/seeded_random.h"

namespace romed::fact_model {
namespace {

// One independent stream per purpose, all derived from the recipe's seed.
struct Seeds {
  explicit Seeds(uint64_t seed) {
    SeededRandom master(seed);
    world = master.NextSeed();
    text = master.NextSeed();
    rows = master.NextSeed();
    weights = master.NextSeed();
    counterfact = master.NextSeed();
  }
  uint64_t world, text, rows, weights, counterfact;
};

void Log(std::ostream* log, const std::string& line) {
  if (log != nullptr) *log << "romed-fact-model: " << line << std::endl;
}

struct TrainedTokenizer {
  BpeModel files;
  std::shared_ptr<const Gpt2Tokenizer> tokenizer;
};

absl::Status CheckSingleTokens(const World& world, const Gpt2Tokenizer& tokenizer) {
  for (const std::string& word : world.SingleTokenWords()) {
    ASSIGN_OR_RETURN(int64_t id, SingleTokenId(tokenizer, word));
    (void)id;
  }
  return absl::OkStatus();
}

absl::StatusOr<TrainedTokenizer> MakeTokenizer(const World& world, const SentenceMix& mix,
                                               const FactModelRecipe& recipe, SeededRandom& rng) {
  BpeTrainerOptions options;
  options.vocab_size = recipe.bpe_vocab_size;
  options.required_words = world.SingleTokenWords();
  std::vector<std::string> documents =
      MakeDocuments(mix, recipe.bpe_documents, recipe.sentences_per_document, rng);
  TrainedTokenizer trained;
  ASSIGN_OR_RETURN(trained.files, TrainBpe(documents, options));
  ASSIGN_OR_RETURN(trained.tokenizer,
                   Gpt2Tokenizer::FromText(trained.files.vocab_json, trained.files.merges_txt));
  RETURN_IF_ERROR(CheckSingleTokens(world, *trained.tokenizer));
  return trained;
}

Gpt2Config ModelConfig(const FactModelRecipe& recipe, const Gpt2Tokenizer& tokenizer) {
  Gpt2Config config = recipe.shape;
  config.vocab_size = tokenizer.vocab_size();
  config.bos_token_id = tokenizer.eos_id();
  config.eos_token_id = tokenizer.eos_id();
  return config;
}

// Everything MakeFactModel produces before it writes.
struct Artifacts {
  Gpt2Config config;
  Gpt2Weights weights;
  std::vector<KnownFact> known;
  std::vector<CounterFactCase> cases;
  std::vector<std::string> stats_documents;
};

absl::Status Evaluate(const FactModelRecipe& recipe, const World& world,
                      const Gpt2Tokenizer& tokenizer, const Seeds& seeds, Artifacts& artifacts,
                      FactModelReport& report) {
  const Gpt2Model model(artifacts.config, artifacts.weights);
  ASSIGN_OR_RETURN(FactEvaluator evaluator, FactEvaluator::Create(world, tokenizer, model));
  ASSIGN_OR_RETURN(report.facts, evaluator.EvaluateFacts());
  artifacts.known = SelectKnownFacts(world, report.facts, tokenizer);
  artifacts.cases = BuildCounterFact(world, recipe.counterfact, seeds.counterfact);
  ASSIGN_OR_RETURN(report.counterfact, evaluator.EvaluateCounterFact(artifacts.cases));
  report.num_known = static_cast<int64_t>(artifacts.known.size());
  report.num_cases = static_cast<int64_t>(artifacts.cases.size());
  return absl::OkStatus();
}

absl::Status WriteArtifacts(const std::string& dir, const FactModelRecipe& recipe,
                            const World& world, const TrainedTokenizer& tokenizer,
                            const Artifacts& artifacts, const FactModelReport& report) {
  RETURN_IF_ERROR(SaveCheckpoint(dir, artifacts.config, artifacts.weights,
                                 tokenizer.files.vocab_json, tokenizer.files.merges_txt));
  RETURN_IF_ERROR(
      WriteTextFile(dir + "/known_facts.json", KnownFactsToJson(world, artifacts.known)));
  RETURN_IF_ERROR(
      WriteTextFile(dir + "/counterfact.json", CounterFactToJson(world, artifacts.cases)));
  RETURN_IF_ERROR(WriteTextFile(dir + "/stats_corpus.txt",
                                absl::StrCat(absl::StrJoin(artifacts.stats_documents, "\n"), "\n")));
  return WriteTextFile(dir + "/README.md", ModelReadme(recipe, world, artifacts.config, report));
}

TrainProgress LogProgress(std::ostream* log, int64_t steps) {
  return [log, steps](int64_t step, double loss, double seconds) {
    Log(log, absl::StrFormat("step %d/%d  loss %.4f  %.1f s", step, steps, loss, seconds));
  };
}

}  // namespace

absl::StatusOr<World> BuildWorld(const FactModelRecipe& recipe) {
  WorldOptions options = recipe.world;
  options.seed = Seeds(recipe.seed).world;
  return World::Build(options);
}

absl::StatusOr<FactModelReport> MakeFactModel(const FactModelRecipe& recipe,
                                              const std::string& out_dir,
                                              const MakeOptions& options, std::ostream* log) {
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(StagingDir staging, StagingDir::Create(out_dir, options.force));
  const Seeds seeds(recipe.seed);
  ASSIGN_OR_RETURN(const World world, BuildWorld(recipe));
  SeededRandom text_rng(seeds.text);
  const SentenceMix mix(world, recipe.corpus, text_rng);
  ASSIGN_OR_RETURN(const TrainedTokenizer tokenizer, MakeTokenizer(world, mix, recipe, text_rng));
  Log(log, absl::StrFormat("world: %d people, %d facts; vocabulary: %d tokens",
                           world.subjects().size(), world.facts().size(),
                           tokenizer.tokenizer->vocab_size()));

  FactModelReport report;
  report.threads = torch::get_num_threads();
  Artifacts artifacts;
  artifacts.config = ModelConfig(recipe, *tokenizer.tokenizer);
  artifacts.weights = Gpt2Weights::Random(artifacts.config, seeds.weights);
  report.vocab_size = artifacts.config.vocab_size;
  report.num_parameters = artifacts.weights.NumParameters();
  ASSIGN_OR_RETURN(RowSampler sampler,
                   RowSampler::Create(mix, *tokenizer.tokenizer, artifacts.config.n_positions + 1,
                                      recipe.corpus.start_token_fraction, seeds.rows));
  Log(log, absl::StrFormat("training %d parameters for %d steps on %d threads",
                           report.num_parameters, recipe.train.steps, report.threads));
  ASSIGN_OR_RETURN(report.training, Train(artifacts.config, artifacts.weights, sampler,
                                          recipe.train, LogProgress(log, recipe.train.steps)));

  RETURN_IF_ERROR(Evaluate(recipe, world, *tokenizer.tokenizer, seeds, artifacts, report));
  artifacts.stats_documents =
      MakeDocuments(mix, recipe.stats_documents, recipe.sentences_per_document, text_rng);
  report.total_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RETURN_IF_ERROR(WriteArtifacts(staging.path(), recipe, world, tokenizer, artifacts, report));
  RETURN_IF_ERROR(staging.Commit());
  Log(log, absl::StrFormat("wrote %s: %d known facts, %d counterfact cases, %.0f s", out_dir,
                           report.num_known, report.num_cases, report.total_seconds));
  return report;
}

}  // namespace romed::fact_model
