// romed-fact-model: makes romed's default model, a small GPT-2 that knows the
// facts of a synthetic world, with its evaluation sets (see fact_model.h).
//
//   romed-fact-model --out=models/fact [--seed=1] [--quick] [--force] [--threads=2]
//                    [--steps=N]
//
// Timing: the full recipe costs ~0.63 CPU-seconds per step (measured, 2
// threads). On a machine shared with other work, OMP_WAIT_POLICY=passive
// stops OpenMP threads spinning at barriers, which otherwise multiplies the
// wall time several-fold.
//
// Exit status 0 on success; 1 with a message on stderr otherwise (nothing is
// left in --out).
#include <algorithm>
#include <cstdint>
#include <iostream>
#include <string>

#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "tools/fact_model/fact_model.h"

ABSL_FLAG(std::string, out, "", "directory to write the model into (must not exist or be empty)");
ABSL_FLAG(int64_t, seed, 1, "seed of the world, tokenizer, corpus and weights (>= 0)");
ABSL_FLAG(bool, quick, false, "small, fast model for unit tests (quality not guaranteed)");
ABSL_FLAG(bool, force, false, "replace a non-empty --out");
ABSL_FLAG(int64_t, steps, 0, "training steps; 0 = the recipe's (for timing runs)");
ABSL_FLAG(int32_t, threads, 2, "intra-op threads for training (results are reproducible per count)");

namespace {

int Fail(const std::string& message) {
  std::cerr << "romed-fact-model: " << message << std::endl;
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "romed-fact-model --out=DIR [--seed=N] [--quick] [--force] [--threads=N]");
  absl::ParseCommandLine(argc, argv);
  const std::string out = absl::GetFlag(FLAGS_out);
  const int64_t seed = absl::GetFlag(FLAGS_seed);
  const int threads = absl::GetFlag(FLAGS_threads);
  if (out.empty()) return Fail("--out is required");
  if (seed < 0) return Fail(absl::StrCat("--seed must be >= 0, got ", seed));
  if (threads < 1) return Fail(absl::StrCat("--threads must be >= 1, got ", threads));

  torch::set_num_threads(threads);
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
  return 0;
}
