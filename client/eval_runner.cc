#include "client/eval_runner.h"

#include <algorithm>
#include <future>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/core/status_macros.h"

namespace romed::client {
namespace {

// The server refused this case's input; the run goes on without it.
bool IsCaseError(const absl::Status& status) {
  return status.code() == absl::StatusCode::kInvalidArgument ||
         status.code() == absl::StatusCode::kFailedPrecondition;
}

std::string DescribeError(const absl::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message());
}

double SecondsSince(absl::Time start) { return absl::ToDoubleSeconds(absl::Now() - start); }

bool MentionsAny(const std::string& prompt, const std::set<std::string>& subjects) {
  for (const std::string& subject : subjects) {
    if (prompt.find(subject) != std::string::npos) return true;
  }
  return false;
}

template <typename Get>
MetricSummary SummarizeCases(const std::vector<CaseResult>& cases, Get get) {
  std::vector<CaseMetrics> metrics;
  for (const CaseResult& c : cases) {
    if (!c.error.empty()) continue;
    if (const CaseMeasurement* m = get(c)) metrics.push_back(m->Metrics());
  }
  return Summarize(metrics);
}

}  // namespace

CaseMetrics CaseMeasurement::Metrics() const {
  CaseMetrics m;
  m.efficacy = ScoreTowardNew(rewrite);
  m.paraphrase = ScoreTowardNew(paraphrase);
  m.neighborhood = ScoreTowardTrue(neighborhood);
  if (!entropies.empty()) {
    double sum = 0;
    for (double e : entropies) sum += e;
    m.generation_entropy = sum / static_cast<double>(entropies.size());
  }
  return m;
}

RetentionCount Checkpoint::Retention() const {
  RetentionCount total = unedited_facts;
  total += neighborhood;
  return total;
}

MetricSummary EvalReport::Unedited() const {
  return SummarizeCases(cases, [](const CaseResult& c) { return &c.before; });
}

MetricSummary EvalReport::Edited() const {
  return SummarizeCases(cases, [](const CaseResult& c) { return c.after ? &*c.after : nullptr; });
}

MetricSummary EvalReport::Final() const {
  if (mode != EvalMode::kSequential) return Edited();
  return SummarizeCases(
      cases, [](const CaseResult& c) { return c.final_state ? &*c.final_state : nullptr; });
}

double EvalReport::MeanEditWallSeconds() const {
  double sum = 0;
  int64_t n = 0;
  for (const CaseResult& c : cases) {
    if (c.error.empty() && c.after) sum += c.edit_wall_s - c.covariance_s, ++n;
  }
  return n == 0 ? 0 : sum / static_cast<double>(n);
}

double EvalReport::MeanEditServerSeconds() const {
  double sum = 0;
  int64_t n = 0;
  for (const CaseResult& c : cases) {
    if (c.error.empty() && c.after) sum += c.edit_server_s - c.covariance_s, ++n;
  }
  return n == 0 ? 0 : sum / static_cast<double>(n);
}

double EvalReport::CasesPerMinute() const {
  if (edited_wall_s <= 0) return 0;
  return static_cast<double>(cases.size()) * 60.0 / edited_wall_s;
}

std::string EvalModeName(EvalMode mode) {
  return mode == EvalMode::kSequential ? "sequential" : "session-per-case";
}

// One Run(): the cases, their results and the RPCs that measure them.
class EvalRunner::Run_ {
 public:
  Run_(const RomedClient& client, const EvalOptions& options, const CallOptions& call,
       const ProgressCallback& on_progress, const std::vector<CounterFactCase>& cases)
      : client_(client), options_(options), call_(call), on_progress_(on_progress),
        cases_(cases) {}

  absl::StatusOr<EvalReport> Execute() {
    const absl::Time start = absl::Now();
    ASSIGN_OR_RETURN(report_.model, client_.GetModelInfo(call_));
    report_.mode = options_.mode;
    report_.options = options_;
    RETURN_IF_ERROR(MeasureUnedited());
    report_.unedited_wall_s = SecondsSince(start);
    const absl::Time edit_start = absl::Now();
    if (options_.mode == EvalMode::kSequential) {
      RETURN_IF_ERROR(RunSequential());
    } else {
      RETURN_IF_ERROR(RunSessionPerCase());
    }
    report_.edited_wall_s = SecondsSince(edit_start);
    report_.wall_s = SecondsSince(start);
    for (const CaseResult& c : report_.cases) report_.failed_cases += c.error.empty() ? 0 : 1;
    return std::move(report_);
  }

 private:
  void Progress(const char* phase, int64_t done, int64_t total) const {
    if (on_progress_) on_progress_(EvalProgress{phase, done, total});
  }

