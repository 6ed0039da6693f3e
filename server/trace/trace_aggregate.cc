#include "server/trace/trace_aggregate.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace romed {
namespace {

struct ClassRows {
  PositionClass position;
  int64_t begin, end;  // token rows [begin, end)
};

// The token rows of each class in one trace (see the header).
std::vector<ClassRows> ClassesOf(const TraceResult& trace) {
  const int64_t b = trace.subject_begin, e = trace.subject_end;
  const auto T = static_cast<int64_t>(trace.tokens.empty() ? trace.scores.front().values.size()
                                                           : trace.tokens.size());
  std::vector<ClassRows> rows = {
      {PositionClass::kFirstSubject, b, b + 1},
      {PositionClass::kMiddleSubject, b + 1, std::max(b + 1, e - 1)},
      {PositionClass::kLastSubject, e - 1, e},
      {PositionClass::kFurther, e + 1, std::max(e + 1, T - 1)},
      {PositionClass::kLastToken, T - 1, T},
  };
  if (e < T) rows.push_back({PositionClass::kFirstAfter, e, e + 1});
  return rows;
}

const char* FactTokenOf(PositionClass position) {
  switch (position) {
    case PositionClass::kFirstSubject:
      return "subject_first";
    case PositionClass::kLastSubject:
      return "subject_last";
    case PositionClass::kLastToken:
      return "last";
    default:
      return "";
  }
}

}  // namespace

std::string_view PositionClassName(PositionClass position) {
  switch (position) {
    case PositionClass::kFirstSubject:
      return "first subject token";
    case PositionClass::kMiddleSubject:
      return "middle subject tokens";
    case PositionClass::kLastSubject:
      return "last subject token";
    case PositionClass::kFirstAfter:
      return "first token after";
    case PositionClass::kFurther:
      return "further tokens";
    case PositionClass::kLastToken:
      return "last token";
  }
  return "unknown";
}

const KindTable* AggregateTable::Find(TraceKind kind) const {
  for (const KindTable& table : kinds) {
    if (table.kind == kind) return &table;
  }
  return nullptr;
}

absl::StatusOr<AggregateTable> AggregateTraces(const std::vector<TraceResult>& traces) {
  if (traces.empty()) return absl::InvalidArgumentError("aggregate: no traces");
  AggregateTable table;
  table.num_facts = static_cast<int64_t>(traces.size());
  table.num_layers = traces.front().num_layers;
  table.window = traces.front().window;
  const int64_t L = table.num_layers;
  for (const ScoreGrid& grid : traces.front().scores) {
    table.kinds.push_back({grid.kind, std::vector<std::vector<double>>(
                                          kNumPositionClasses, std::vector<double>(L, 0.0)),
                           std::vector<int64_t>(kNumPositionClasses, 0)});
  }
  for (size_t i = 0; i < traces.size(); ++i) {
    const TraceResult& trace = traces[i];
    if (trace.num_layers != L) {
      return absl::InvalidArgumentError(absl::StrCat("aggregate: trace ", i, " has ",
                                                     trace.num_layers, " layers, not ", L));
    }
    table.mean_high += trace.high_score / table.num_facts;
    table.mean_low += trace.low_score / table.num_facts;
    for (KindTable& kind : table.kinds) {
      const ScoreGrid* grid = trace.Find(kind.kind);
      if (grid == nullptr) {
        return absl::InvalidArgumentError(absl::StrCat("aggregate: trace ", i, " has no ",
                                                       std::string(TraceKindName(kind.kind)), " scores"));
      }
      for (const ClassRows& rows : ClassesOf(trace)) {
        const int c = static_cast<int>(rows.position);
        for (int64_t t = rows.begin; t < rows.end; ++t) {
          ++kind.count[c];
          for (int64_t l = 0; l < L; ++l) kind.effect[c][l] += grid->values[t][l] - trace.low_score;
        }
      }
    }
  }
  for (KindTable& kind : table.kinds) {
    for (int c = 0; c < kNumPositionClasses; ++c) {
      if (kind.count[c] == 0) continue;
      for (double& value : kind.effect[c]) value /= static_cast<double>(kind.count[c]);
    }
  }
  return table;
}

absl::StatusOr<SiteRecommendation> RecommendEditSite(const AggregateTable& table) {
  const KindTable* mlp = table.Find(TraceKind::kMlp);
  if (mlp == nullptr) {
    return absl::FailedPreconditionError("recommend: the traces have no mlp scores");
  }
  SiteRecommendation best;
  bool found = false;
  for (PositionClass position :
       {PositionClass::kLastSubject, PositionClass::kFirstSubject, PositionClass::kLastToken}) {
    const int c = static_cast<int>(position);
    if (mlp->count[c] == 0) continue;
    for (int64_t l = 0; l < table.num_layers; ++l) {
      if (!found || mlp->effect[c][l] > best.effect) {
        found = true;
        best.position = position;
        best.layer = l;
        best.effect = mlp->effect[c][l];
      }
    }
  }
  if (!found) return absl::FailedPreconditionError("recommend: no subject or last-token rows");
  best.fact_token = FactTokenOf(best.position);
  best.num_facts = table.num_facts;
  best.window = table.window;
  return best;
}

std::string RecommendationToJson(const SiteRecommendation& site) {
  nlohmann::json json = {{"fact_token", site.fact_token}, {"layer", site.layer},
                         {"effect", site.effect},         {"num_facts", site.num_facts},
                         {"window", site.window},         {"kind", "mlp"}};
  return json.dump(2);
}

absl::StatusOr<SiteRecommendation> RecommendationFromJson(std::string_view text) {
  nlohmann::json json = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                              /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError("edit site: not a JSON object");
  }
  SiteRecommendation site;
  try {
    site.fact_token = json.at("fact_token").get<std::string>();
    site.layer = json.at("layer").get<int64_t>();
    site.effect = json.value("effect", 0.0);
    site.num_facts = json.value("num_facts", int64_t{0});
    site.window = json.value("window", int64_t{1});
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("edit site: ", e.what()));
  }
  for (PositionClass position :
       {PositionClass::kFirstSubject, PositionClass::kLastSubject, PositionClass::kLastToken}) {
    if (site.fact_token == FactTokenOf(position)) {
      site.position = position;
      return site;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("edit site: unknown fact_token \"", site.fact_token, "\""));
}

std::string FormatAggregateTable(const AggregateTable& table) {
  std::string out = absl::StrFormat(
      "%d facts, mean clean p %.3f, mean corrupted p %.3f; indirect effect (score - low), "
      "window %d\n",
      table.num_facts, table.mean_high, table.mean_low, table.window);
  for (const KindTable& kind : table.kinds) {
    absl::StrAppend(&out, "\n", std::string(TraceKindName(kind.kind)), "\n", absl::StrFormat("%-24s", "layer"));
    for (int64_t l = 0; l < table.num_layers; ++l) absl::StrAppend(&out, absl::StrFormat("%7d", l));
    absl::StrAppend(&out, "\n");
    for (int c = 0; c < kNumPositionClasses; ++c) {
      absl::StrAppend(&out, absl::StrFormat("%-24s", std::string(PositionClassName(static_cast<PositionClass>(c)))));
      for (int64_t l = 0; l < table.num_layers; ++l) {
        absl::StrAppend(&out, kind.count[c] == 0 ? std::string("      -")
                                                 : absl::StrFormat("%7.3f", kind.effect[c][l]));
      }
      absl::StrAppend(&out, "\n");
    }
  }
  return out;
}

}  // namespace romed
