// Engine::Trace and Engine::TraceFacts (engine.h): validation with messages
// that name the request's fields, the model's default noise scale, the
// heavy-job slot, and aggregation over facts.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/engine/engine.h"
#include "server/engine/request_validation.h"
#include "server/metrics/metrics.h"
#include "server/trace/causal_trace.h"
#include "server/trace/subject_locator.h"

namespace romed {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kDefaultSamples = 10;
constexpr double kDefaultNoiseMultiplier = 3.0;

std::string KnownFactsPath(const std::string& model_dir) {
  return (std::filesystem::path(model_dir) / "known_facts.json").string();
}

// Facts of a known_1000-format file: [{"prompt", "subject", "prediction" or
// "attribute"}, ...]. NotFoundError if the file is missing, DataLossError if
// it is not that format.
absl::StatusOr<std::vector<TraceFact>> ReadKnownFacts(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream text;
  text << in.rdbuf();
  std::vector<TraceFact> facts;
  try {
    const nlohmann::json json = nlohmann::json::parse(text.str());
    if (!json.is_array()) return absl::DataLossError(absl::StrCat(path, ": not a JSON array"));
    for (const nlohmann::json& entry : json) {
      TraceFact fact;
      fact.prompt = entry.at("prompt").get<std::string>();
      fact.subject = entry.at("subject").get<std::string>();
      if (entry.contains("prediction")) {
        fact.answer = entry["prediction"].get<std::string>();
      } else if (entry.contains("attribute")) {
        fact.answer = " " + entry["attribute"].get<std::string>();
      }
      facts.push_back(std::move(fact));
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat(
        path, ": not a known-facts file (a JSON array of {prompt, subject, prediction}): ",
        e.what()));
  }
  return facts;
}

absl::Status Invalid(const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("trace: ", message));
}