  // Score(prompt, [" new", " true"]) in `session` ("" = original model).
  absl::StatusOr<TargetComparison> Compare(const std::string& prompt, const CounterFactCase& c,
                                           const std::string& session) const {
    romed::v1::ScoreRequest request;
    request.set_prompt(prompt);
    request.add_continuations(SpacedTarget(c.target_new));
    request.add_continuations(SpacedTarget(c.target_true));
    request.set_session_id(session);
    ASSIGN_OR_RETURN(romed::v1::ScoreResponse reply, client_.Score(request, call_));
    if (reply.scores_size() != 2) {
      return absl::InternalError(absl::StrCat("Score answered ", reply.scores_size(),
                                              " scores for 2 continuations"));
    }
    return TargetComparison{reply.scores(0).mean_logprob(), reply.scores(1).mean_logprob()};
  }

  absl::Status ComparePrompts(const std::vector<std::string>& prompts, const CounterFactCase& c,
                              const std::string& session,
                              std::vector<TargetComparison>* out) const {
    for (const std::string& prompt : prompts) {
      ASSIGN_OR_RETURN(TargetComparison comparison, Compare(prompt, c, session));
      out->push_back(comparison);
    }
    return absl::OkStatus();
  }

  // Prompt tokens of `prompt` (cached: the unedited and edited runs share them).
  absl::StatusOr<int64_t> PromptTokens(const std::string& prompt) {
    if (auto it = prompt_tokens_.find(prompt); it != prompt_tokens_.end()) return it->second;
    ASSIGN_OR_RETURN(romed::v1::TokenizeResponse tokens, client_.Tokenize(prompt, call_));
    return prompt_tokens_[prompt] = tokens.ids_size();
  }

  // The case's generation requests: `gen_length` tokens with the prompt
  // (capped at the context and the server's limit), sampled as the reference.
  absl::StatusOr<std::vector<romed::v1::GenerateRequest>> GenerationRequests(
      const CounterFactCase& c, const std::string& session) {
    const int64_t length = std::min(options_.gen_length, report_.model.context_length());
    const int64_t limit = report_.model.limits().max_new_tokens();
    std::vector<romed::v1::GenerateRequest> requests;
    for (size_t i = 0; i < c.generation_prompts.size(); ++i) {
      const std::string& prompt = c.generation_prompts[i];
      ASSIGN_OR_RETURN(const int64_t prompt_tokens, PromptTokens(prompt));
      int64_t new_tokens = length - prompt_tokens;
      if (limit > 0) new_tokens = std::min(new_tokens, limit);
      if (new_tokens <= 0) continue;
      romed::v1::GenerateRequest& request = requests.emplace_back();
      request.set_prompt(prompt);
      request.set_max_new_tokens(new_tokens);
      request.mutable_sampling()->set_temperature(1.0f);
      request.mutable_sampling()->set_top_k(5);
      request.mutable_sampling()->set_seed(options_.seed +
                                           static_cast<uint64_t>(c.case_id) * 1009 + i);
      request.set_ignore_eos(true);
      request.set_session_id(session);
    }
    return requests;
  }

