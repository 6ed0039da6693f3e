#include "client/eval_report.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/romectl_format.h"

namespace romed::client {
namespace {

using Json = nlohmann::json;

Json OrNull(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

Json SummaryToJson(const MetricSummary& s) {
  return {{"cases", s.cases}, {"s", OrNull(s.s)},   {"es", OrNull(s.es)}, {"em", OrNull(s.em)},
          {"ps", OrNull(s.ps)}, {"pm", OrNull(s.pm)}, {"ns", OrNull(s.ns)}, {"nm", OrNull(s.nm)},
          {"ge", OrNull(s.ge)}};
}

// A case's metrics as a one-case summary (same fields).
MetricSummary OneCase(const CaseMeasurement& m) { return Summarize({m.Metrics()}); }

Json ComparisonsToJson(const std::vector<TargetComparison>& prompts) {
  Json out = Json::array();
  for (const TargetComparison& p : prompts) out.push_back({p.logp_new, p.logp_true});
  return out;
}

// Metrics, per-prompt mean log-probabilities [new, true] and generations.
Json MeasurementToJson(const CaseMeasurement& m) {
  Json out = SummaryToJson(OneCase(m));
  out.erase("cases");
  out["logp_rewrite"] = ComparisonsToJson(m.rewrite);
  out["logp_paraphrase"] = ComparisonsToJson(m.paraphrase);
  out["logp_neighborhood"] = ComparisonsToJson(m.neighborhood);
  out["generations"] = m.generations;
  out["generation_entropies"] = m.entropies;
  return out;
}

Json CaseToJson(const CaseResult& c) {
  Json out = {{"index", c.index},       {"case_id", c.case_id},         {"subject", c.subject},
              {"target_new", c.target_new}, {"target_true", c.target_true}, {"unedited", nullptr},
              {"edited", nullptr},      {"final", nullptr}};
  if (!c.error.empty()) {
    out["error"] = c.error;
  } else {
    out["unedited"] = MeasurementToJson(c.before);
  }
  if (c.after) {
    out["edit_s"] = c.edit_wall_s;
    out["edit_server_s"] = c.edit_server_s;
    out["covariance_s"] = c.covariance_s;
    out["layer"] = c.layer;
    out["site_source"] = c.site_source;
    out["edited"] = MeasurementToJson(*c.after);
  }
  if (c.final_state) out["final"] = MeasurementToJson(*c.final_state);
  return out;
}

Json RetentionToJson(const RetentionCount& r) {
  return {{"held_before", r.held_before}, {"kept", r.kept}, {"share", OrNull(r.Share())}};
}

Json CheckpointToJson(const Checkpoint& c) {
  return {{"edits", c.edits},
          {"edited", SummaryToJson(c.edited)},
          {"retention", RetentionToJson(c.Retention())},
          {"retention_unedited_facts", RetentionToJson(c.unedited_facts)},
          {"retention_neighborhood", RetentionToJson(c.neighborhood)},
          {"elapsed_s", c.elapsed_s}};
}

Json RecordsToJson(const EvalSource& source) {
  Json bad = Json::array();
  for (const RecordError& e : source.data->errors) {
    bad.push_back({{"index", e.index},
                   {"case_id", e.case_id ? Json(*e.case_id) : Json(nullptr)},
                   {"field", e.field},
                   {"message", e.message}});
  }
  return {{"total", source.data->records_total},
          {"read", source.data->records_read},
          {"cases", source.data->cases.size()},
          {"bad", source.data->errors.size()},
          {"bad_records", std::move(bad)}};
}

std::string Csv(const std::string& field) {
  if (field.find_first_of(",\"\n\r") == std::string::npos) return field;
  std::string out = "\"";
  for (char ch : field) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

std::string CsvNumber(const std::optional<double>& v) {
  return v ? absl::StrFormat("%.6g", *v) : std::string();
}

// es,em,ps,pm,ns,nm,s,ge of `m` (empty fields when absent).
std::vector<std::string> SummaryCsvFields(const std::optional<MetricSummary>& m) {
  if (!m) return std::vector<std::string>(8);
  return {CsvNumber(m->es), CsvNumber(m->em), CsvNumber(m->ps), CsvNumber(m->pm),
          CsvNumber(m->ns), CsvNumber(m->nm), CsvNumber(m->s),  CsvNumber(m->ge)};
}

std::vector<std::string> SummaryCsvHeader(const std::string& prefix) {
  std::vector<std::string> out;
  for (const char* name : {"es", "em", "ps", "pm", "ns", "nm", "s", "ge"}) {
    out.push_back(prefix + name);
  }
  return out;
}

std::string Percent(const std::optional<double>& v) {
  return v ? absl::StrFormat("%7.1f", 100 * *v) : absl::StrFormat("%7s", "-");
}

std::string SummaryRow(const std::string& label, const MetricSummary& s) {
  return absl::StrCat(absl::StrFormat("%-10s", label), Percent(s.s), Percent(s.es), Percent(s.ps),
                      Percent(s.ns), Percent(s.em), Percent(s.pm), Percent(s.nm), Percent(s.ge),
                      absl::StrFormat("%7d", s.cases), "\n");
}

constexpr absl::string_view kSummaryHeader =
    "                S     ES     PS     NS     EM     PM     NM     GE  cases\n";

std::string RetentionText(const RetentionCount& r) {
  if (!r.Share()) return "      -";
  return absl::StrFormat("%6.1f%%", 100 * *r.Share());
}

std::string FormatCheckpoints(const EvalReport& report) {
  std::string out =
      "after edits        S     ES     PS     NS     GE   retention  (unedited facts, "
      "neighbourhood)\n";
  for (const Checkpoint& c : report.checkpoints) {
    absl::StrAppend(&out, absl::StrFormat("%11d", c.edits), Percent(c.edited.s),
                    Percent(c.edited.es), Percent(c.edited.ps), Percent(c.edited.ns),
                    Percent(c.edited.ge), "    ", RetentionText(c.Retention()), "  (",
                    RetentionText(c.unedited_facts), ", ", RetentionText(c.neighborhood), ")\n");
  }
  const std::optional<int64_t> below = RetentionFallsBelow(report, kRetentionThreshold);
  if (below) {
    absl::StrAppend(&out, "retention of the other facts first below 95% after ", *below,
                    " edits\n");
  } else if (!report.checkpoints.empty()) {
    absl::StrAppend(&out, "retention of the other facts stays >= 95% through ",
                    report.checkpoints.back().edits, " edits\n");
  }
  return out;
}

std::string FormatCaseLines(const EvalReport& report) {
  std::string out = "\ncase  case_id       S     ES     PS     NS     GE  edit s  rewrite\n";
  for (const CaseResult& c : report.cases) {
    absl::StrAppend(&out, absl::StrFormat("%4d %8d ", c.index, c.case_id));
    const CaseMeasurement* m = c.final_state ? &*c.final_state : c.after ? &*c.after : nullptr;
    if (!c.error.empty() || m == nullptr) {
      absl::StrAppend(&out, "  error: ", c.error.empty() ? "not edited" : c.error, "\n");
      continue;
    }
    const MetricSummary s = OneCase(*m);
    absl::StrAppend(&out, Percent(s.s), Percent(s.es), Percent(s.ps), Percent(s.ns),
                    Percent(s.ge), absl::StrFormat("%8.3f", c.edit_wall_s), "  ", c.subject,
                    ": ", c.target_true, " -> ", c.target_new, "\n");
  }
  return out;
}

std::string FormatSite(const EvalReport& report) {
  for (const CaseResult& c : report.cases) {
    if (c.after) return absl::StrCat("layer ", c.layer, " (site: ", c.site_source, ")");
  }
  return "no edit succeeded";
}

}  // namespace

std::optional<int64_t> RetentionFallsBelow(const EvalReport& report, double threshold) {
  for (const Checkpoint& c : report.checkpoints) {
    std::optional<double> share = c.Retention().Share();
    if (share && *share < threshold) return c.edits;
  }
  return std::nullopt;
}

Json EvalReportToJson(const EvalReport& report, const EvalSource& source) {
  Json out;
  out["mode"] = EvalModeName(report.mode);
  out["dataset"] = source.dataset;
  out["model"] = {{"model_dir", report.model.model_dir()},
                  {"checksum", report.model.checksum()},
                  {"n_layer", report.model.n_layer()},
                  {"context_length", report.model.context_length()}};
  out["options"] = {{"every", report.options.every},
                    {"gen_length", report.options.gen_length},
                    {"seed", report.options.seed},
                    {"hparams", ProtoToJson(report.options.hparams)}};
  out["records"] = RecordsToJson(source);
  out["summary"] = {{"unedited", SummaryToJson(report.Unedited())},
                    {"edited", SummaryToJson(report.Edited())},
                    {"final", SummaryToJson(report.Final())}};
  out["timing"] = {{"wall_s", report.wall_s},
                   {"unedited_wall_s", report.unedited_wall_s},
                   {"edited_wall_s", report.edited_wall_s},
                   {"mean_edit_s", report.MeanEditWallSeconds()},
                   {"mean_edit_server_s", report.MeanEditServerSeconds()},
                   {"cases_per_minute", report.CasesPerMinute()}};
  out["failed_cases"] = report.failed_cases;
  out["cases"] = Json::array();
  for (const CaseResult& c : report.cases) out["cases"].push_back(CaseToJson(c));
  out["checkpoints"] = Json::array();
  for (const Checkpoint& c : report.checkpoints) out["checkpoints"].push_back(CheckpointToJson(c));
  const std::optional<int64_t> below = RetentionFallsBelow(report, kRetentionThreshold);
  out["retention_below_95_after_edits"] = below ? Json(*below) : Json(nullptr);
  return out;
}

std::string EvalCasesCsv(const EvalReport& report) {
  std::vector<std::string> header = {"index",  "case_id",       "subject",    "target_new",
                                     "target_true", "error", "layer", "edit_s", "edit_server_s"};
  for (const char* prefix : {"unedited_", "edited_", "final_"}) {
    for (std::string& h : SummaryCsvHeader(prefix)) header.push_back(std::move(h));
  }
  std::string out = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (const CaseResult& c : report.cases) {
    std::vector<std::string> row = {
        absl::StrCat(c.index),  absl::StrCat(c.case_id), Csv(c.subject), Csv(c.target_new),
        Csv(c.target_true),     Csv(c.error),
        c.after ? absl::StrCat(c.layer) : "",
        c.after ? absl::StrFormat("%.4f", c.edit_wall_s) : "",
        c.after ? absl::StrFormat("%.4f", c.edit_server_s) : ""};
    auto add = [&](const CaseMeasurement* m, bool present) {
      std::optional<MetricSummary> s;
      if (present && c.error.empty()) s = OneCase(*m);
      for (std::string& f : SummaryCsvFields(s)) row.push_back(std::move(f));
    };
    add(&c.before, true);
    add(c.after ? &*c.after : nullptr, c.after.has_value());
    add(c.final_state ? &*c.final_state : nullptr, c.final_state.has_value());
    absl::StrAppend(&out, absl::StrJoin(row, ","), "\n");
  }
  return out;
}

std::string EvalCheckpointsCsv(const EvalReport& report) {
  std::vector<std::string> header = {"edits"};
  for (std::string& h : SummaryCsvHeader("")) header.push_back(std::move(h));
  for (const char* h : {"retention", "unedited_facts_held", "unedited_facts_kept",
                        "neighborhood_held", "neighborhood_kept", "elapsed_s"}) {
    header.push_back(h);
  }
  std::string out = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (const Checkpoint& c : report.checkpoints) {
    std::vector<std::string> row = {absl::StrCat(c.edits)};
    for (std::string& f : SummaryCsvFields(c.edited)) row.push_back(std::move(f));
    row.push_back(CsvNumber(c.Retention().Share()));
    for (int64_t n : {c.unedited_facts.held_before, c.unedited_facts.kept,
                      c.neighborhood.held_before, c.neighborhood.kept}) {
      row.push_back(absl::StrCat(n));
    }
    row.push_back(absl::StrFormat("%.2f", c.elapsed_s));
    absl::StrAppend(&out, absl::StrJoin(row, ","), "\n");
  }
  return out;
}

std::string FormatEvalReport(const EvalReport& report, const EvalSource& source) {
  const bool sequential = report.mode == EvalMode::kSequential;
  std::string out = absl::StrCat(
      "CounterFact evaluation (", EvalModeName(report.mode), "): ", report.cases.size(),
      " cases of ", source.dataset, " (", source.data->errors.size(), " bad records skipped, ",
      report.failed_cases, " refused by the server)\n", "model ", report.model.model_dir(), " (",
      report.model.n_layer(), " layers); edits at ", FormatSite(report), "\n\n", kSummaryHeader,
      SummaryRow("unedited", report.Unedited()),
      SummaryRow(sequential ? "each edit" : "ROME", report.Edited()));
  if (sequential) absl::StrAppend(&out, SummaryRow("all edits", report.Final()));
  absl::StrAppend(&out,
                  "(x100, as the paper's table; ",
                  sequential ? "\"each edit\" right after it, \"all edits\" after the last; " : "",
                  "GE in bits x100)\n\n");
  if (sequential) absl::StrAppend(&out, FormatCheckpoints(report), "\n");
  absl::StrAppend(
      &out,
      absl::StrFormat("time per edit %.3f s (server %.3f s; computing C excluded); %d cases in %.1f s: %.1f cases/min "
                      "(edit and measurements; the unedited pass took %.1f s more)\n",
                      report.MeanEditWallSeconds(), report.MeanEditServerSeconds(),
                      report.cases.size(), report.edited_wall_s, report.CasesPerMinute(),
                      report.unedited_wall_s));
  absl::StrAppend(&out, FormatCaseLines(report));
  return out;
}

std::string CheckpointsCsvPath(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash) || dot == 0 ||
      (slash != std::string::npos && dot == slash + 1)) {
    return path + ".checkpoints";
  }
  return absl::StrCat(path.substr(0, dot), ".checkpoints", path.substr(dot));
}

}  // namespace romed::client
