// CounterFact evaluation driven over romed's RPCs (CreateSession, Edit,
// Score, Tokenize, Generate, DeleteSession): the paper's protocol as a client.
//
//   EvalOptions options;                       // session per case, GE on
//   EvalRunner runner(client, options, call);
//   ASSIGN_OR_RETURN(EvalReport report, runner.Run(dataset.cases, on_progress));
//
// Protocol (ROME.md section 6):
//  1. Unedited: every case's prompts scored (and its generation prompts
//     generated) on the original model (no session).
//  2a. Session per case (the paper's): for each case a fresh session, one
//      Edit, the same measurements in that session, then DeleteSession.
//  2b. Sequential: one session; the cases are edited in order, each measured
//      right after its edit; every `every` edits (and after the last) a
//      checkpoint measures all cases edited so far and the retention of the
//      other facts (below), then the session is deleted.
// Retention at a checkpoint: of the prompts whose true object the unedited
// model preferred (P(true) > P(new)) and whose subject is not edited yet,
// the share still preferring it: (a) the rewrite and paraphrase prompts of
// the cases not yet edited, (b) the neighbourhood prompts of all cases.
//
// Generations for GE are sampled as the reference does (top-k 5,
// temperature 1), `gen_length` tokens including the prompt (at most the
// model's context), seeded per (case, prompt) so the unedited and edited
// texts start from the same random stream; the end-of-text token does not
// stop them.
//
// Errors: a case the server refuses (INVALID_ARGUMENT, FAILED_PRECONDITION,
// e.g. a subject not in its prompt or a prompt past the limits) is recorded
// in its CaseResult and the run goes on; any other error (UNAVAILABLE,
// RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, ...) ends the run with that status,
// after deleting the sessions it created.
//
// Thread-compatible: one Run at a time per runner.
#ifndef ROMED_CLIENT_EVAL_RUNNER_H_
#define ROMED_CLIENT_EVAL_RUNNER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/counterfact_dataset.h"
#include "client/eval_metrics.h"
#include "client/romed_client.h"
#include "romed/v1/model_editor.pb.h"

namespace romed::client {

enum class EvalMode { kSessionPerCase, kSequential };

struct EvalOptions {
  EvalMode mode = EvalMode::kSessionPerCase;
  // Sequential: a checkpoint every this many edits (and after the last). >= 1.
  int64_t every = 10;
  // Tokens per generated text, prompt included (the reference's max_out_len);
  // capped at the model's context. 0 = no generations, no GE.
  int64_t gen_length = 100;
  // Seeds the generations (each (case, prompt) gets seed + a fixed offset).
  uint64_t seed = 0;
  // Sent with every Edit; unset fields = the server's defaults and site.
  romed::v1::RomeHyperparameters hparams;
};

// One case's measurements: per-prompt target comparisons and generations.
struct CaseMeasurement {
  std::vector<TargetComparison> rewrite;       // the rewrite prompt
  std::vector<TargetComparison> paraphrase;    // one per paraphrase prompt
  std::vector<TargetComparison> neighborhood;  // one per neighbourhood prompt
  std::vector<std::string> generations;        // CleanGeneration(prompt + generated text)
  std::vector<double> entropies;               // GenerationEntropy of each

  CaseMetrics Metrics() const;
};

struct CaseResult {
  size_t index = 0;  // position among the evaluated cases
  int64_t case_id = 0;
  std::string subject, target_new, target_true;
  CaseMeasurement before;  // unedited model
  // Right after the case's edit (session per case: in its own session).
  std::optional<CaseMeasurement> after;
  // Sequential: at the last checkpoint (after every edit of the run).
  std::optional<CaseMeasurement> final_state;
  double edit_wall_s = 0;    // Edit RPC, as the client saw it
  double edit_server_s = 0;  // EditRecord.total_time_s
  double covariance_s = 0;   // of which computing C on first use at the layer
  int32_t layer = -1;        // the layer the server edited
  std::string site_source;   // where the server took the site from
  std::string error;         // non-empty: the server refused this case ("CODE: message")
};

// Sequential mode: the state after `edits` edits.
struct Checkpoint {
  int64_t edits = 0;
  MetricSummary edited;             // over the cases edited so far, measured now
  RetentionCount unedited_facts;    // (a) in the header comment
  RetentionCount neighborhood;      // (b)
  RetentionCount Retention() const;  // (a) + (b)
  double elapsed_s = 0;             // since the run began
};

struct EvalReport {
  EvalMode mode = EvalMode::kSessionPerCase;
  EvalOptions options;
  romed::v1::ModelInfo model;
  std::vector<CaseResult> cases;
  std::vector<Checkpoint> checkpoints;  // sequential only
  int64_t failed_cases = 0;             // cases with an error
  double wall_s = 0;                    // the whole run
  double unedited_wall_s = 0;           // step 1
  double edited_wall_s = 0;             // step 2 (edits and their measurements)

  MetricSummary Unedited() const;  // step 1 over cases without error
  MetricSummary Edited() const;    // `after` over cases without error
  MetricSummary Final() const;     // sequential: `final_state`; else Edited()
  // Mean time per edit (client wall, server total), excluding computing C
  // (done once per layer, then cached), as the paper's timings do.
  double MeanEditWallSeconds() const;
  double MeanEditServerSeconds() const;
  // Cases finished per minute of step 2 (edit + measurements); 0 if none.
  double CasesPerMinute() const;
};

// What the runner is doing, for a progress bar.
struct EvalProgress {
  std::string phase;  // "unedited", "editing", "checkpoint"
  int64_t done = 0;
  int64_t total = 0;
};

class EvalRunner {
 public:
  using ProgressCallback = std::function<void(const EvalProgress&)>;

  // `client` must outlive the runner. `call` applies to every RPC.
  EvalRunner(const RomedClient& client, EvalOptions options, CallOptions call = {});

  // Evaluates `cases` (see the header comment). `on_progress` may be null.
  // INVALID_ARGUMENT for every < 1 or gen_length < 0; otherwise errors as
  // the header comment says.
  absl::StatusOr<EvalReport> Run(const std::vector<CounterFactCase>& cases,
                                 const ProgressCallback& on_progress) const;

 private:
  class Run_;  // one run's state

  const RomedClient& client_;
  EvalOptions options_;
  CallOptions call_;
};

// "session-per-case" or "sequential".
std::string EvalModeName(EvalMode mode);

}  // namespace romed::client

#endif  // ROMED_CLIENT_EVAL_RUNNER_H_