// The range checks of the numeric options, with the valid range and the
// default in each message.
absl::Status ValidateTraceNumbers(const TextTraceRequest& request, int64_t num_layers) {
  if (request.window.has_value() && (*request.window < 1 || *request.window > num_layers)) {
    return Invalid(absl::StrCat("window=", *request.window, " is outside [1, ", num_layers,
                                "] (the model has ", num_layers,
                                " layers); leave it unset for the default ",
                                DefaultTraceWindow(num_layers)));
  }
  if (request.samples.has_value() &&
      (*request.samples < 1 || *request.samples > kMaxTraceSamples)) {
    return Invalid(absl::StrCat("samples=", *request.samples, " is outside [1, ",
                                kMaxTraceSamples, "]; leave it unset for the default ",
                                kDefaultSamples));
  }
  if (request.noise_sigma.has_value() && request.noise_multiplier.has_value()) {
    return Invalid("give noise_sigma or noise_multiplier, not both");
  }
  for (const auto& [name, value] : {std::make_pair("noise_sigma", request.noise_sigma),
                                    std::make_pair("noise_multiplier", request.noise_multiplier)}) {
    if (value.has_value() && !(std::isfinite(*value) && *value >= 0)) {
      return Invalid(absl::StrCat(name, "=", *value,
                                  " must be a finite number >= 0 (the paper uses "
                                  "noise_multiplier=3, the default)"));
    }
  }
  std::set<TraceKind> seen;
  for (TraceKind kind : request.kinds) {
    if (!seen.insert(kind).second) {
      return Invalid(absl::StrCat("kind \"", std::string(TraceKindName(kind)),
                                  "\" is listed twice"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::pair<double, NoiseBasis>> Engine::TraceEmbeddingStd() {
  const std::string facts_path = KnownFactsPath(model_dir_);
  if (!std::filesystem::exists(facts_path)) {
    ASSIGN_OR_RETURN(double std, trace_embedding_std_.GetOrCompute(
                                     absl::StrCat("vocabulary/", checksum_),
                                     [&] { return VocabularyEmbeddingStd(*model_); }));
    return std::make_pair(std, NoiseBasis::kVocabularyEmbeddings);
  }
  ASSIGN_OR_RETURN(double std,
                   trace_embedding_std_.GetOrCompute(
                       absl::StrCat("subjects/", checksum_), [&]() -> absl::StatusOr<double> {
                         ASSIGN_OR_RETURN(std::vector<TraceFact> facts,
                                          ReadKnownFacts(facts_path));
                         std::vector<std::string> subjects;
                         for (const TraceFact& fact : facts) subjects.push_back(fact.subject);
                         return SubjectEmbeddingStd(*model_, *tokenizer_, subjects);
                       }));
  return std::make_pair(std, NoiseBasis::kSubjectEmbeddings);
}

absl::StatusOr<TraceOptions> Engine::PrepareTrace(const TextTraceRequest& request,
                                                  const TraceCallbacks& callbacks) {
  ASSIGN_OR_RETURN(std::vector<int64_t> prompt_ids,
                   EncodePrompt(request.prompt, /*needs_new_token=*/false));
  RETURN_IF_ERROR(ValidateText("subject", request.subject, /*allow_empty=*/false));
  RETURN_IF_ERROR(LocateSubject(*tokenizer_, request.prompt, request.subject).status());
  RETURN_IF_ERROR(ValidateTraceNumbers(request, model_->config().n_layer));
  TraceOptions options;
  if (!request.answer.empty()) {
    RETURN_IF_ERROR(ValidateText("answer", request.answer, /*allow_empty=*/false));
    options.target = request.answer;
  }
  ASSIGN_OR_RETURN(options.edit_view, SessionView(request.session_id));
  if (!request.kinds.empty()) options.kinds = request.kinds;
  options.window = request.window;
  options.samples = request.samples.value_or(kDefaultSamples);
  options.seed = request.seed;
  options.sever = request.sever;
  options.max_prompt_tokens = options_.limits.max_prompt_tokens;
  if (request.noise_sigma.has_value()) {
    options.noise = {NoiseScale::Mode::kAbsolute, *request.noise_sigma};
  } else {
    options.noise = {NoiseScale::Mode::kMultiple,
                     request.noise_multiplier.value_or(kDefaultNoiseMultiplier)};
    ASSIGN_OR_RETURN(auto std_and_basis, TraceEmbeddingStd());
    options.embedding_std = std_and_basis.first;
  }
  options.check_cancelled = callbacks.check_cancelled;
  options.progress = callbacks.progress;
  return options;
}

absl::StatusOr<TraceResult> Engine::Trace(const TextTraceRequest& request,
                                          const TraceCallbacks& callbacks) {
  ASSIGN_OR_RETURN(TraceOptions options, PrepareTrace(request, callbacks));
  ASSIGN_OR_RETURN(ConcurrencyLimiter::Slot slot, AcquireHeavyJob());
  const Clock::time_point start = Clock::now();
  ASSIGN_OR_RETURN(TraceResult result,
                   TracePrompt(*model_, *tokenizer_, request.prompt, request.subject, options));
  if (options.noise.mode == NoiseScale::Mode::kMultiple) {
    ASSIGN_OR_RETURN(auto std_and_basis, TraceEmbeddingStd());
    result.noise_basis = std_and_basis.second;
  }
  if (metrics_ != nullptr) {
    metrics_->ObserveTrace(std::chrono::duration<double>(Clock::now() - start).count(),
                           result.cost.forwards);
  }
  return result;
}

absl::StatusOr<TraceFactsResult> Engine::TraceFacts(const TextTraceFactsRequest& request,
                                                    const TraceCallbacks& callbacks,
                                                    const TraceFactCallback& on_fact) {
  const TextTraceRequest& shared = request.options;
  if (!shared.prompt.empty() || !shared.subject.empty() || !shared.answer.empty()) {
    return Invalid(
        "TraceFacts takes prompts, subjects and answers from its facts; leave them empty in "
        "the options");
  }
  const bool traces_mlp = shared.kinds.empty() || std::find(shared.kinds.begin(), shared.kinds.end(),
                                                            TraceKind::kMlp) != shared.kinds.end();
  if (request.store_recommendation && !traces_mlp) {
    return Invalid("storing the edit site needs the mlp kind (the site is the MLP effect's peak)");
  }
  if (request.store_recommendation && !shared.session_id.empty()) {
    return Invalid(
        "the stored edit site is the original model's; trace without session_id to store it");
  }
  if (request.n.has_value() && (*request.n < 1 || *request.n > kMaxTraceFacts)) {
    return Invalid(absl::StrCat("n=", *request.n, " is outside [1, ", kMaxTraceFacts,
                                "]; leave it unset for the first ", kDefaultTraceFacts,
                                " facts"));
  }
  std::vector<TraceFact> facts = request.facts;
  if (facts.empty()) {
    const std::string path = KnownFactsPath(model_dir_);
    absl::StatusOr<std::vector<TraceFact>> known = ReadKnownFacts(path);
    if (absl::IsNotFound(known.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "trace: the model has no known facts (", path,
          "); pass facts in the request (romectl trace --facts=FILE)"));
    }
    RETURN_IF_ERROR(known.status());
    if (known->empty()) {
      return absl::FailedPreconditionError(absl::StrCat("trace: ", path, " lists no facts"));
    }
    facts = *std::move(known);
  }
  facts.resize(std::min<size_t>(facts.size(), request.n.value_or(kDefaultTraceFacts)));

  // Every fact is checked before the first one is traced.
  std::vector<TraceOptions> prepared;
  for (size_t i = 0; i < facts.size(); ++i) {
    TextTraceRequest one = shared;
    one.prompt = facts[i].prompt;
    one.subject = facts[i].subject;
    one.answer = facts[i].answer;
    absl::StatusOr<TraceOptions> options = PrepareTrace(one, callbacks);
    if (!options.ok()) {
      return absl::Status(options.status().code(),
                          absl::StrCat("facts[", i, "]: ", options.status().message()));
    }
    prepared.push_back(*std::move(options));
  }

  ASSIGN_OR_RETURN(ConcurrencyLimiter::Slot slot, AcquireHeavyJob());
  const Clock::time_point start = Clock::now();
  std::vector<TraceResult> traces;
  for (size_t i = 0; i < facts.size(); ++i) {
    const Clock::time_point fact_start = Clock::now();
    ASSIGN_OR_RETURN(TraceResult trace, TracePrompt(*model_, *tokenizer_, facts[i].prompt,
                                                    facts[i].subject, prepared[i]));
    if (metrics_ != nullptr) {
      metrics_->ObserveTrace(std::chrono::duration<double>(Clock::now() - fact_start).count(),
                             trace.cost.forwards);
    }
    if (on_fact) {
      TraceFactSummary summary;
      summary.index = static_cast<int64_t>(i);
      summary.total = static_cast<int64_t>(facts.size());
      summary.fact = facts[i];
      summary.answer_text = trace.answer_text;
      summary.high_score = trace.high_score;
      summary.low_score = trace.low_score;
      on_fact(summary);
    }
    traces.push_back(std::move(trace));
  }

  TraceFactsResult result;
  ASSIGN_OR_RETURN(result.table, AggregateTraces(traces));
  if (result.table.Find(TraceKind::kMlp) != nullptr) {
    ASSIGN_OR_RETURN(result.recommendation, RecommendEditSite(result.table));
  }
  if (request.store_recommendation) {
    RETURN_IF_ERROR(edit_sites_->Put(*result.recommendation));
    result.stored = true;
  }
  result.time_s = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace romed
