#include "client/romectl_trace.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/romectl_commands.h"
#include "client/romectl_format.h"
#include "server/service/proto_convert_trace.h"
#include "server/trace/heatmap_svg.h"
#include "server/trace/heatmap_terminal.h"

namespace romed::client {
namespace {

int ReportError(const absl::Status& status, std::ostream& err, int exit_status = kExitRpcError) {
  err << FormatError(status) << "\n";
  return exit_status;
}

bool UseColor(const TraceInvocation& trace, const std::ostream& out) {
  if (trace.color != "auto") return trace.color == "always";
  return &out == &std::cout && isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;
}

std::string Bar(int64_t done, int64_t total) {
  constexpr int kWidth = 30;
  const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : 0;
  return absl::StrCat("[", std::string(filled, '#'), std::string(kWidth - filled, '.'), "] ");
}

std::string NoiseBasisText(NoiseBasis basis) {
  switch (basis) {
    case NoiseBasis::kAbsolute:
      return "absolute";
    case NoiseBasis::kSubjectEmbeddings:
      return "a multiple of the std of subject-token embeddings";
    case NoiseBasis::kVocabularyEmbeddings:
      return "a multiple of the std of all token embeddings";
  }
  return "";
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  file << text;
  file.close();
  if (!file) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

int RunTracePrompt(const Invocation& inv, const RomedClient& client, const CallOptions& call,
                   std::ostream& out, std::ostream& err) {
  const TraceInvocation& t = inv.trace;
  bool drew = false;
  auto on_progress = [&](const romed::v1::TraceStreamResponse& progress) {
    if (!t.progress) return true;
    err << "\r" << Bar(progress.done_steps(), progress.total_steps()) << progress.done_steps()
        << "/" << progress.total_steps() << " forward passes" << std::flush;
    drew = true;
    return true;
  };
  absl::StatusOr<romed::v1::TraceResponse> reply = client.TraceStream(t.request, on_progress, call);
  if (drew) err << "\n";
  if (!reply.ok()) return ReportError(reply.status(), err);
  absl::StatusOr<TraceResult> trace = TraceResultFromProto(*reply);
  if (!trace.ok()) return ReportError(trace.status(), err);
  if (!t.svg_path.empty()) {
    const absl::Status written = WriteFile(t.svg_path, RenderTraceSvg(*trace, t.request.prompt()));
    if (!written.ok()) return ReportError(written, err);
  }
  if (inv.json) {
    out << DumpJson(TraceToJson(*trace, reply->time_s())) << "\n";
    return kExitOk;
  }
  out << FormatTraceSummary(*trace) << "\n"
      << RenderTraceTerminal(*trace, {UseColor(t, out)})
      << absl::StrFormat("%d forward passes (largest batch %d rows), %.2f s\n",
                         trace->cost.forwards, trace->cost.max_batch_rows, reply->time_s());
  if (!t.svg_path.empty()) out << "wrote " << t.svg_path << "\n";
  return kExitOk;
}

int RunTraceFacts(const Invocation& inv, const RomedClient& client, const CallOptions& call,
                  std::ostream& out, std::ostream& err) {
  const TraceInvocation& t = inv.trace;
  romed::v1::TraceFactsRequest request = t.facts_request;
  if (t.facts != kModelFacts) {
    absl::StatusOr<std::vector<romed::v1::TraceFact>> facts = ReadFactsFile(t.facts);
    if (!facts.ok()) return ReportError(facts.status(), err, kExitUsage);
    for (romed::v1::TraceFact& fact : *facts) *request.add_facts() = std::move(fact);
  }
  bool drew = false;
  auto on_fact = [&](const romed::v1::TraceFactsProgress& progress) {
    if (!t.progress) return true;
    err << "\r" << Bar(progress.facts_done(), progress.facts_total()) << progress.facts_done()
        << "/" << progress.facts_total() << " facts" << std::flush;
    drew = true;
    return true;
  };
  absl::StatusOr<romed::v1::TraceFactsResult> reply = client.TraceFacts(request, on_fact, call);
  if (drew) err << "\n";
  if (!reply.ok()) return ReportError(reply.status(), err);
  absl::StatusOr<AggregateTable> table = AggregateTableFromProto(reply->table());
  if (!table.ok()) return ReportError(table.status(), err);
  std::optional<SiteRecommendation> site;
  if (reply->has_recommendation()) {
    absl::StatusOr<SiteRecommendation> parsed =
        SiteRecommendationFromProto(reply->recommendation());
    if (!parsed.ok()) return ReportError(parsed.status(), err);
    site = *parsed;
  }
  if (inv.json) {
    nlohmann::json json = TraceFactsToJson(*table, site, reply->stored());
    json["time_s"] = reply->time_s();
    out << DumpJson(json) << "\n";
    return kExitOk;
  }
  out << FormatAggregateTable(*table) << "\n";
  if (site.has_value()) out << FormatRecommendation(*site, reply->stored()) << "\n";
  out << absl::StrFormat("%.1f s\n", reply->time_s());
  return kExitOk;
}

}  // namespace

int RunTrace(const Invocation& inv, const RomedClient& client, const CallOptions& call,
             std::ostream& out, std::ostream& err) {
  if (inv.trace.facts.empty()) return RunTracePrompt(inv, client, call, out, err);
  return RunTraceFacts(inv, client, call, out, err);
}

absl::StatusOr<std::vector<romed::v1::TraceFact>> ReadFactsFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read --facts=", path, " (a JSON file of known facts, or 'model' for the "
        "server model's own)"));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::vector<romed::v1::TraceFact> facts;
  size_t index = 0;
  try {
    const nlohmann::json json = nlohmann::json::parse(text.str());
    if (!json.is_array()) throw std::runtime_error("not a JSON array");
    for (; index < json.size(); ++index) {
      const nlohmann::json& entry = json[index];
      romed::v1::TraceFact fact;
      fact.set_prompt(entry.at("prompt").get<std::string>());
      fact.set_subject(entry.at("subject").get<std::string>());
      if (entry.contains("prediction")) {
        fact.set_answer(entry["prediction"].get<std::string>());
      } else if (entry.contains("attribute")) {
        fact.set_answer(" " + entry["attribute"].get<std::string>());
      }
      facts.push_back(std::move(fact));
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": entry ", index, ": ", e.what(),
        " (expected a JSON array of {\"prompt\", \"subject\", \"prediction\"}, ROME's "
        "known_1000 format)"));
  }
  if (facts.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " lists no facts"));
  return facts;
}

