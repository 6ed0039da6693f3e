#include "tools/fact_model/fact_model.h"

#include <chrono>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>
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

// Measures `model` on the world: accuracy and the CounterFact cases' scores.
absl::Status Measure(const FactModelRecipe& recipe, const World& world,
                     const Gpt2Tokenizer& tokenizer, const Gpt2Model& model,
                     std::vector<CounterFactCase>& cases, FactModelReport& report) {
  ASSIGN_OR_RETURN(FactEvaluator evaluator, FactEvaluator::Create(world, tokenizer, model));
  ASSIGN_OR_RETURN(report.facts, evaluator.EvaluateFacts());
  cases = BuildCounterFact(world, recipe.counterfact, Seeds(recipe.seed).counterfact);
  ASSIGN_OR_RETURN(report.counterfact, evaluator.EvaluateCounterFact(cases));
  report.num_cases = static_cast<int64_t>(cases.size());
  return absl::OkStatus();
}

absl::Status Evaluate(const FactModelRecipe& recipe, const World& world,
                      const Gpt2Tokenizer& tokenizer, Artifacts& artifacts,
                      FactModelReport& report) {
  const Gpt2Model model(artifacts.config, artifacts.weights);
  RETURN_IF_ERROR(Measure(recipe, world, tokenizer, model, artifacts.cases, report));
  artifacts.known = SelectKnownFacts(world, report.facts, tokenizer);
  report.num_known = static_cast<int64_t>(artifacts.known.size());
  return absl::OkStatus();
}

// fact_model.json: what made the model and what it measured.
std::string Manifest(const FactModelRecipe& recipe, const FactModelReport& report) {
  nlohmann::ordered_json json;
  json["recipe"] = recipe.name;
  json["seed"] = recipe.seed;
  json["steps"] = report.training.steps;
  json["vocab_size"] = report.vocab_size;
  json["parameters"] = report.num_parameters;
  json["threads"] = report.threads;
  json["first_loss"] = report.training.first_loss;
  json["final_loss"] = report.training.final_loss;
  json["training_seconds"] = report.training.seconds;
  json["training_cpu_seconds"] = report.training.cpu_seconds;
  json["total_seconds"] = report.total_seconds;
  json["total_cpu_seconds"] = report.total_cpu_seconds;
  json["trained_accuracy"] = report.facts.trained_accuracy;
  json["held_out_accuracy"] = report.facts.held_out_accuracy;
  json["known_facts"] = report.num_known;
  json["counterfact_cases"] = report.num_cases;
  json["efficacy"] = report.counterfact.efficacy;
  json["paraphrase"] = report.counterfact.paraphrase;
  json["neighborhood"] = report.counterfact.neighborhood;
  return json.dump(2) + "\n";
}

double ProcessCpuSeconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

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
  RETURN_IF_ERROR(WriteTextFile(dir + "/fact_model.json", Manifest(recipe, report)));
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
  const double cpu_start = ProcessCpuSeconds();
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
                                      recipe.corpus, seeds.rows));
  Log(log, absl::StrFormat("training %d parameters for %d steps on %d threads",
                           report.num_parameters, recipe.train.steps, report.threads));
  ASSIGN_OR_RETURN(report.training, Train(artifacts.config, artifacts.weights, sampler,
                                          recipe.train, LogProgress(log, recipe.train.steps)));

  RETURN_IF_ERROR(Evaluate(recipe, world, *tokenizer.tokenizer, artifacts, report));
  artifacts.stats_documents =
      MakeDocuments(mix, recipe.stats_documents, recipe.sentences_per_document, text_rng);
  report.total_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.total_cpu_seconds = ProcessCpuSeconds() - cpu_start;
  RETURN_IF_ERROR(WriteArtifacts(staging.path(), recipe, world, tokenizer, artifacts, report));
  RETURN_IF_ERROR(staging.Commit());
  Log(log, absl::StrFormat("wrote %s: %d known facts, %d counterfact cases, %.0f s (%.0f CPU-s)",
                           out_dir, report.num_known, report.num_cases, report.total_seconds,
                           report.total_cpu_seconds));
  return report;
}

absl::StatusOr<FactModelRecipe> RecipeOfModelDir(const std::string& dir) {
  const std::string path = dir + "/fact_model.json";
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json json =
      nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("recipe") || !json["recipe"].is_string() ||
      !json.contains("seed") || !json["seed"].is_number_unsigned()) {
    return absl::DataLossError(absl::StrCat(path, ": expected {\"recipe\": ..., \"seed\": ...}"));
  }
  const std::string name = json["recipe"].get<std::string>();
  const uint64_t seed = json["seed"].get<uint64_t>();
  if (name == "full") return FullRecipe(seed);
  if (name == "quick") return QuickRecipe(seed);
  return absl::DataLossError(absl::StrCat(path, ": unknown recipe '", name, "'"));
}

absl::StatusOr<FactModelReport> EvaluateFactModel(const FactModelRecipe& recipe,
                                                  const std::string& dir) {
  ASSIGN_OR_RETURN(const Checkpoint checkpoint, LoadCheckpoint(dir));
  ASSIGN_OR_RETURN(const World world, BuildWorld(recipe));
  const Gpt2Model model(checkpoint.config, checkpoint.weights);
  FactModelReport report;
  report.vocab_size = checkpoint.config.vocab_size;
  report.num_parameters = checkpoint.weights.NumParameters();
  std::vector<CounterFactCase> cases;
  RETURN_IF_ERROR(Measure(recipe, world, *checkpoint.tokenizer, model, cases, report));
  return report;
}

}  // namespace romed::fact_model
