#include "client/romectl_eval_args.h"

#include <cstdint>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "client/romectl_session_args.h"
#include "server/core/status_macros.h"

ABSL_FLAG(std::string, dataset, "",
          "eval: a CounterFact-format JSON file (an array of records with requested_rewrite, "
          "paraphrase_prompts, neighborhood_prompts, generation_prompts)");
ABSL_FLAG(bool, session_per_case, false,
          "eval: a fresh session per case, deleted after it (the paper's protocol; the default)");
ABSL_FLAG(bool, sequential, false,
          "eval: stack every edit in one session and report the scores every --every edits");
ABSL_FLAG(int64_t, every, 10, "eval --sequential: a checkpoint every N edits (and after the last)");
ABSL_FLAG(int64_t, gen_length, 100,
          "eval: tokens per generated text for GE, prompt included (capped at the model's "
          "context); 0 = no generations");
ABSL_FLAG(std::string, csv, "",
          "eval: write one CSV row per case here (--sequential: also <stem>.checkpoints.csv)");

ABSL_DECLARE_FLAG(int64_t, n);
ABSL_DECLARE_FLAG(uint64_t, seed);
ABSL_DECLARE_FLAG(std::string, svg);
ABSL_DECLARE_FLAG(bool, progress);

namespace romed::client {

const std::vector<FlagSpec>& EvalFlagSpecs() {
  static const auto* kFlags = new std::vector<FlagSpec>{
      {"dataset", "FILE", false, {Command::kEval}},
      {"session_per_case", "", false, {Command::kEval}},
      {"sequential", "", false, {Command::kEval}},
      {"every", "N", false, {Command::kEval}},
      {"gen_length", "TOKENS", false, {Command::kEval}},
      {"csv", "PATH", false, {Command::kEval}},
      // Also listed by other commands; eval reads them too.
      {"n", "N", false, {Command::kEval}},
      {"seed", "N", false, {Command::kEval}},
      {"svg", "PATH", false, {Command::kEval}},
      {"progress", "", false, {Command::kEval}},
      {"layer", "L", false, {Command::kEval}},
      {"fact_token", "subject_last|subject_first|last", false, {Command::kEval}},
      {"v_num_grad_steps", "N", false, {Command::kEval}},
      {"v_lr", "X", false, {Command::kEval}},
      {"v_weight_decay", "X", false, {Command::kEval}},
      {"kl_factor", "X", false, {Command::kEval}},
      {"clamp_norm_factor", "X", false, {Command::kEval}},
      {"original_key_form", "", false, {Command::kEval}},
      {"identity_covariance", "", false, {Command::kEval}},
  };
  return *kFlags;
}

absl::StatusOr<EvalInvocation> BuildEvalInvocation(const std::set<absl::string_view>& seen,
                                                   const std::string& json_path) {
  EvalInvocation inv;
  inv.dataset = absl::GetFlag(FLAGS_dataset);
  if (inv.dataset.empty()) {
    return absl::InvalidArgumentError("eval needs --dataset=FILE (CounterFact-format JSON)");
  }
  const bool sequential = absl::GetFlag(FLAGS_sequential);
  if (sequential && absl::GetFlag(FLAGS_session_per_case)) {
    return absl::InvalidArgumentError("give --session_per_case or --sequential, not both");
  }
  inv.options.mode = sequential ? EvalMode::kSequential : EvalMode::kSessionPerCase;
  for (absl::string_view sequential_only : {"every", "svg"}) {
    if (seen.count(sequential_only) && !sequential) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", sequential_only, " is for --sequential runs"));
    }
  }
  inv.options.every = absl::GetFlag(FLAGS_every);
  if (inv.options.every < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--every must be >= 1, got ", inv.options.every));
  }
  inv.options.gen_length = absl::GetFlag(FLAGS_gen_length);
  if (inv.options.gen_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--gen_length must be >= 0, got ", inv.options.gen_length));
  }
  if (seen.count("n")) {
    inv.n = absl::GetFlag(FLAGS_n);
    if (inv.n < 1) return absl::InvalidArgumentError(absl::StrCat("--n must be >= 1, got ", inv.n));
  }
  inv.options.seed = absl::GetFlag(FLAGS_seed);
  ASSIGN_OR_RETURN(inv.options.hparams, BuildRomeHyperparameters(seen));
  inv.json_path = json_path;
  inv.csv_path = absl::GetFlag(FLAGS_csv);
  inv.svg_path = absl::GetFlag(FLAGS_svg);
  inv.progress = absl::GetFlag(FLAGS_progress);
  return inv;
}

}  // namespace romed::client