  // The case's generations, several at a time so that the server batches
  // them into one decode: waves of at most half the server's
  // max_concurrent_requests (the rest stays free for other clients), 8 at
  // most (the server's largest decode batch by default). Results keep the
  // prompts' order; seeded sampling makes them independent of the batching.
  absl::Status Generate(const CounterFactCase& c, const std::string& session,
                        CaseMeasurement* m) {
    ASSIGN_OR_RETURN(const std::vector<romed::v1::GenerateRequest> requests,
                     GenerationRequests(c, session));
    const int64_t limit = report_.model.limits().max_concurrent_requests();
    const size_t wave = static_cast<size_t>(std::clamp<int64_t>(limit / 2, 1, 8));
    for (size_t first = 0; first < requests.size(); first += wave) {
      const size_t end = std::min(requests.size(), first + wave);
      std::vector<std::future<absl::StatusOr<romed::v1::GenerateResponse>>> replies;
      for (size_t i = first; i < end; ++i) {
        replies.push_back(std::async(std::launch::async, [this, &requests, i] {
          return client_.Generate(requests[i], call_);
        }));
      }
      // Wait for the whole wave before returning any error.
      std::vector<absl::StatusOr<romed::v1::GenerateResponse>> done;
      for (auto& reply : replies) done.push_back(reply.get());
      for (size_t i = first; i < end; ++i) {
        const absl::StatusOr<romed::v1::GenerateResponse>& reply = done[i - first];
        if (!reply.ok()) return reply.status();
        m->generations.push_back(CleanGeneration(requests[i].prompt() + reply->text()));
        m->entropies.push_back(GenerationEntropy(m->generations.back()));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<CaseMeasurement> Measure(const CounterFactCase& c, const std::string& session,
                                          bool with_generations) {
    CaseMeasurement m;
    RETURN_IF_ERROR(ComparePrompts({c.RewritePrompt()}, c, session, &m.rewrite));
    RETURN_IF_ERROR(ComparePrompts(c.paraphrase_prompts, c, session, &m.paraphrase));
    RETURN_IF_ERROR(ComparePrompts(c.neighborhood_prompts, c, session, &m.neighborhood));
    if (with_generations && options_.gen_length > 0) RETURN_IF_ERROR(Generate(c, session, &m));
    return m;
  }

  // Records a refused case and goes on; ends the run on any other error.
  absl::Status Absorb(const absl::Status& status, CaseResult* result) {
    if (status.ok()) return status;
    if (!IsCaseError(status)) return status;
    result->error = DescribeError(status);
    return absl::OkStatus();
  }

  absl::Status MeasureUnedited() {
    const int64_t total = static_cast<int64_t>(cases_.size());
    for (size_t i = 0; i < cases_.size(); ++i) {
      const CounterFactCase& c = cases_[i];
      CaseResult result;
      result.index = i;
      result.case_id = c.case_id;
      result.subject = c.subject;
      result.target_new = c.target_new;
      result.target_true = c.target_true;
      absl::StatusOr<CaseMeasurement> m = Measure(c, "", true);
      if (m.ok()) result.before = *std::move(m);
      RETURN_IF_ERROR(Absorb(m.status(), &result));
      report_.cases.push_back(std::move(result));
      Progress("unedited", static_cast<int64_t>(i) + 1, total);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> CreateSession(const std::string& name) const {
    romed::v1::CreateSessionRequest request;
    request.set_name(name);
    (*request.mutable_labels())["created_by"] = "romectl-eval";
    ASSIGN_OR_RETURN(romed::v1::Session session, client_.CreateSession(request, call_));
    return session.id();
  }

  absl::Status Edit(const std::string& session, const CounterFactCase& c, CaseResult* result) {
    romed::v1::EditRequest request;
    request.set_session_id(session);
    romed::v1::Rewrite* rewrite = request.add_rewrites();
    rewrite->set_prompt(c.prompt);
    rewrite->set_subject(c.subject);
    rewrite->set_target_new(c.target_new);
    rewrite->set_target_true(c.target_true);
    *request.mutable_hparams() = options_.hparams;
    const absl::Time start = absl::Now();
    ASSIGN_OR_RETURN(romed::v1::EditResponse reply, client_.Edit(request, call_));
    result->edit_wall_s = SecondsSince(start);
    result->edit_server_s = reply.edit().total_time_s();
    for (const romed::v1::RewriteResult& rewrite : reply.edit().rewrites()) {
      result->layer = rewrite.layer();
      result->covariance_s += rewrite.covariance_time_s();
    }
    if (auto it = reply.edit().hyperparameters().find("site_source");
        it != reply.edit().hyperparameters().end()) {
      result->site_source = it->second;
    }
    return absl::OkStatus();
  }

  absl::Status EditAndMeasure(const std::string& session, const CounterFactCase& c,
                              CaseResult* result) {
    RETURN_IF_ERROR(Edit(session, c, result));
    ASSIGN_OR_RETURN(CaseMeasurement m, Measure(c, session, true));
    result->after = std::move(m);
    return absl::OkStatus();
  }

  absl::Status RunSessionPerCase() {
    const int64_t total = static_cast<int64_t>(cases_.size());
    for (size_t i = 0; i < cases_.size(); ++i) {
      CaseResult& result = report_.cases[i];
      if (result.error.empty()) {
        ASSIGN_OR_RETURN(const std::string session,
                         CreateSession(absl::StrCat("eval-case-", cases_[i].case_id)));
        const absl::Status edited = EditAndMeasure(session, cases_[i], &result);
        const absl::Status deleted = client_.DeleteSession(session, call_);
        RETURN_IF_ERROR(Absorb(edited, &result));
        RETURN_IF_ERROR(deleted);
      }
      Progress("editing", static_cast<int64_t>(i) + 1, total);
    }
    return absl::OkStatus();
  }

  // Not-yet-edited cases' own prompts and all neighbourhood prompts whose
  // subject is not edited yet: the true object still preferred?
  absl::Status MeasureRetention(size_t edited_upto, const std::string& session,
                                Checkpoint* checkpoint) {
    for (size_t j = 0; j < cases_.size(); ++j) {
      const CaseResult& result = report_.cases[j];
      if (!result.error.empty()) continue;
      const CounterFactCase& c = cases_[j];
      if (j >= edited_upto && edited_subjects_.count(c.subject) == 0) {
        std::vector<std::string> prompts = {c.RewritePrompt()};
        std::vector<TargetComparison> before = result.before.rewrite;
        prompts.insert(prompts.end(), c.paraphrase_prompts.begin(), c.paraphrase_prompts.end());
        before.insert(before.end(), result.before.paraphrase.begin(),
                      result.before.paraphrase.end());
        RETURN_IF_ERROR(CountKept(prompts, before, c, session, &checkpoint->unedited_facts));
      }
      RETURN_IF_ERROR(CountKept(c.neighborhood_prompts, result.before.neighborhood, c, session,
                                &checkpoint->neighborhood));
    }
    return absl::OkStatus();
  }

  absl::Status CountKept(const std::vector<std::string>& prompts,
                         const std::vector<TargetComparison>& before, const CounterFactCase& c,
                         const std::string& session, RetentionCount* count) const {
    for (size_t i = 0; i < prompts.size() && i < before.size(); ++i) {
      if (!before[i].PrefersTrue() || MentionsAny(prompts[i], edited_subjects_)) continue;
      ++count->held_before;
      ASSIGN_OR_RETURN(TargetComparison now, Compare(prompts[i], c, session));
      count->kept += now.PrefersTrue() ? 1 : 0;
    }
    return absl::OkStatus();
  }

  absl::Status MeasureCheckpoint(size_t edited_upto, const std::string& session) {
    Checkpoint checkpoint;
    checkpoint.edits = static_cast<int64_t>(edits_done_);
    std::vector<CaseMetrics> metrics;
    for (size_t j = 0; j < edited_upto; ++j) {
      CaseResult& result = report_.cases[j];
      if (!result.error.empty()) continue;
      ASSIGN_OR_RETURN(CaseMeasurement m, Measure(cases_[j], session, true));
      metrics.push_back(m.Metrics());
      result.final_state = std::move(m);
    }
    checkpoint.edited = Summarize(metrics);
    RETURN_IF_ERROR(MeasureRetention(edited_upto, session, &checkpoint));
    checkpoint.elapsed_s = SecondsSince(start_);
    report_.checkpoints.push_back(std::move(checkpoint));
    return absl::OkStatus();
  }

  absl::Status EditInSequence(const std::string& session, size_t i) {
    CaseResult& result = report_.cases[i];
    if (!result.error.empty()) return absl::OkStatus();
    const absl::Status edited = Edit(session, cases_[i], &result);
    RETURN_IF_ERROR(Absorb(edited, &result));
    if (!edited.ok()) return absl::OkStatus();
    edited_subjects_.insert(cases_[i].subject);
    ++edits_done_;
    absl::StatusOr<CaseMeasurement> m = Measure(cases_[i], session, false);
    if (m.ok()) result.after = *std::move(m);
    return Absorb(m.status(), &result);
  }

  absl::Status RunSequentialIn(const std::string& session) {
    const int64_t total = static_cast<int64_t>(cases_.size());
    for (size_t i = 0; i < cases_.size(); ++i) {
      RETURN_IF_ERROR(EditInSequence(session, i));
      Progress("editing", static_cast<int64_t>(i) + 1, total);
      const bool last = i + 1 == cases_.size();
      if (last || (i + 1) % static_cast<size_t>(options_.every) == 0) {
        Progress("checkpoint", static_cast<int64_t>(i) + 1, total);
        RETURN_IF_ERROR(MeasureCheckpoint(i + 1, session));
      }
    }
    return absl::OkStatus();
  }

  absl::Status RunSequential() {
    start_ = absl::Now();
    ASSIGN_OR_RETURN(const std::string session, CreateSession("eval-sequential"));
    const absl::Status run = RunSequentialIn(session);
    const absl::Status deleted = client_.DeleteSession(session, call_);
    RETURN_IF_ERROR(run);
    return deleted;
  }

  const RomedClient& client_;
  const EvalOptions& options_;
  const CallOptions& call_;
  const ProgressCallback& on_progress_;
  const std::vector<CounterFactCase>& cases_;
  EvalReport report_;
  std::map<std::string, int64_t> prompt_tokens_;
  std::set<std::string> edited_subjects_;
  size_t edits_done_ = 0;  // successful edits so far
  absl::Time start_ = absl::Now();
};

EvalRunner::EvalRunner(const RomedClient& client, EvalOptions options, CallOptions call)
    : client_(client), options_(std::move(options)), call_(call) {}

absl::StatusOr<EvalReport> EvalRunner::Run(const std::vector<CounterFactCase>& cases,
                                           const ProgressCallback& on_progress) const {
  if (options_.every < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--every must be >= 1, got ", options_.every));
  }
  if (options_.gen_length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--gen_length must be >= 0, got ", options_.gen_length));
  }
  Run_ run(client_, options_, call_, on_progress, cases);
  return run.Execute();
}

}  // namespace romed::client
