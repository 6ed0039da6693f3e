// romed-fact-model: makes romed's default model, a small GPT-2 that knows the
// facts of a synthetic world, with its evaluation sets (see fact_model.h).
//
//   romed-fact-model --out=models/fact [--seed=1] [--quick] [--force] [--threads=2]
//                    [--steps=N]
//   romed-fact-model --evaluate=models/fact     measures a made model again
//
// OpenMP waiting: unless OMP_WAIT_POLICY is already set, the tool
// re-executes itself with OMP_WAIT_POLICY=passive. libgomp reads the
// variable once, when it is loaded (before main), so setenv() alone would be
// too late; spinning threads at every barrier made training several times
// slower on a machine shared with other work.
//
// Exit status 0 on success; 1 with a message on stderr otherwise (nothing is
// left in --out).
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <string>

#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tools/fact_model/fact_model.h"

ABSL_FLAG(std::string, out, "", "directory to write the model into (must not exist or be empty)");
ABSL_FLAG(int64_t, seed, 1, "seed of the world, tokenizer, corpus and weights (>= 0)");
ABSL_FLAG(bool, quick, false, "small, fast model for unit tests (quality not guaranteed)");
ABSL_FLAG(bool, force, false, "replace a non-empty --out");
ABSL_FLAG(int64_t, steps, 0, "training steps; 0 = the recipe's (for timing runs)");
ABSL_FLAG(int32_t, threads, 2, "intra-op threads for training (results are reproducible per count)");
ABSL_FLAG(std::string, evaluate, "",
          "instead of making a model, measure the one in this directory (its fact_model.json "
          "names the recipe) and print the figures");

namespace {

int Fail(const std::string& message) {
  std::cerr << "romed-fact-model: " << message << std::endl;
  return 1;
}

// Re-executes this program with OMP_WAIT_POLICY=passive unless it is set
// (see the file comment); returns only if that is not needed or fails.
void EnsurePassiveOpenMpWaiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);
  std::cerr << "romed-fact-model: re-exec failed; OpenMP threads keep spinning" << std::endl;
}

std::string Percent(double share) { return absl::StrFormat("%.1f%%", 100.0 * share); }

void PrintAccuracy(const romed::fact_model::FactModelReport& report) {
  const auto& f = report.facts;
  std::cout << "trained phrasings " << Percent(f.trained_accuracy) << ", held-out "
            << Percent(f.held_out_accuracy) << " (with <|endoftext|> first "
            << Percent(f.trained_accuracy_with_start) << " / "
            << Percent(f.held_out_accuracy_with_start) << ")\nby phrasing, trained:";
  for (double a : f.trained_accuracy_by_phrasing) std::cout << " " << Percent(a);
  std::cout << "; held out:";
  for (double a : f.held_out_accuracy_by_phrasing) std::cout << " " << Percent(a);
  std::cout << "\ncounterfact (" << report.num_cases << " cases) before edits: efficacy "
            << Percent(report.counterfact.efficacy) << ", paraphrase "
            << Percent(report.counterfact.paraphrase) << ", neighbourhood "
            << Percent(report.counterfact.neighborhood) << "\nvocabulary " << report.vocab_size
            << ", parameters " << report.num_parameters << std::endl;
}

int Evaluate(const std::string& dir) {
  auto recipe = romed::fact_model::RecipeOfModelDir(dir);
  if (!recipe.ok()) return Fail(recipe.status().ToString());
  auto report = romed::fact_model::EvaluateFactModel(*recipe, dir);
  if (!report.ok()) return Fail(report.status().ToString());
  PrintAccuracy(*report);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  EnsurePassiveOpenMpWaiting(argv);
  absl::SetProgramUsageMessage(
      "romed-fact-model --out=DIR [--seed=N] [--quick] [--force] [--threads=N] [--steps=N]\n"
      "       romed-fact-model --evaluate=DIR");
  absl::ParseCommandLine(argc, argv);
  const std::string out = absl::GetFlag(FLAGS_out);
  const int64_t seed = absl::GetFlag(FLAGS_seed);
  const int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 1) return Fail(absl::StrCat("--threads must be >= 1, got ", threads));
  torch::set_num_threads(threads);
  if (const std::string dir = absl::GetFlag(FLAGS_evaluate); !dir.empty()) return Evaluate(dir);
  if (out.empty()) return Fail("--out is required");
  if (seed < 0) return Fail(absl::StrCat("--seed must be >= 0, got ", seed));
  if (absl::GetFlag(FLAGS_steps) < 0) {
    return Fail(absl::StrCat("--steps must be >= 0, got ", absl::GetFlag(FLAGS_steps)));
  }

  torch::manual_seed(static_cast<uint64_t>(seed));
  using romed::fact_model::FactModelRecipe;
  FactModelRecipe recipe = absl::GetFlag(FLAGS_quick)
                                     ? romed::fact_model::QuickRecipe(seed)
                                     : romed::fact_model::FullRecipe(seed);
  if (const int64_t steps = absl::GetFlag(FLAGS_steps); steps > 0) {
    recipe.train.steps = steps;
    recipe.train.warmup_steps = std::min(recipe.train.warmup_steps, steps - 1);
  }
  romed::fact_model::MakeOptions options;
  options.force = absl::GetFlag(FLAGS_force);
  auto report = romed::fact_model::MakeFactModel(recipe, out, options, &std::cerr);
  if (!report.ok()) return Fail(report.status().ToString());
  PrintAccuracy(*report);
  return 0;
}