nlohmann::json TraceToJson(const TraceResult& trace, double time_s) {
  nlohmann::json grids = nlohmann::json::array();
  for (const ScoreGrid& grid : trace.scores) {
    grids.push_back({{"kind", std::string(TraceKindName(grid.kind))},
                     {"window", grid.kind == TraceKind::kState ? 1 : trace.window},
                     {"scores", grid.values}});
  }
  return {{"tokens", trace.token_texts},
          {"token_ids", trace.tokens},
          {"subject_begin", trace.subject_begin},
          {"subject_end", trace.subject_end},
          {"answer", trace.answer_text},
          {"answer_id", trace.answer_token},
          {"high_score", trace.high_score},
          {"low_score", trace.low_score},
          {"n_layer", trace.num_layers},
          {"window", trace.window},
          {"samples", trace.samples},
          {"seed", trace.seed},
          {"noise_sigma", trace.noise_sigma},
          {"noise_basis", std::string(NoiseBasisName(trace.noise_basis))},
          {"sever", std::string(SeverModeName(trace.sever))},
          {"time_s", time_s},
          {"forwards", trace.cost.forwards},
          {"grids", grids}};
}

std::string FormatTraceSummary(const TraceResult& trace) {
  std::string subject;
  for (int64_t t = trace.subject_begin; t < trace.subject_end; ++t) {
    if (t >= 0 && t < static_cast<int64_t>(trace.token_texts.size())) {
      subject += trace.token_texts[t];
    }
  }
  return absl::StrFormat(
      "subject \"%s\" = tokens [%d, %d) of %d; answer \"%s\" (id %d)\n"
      "clean p %.4f, corrupted p %.4f; noise sigma %.4f (%s), %d samples, seed %d%s\n",
      subject, trace.subject_begin, trace.subject_end, trace.tokens.size(), trace.answer_text,
      trace.answer_token, trace.high_score, trace.low_score, trace.noise_sigma,
      NoiseBasisText(trace.noise_basis), trace.samples, trace.seed,
      trace.sever == SeverMode::kNone
          ? ""
          : absl::StrCat(", severed ", std::string(SeverModeName(trace.sever))));
}

nlohmann::json TraceFactsToJson(const AggregateTable& table,
                                const std::optional<SiteRecommendation>& site, bool stored) {
  nlohmann::json kinds = nlohmann::json::array();
  for (const KindTable& kind : table.kinds) {
    nlohmann::json classes = nlohmann::json::array();
    for (int c = 0; c < kNumPositionClasses; ++c) {
      classes.push_back(
          {{"position", std::string(PositionClassName(static_cast<PositionClass>(c)))},
           {"count", kind.count[c]},
           {"effect", kind.effect[c]}});
    }
    kinds.push_back({{"kind", std::string(TraceKindName(kind.kind))}, {"classes", classes}});
  }
  nlohmann::json json = {{"table",
                          {{"num_facts", table.num_facts},
                           {"n_layer", table.num_layers},
                           {"window", table.window},
                           {"mean_high", table.mean_high},
                           {"mean_low", table.mean_low},
                           {"kinds", kinds}}},
                         {"stored", stored}};
  json["recommendation"] =
      site.has_value() ? nlohmann::json::parse(RecommendationToJson(*site)) : nlohmann::json();
  return json;
}

std::string FormatRecommendation(const SiteRecommendation& site, bool stored) {
  return absl::StrFormat(
      "recommended edit site: fact_token=%s, layer %d (%s; windowed MLP indirect effect %.3f "
      "over %d facts, window %d)%s",
      site.fact_token, site.layer, std::string(PositionClassName(site.position)), site.effect,
      site.num_facts, site.window,
      stored ? "; stored as the model's default edit site"
             : "; not stored (add --store_site to make it edit's default)");
}

std::string FormatStoredEditSite(const romed::v1::EditSiteRecommendation& proto) {
  absl::StatusOr<SiteRecommendation> site = SiteRecommendationFromProto(proto);
  if (!site.ok()) return absl::StrCat("edit_site    (unreadable: ", site.status().message(), ")\n");
  return absl::StrFormat(
      "edit_site    fact_token=%s, layer %d (windowed MLP indirect effect %.3f over %d facts, "
      "window %d; from romectl trace --facts --store_site)\n",
      site->fact_token, site->layer, site->effect, site->num_facts, site->window);
}

}  // namespace romed::client
