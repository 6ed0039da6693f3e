#include "server/service/proto_convert_trace.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/trace/heatmap_style.h"

namespace romed {
namespace {

absl::StatusOr<TraceKind> KindFromProto(v1::TraceKind kind, int index) {
  switch (kind) {
    case v1::TRACE_KIND_STATE:
      return TraceKind::kState;
    case v1::TRACE_KIND_MLP:
      return TraceKind::kMlp;
    case v1::TRACE_KIND_ATTN:
      return TraceKind::kAttn;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "trace: kinds[", index, "] is ", static_cast<int>(kind),
          " (", v1::TraceKind_Name(kind),
          "); use TRACE_KIND_STATE, TRACE_KIND_MLP or TRACE_KIND_ATTN, or leave kinds empty "
          "for all three"));
  }
}

absl::StatusOr<SeverMode> SeverFromProto(v1::SeverMode mode) {
  switch (mode) {
    case v1::SEVER_MODE_NONE:
      return SeverMode::kNone;
    case v1::SEVER_MODE_MLP:
      return SeverMode::kMlp;
    case v1::SEVER_MODE_ATTN:
      return SeverMode::kAttn;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "trace: sever is ", static_cast<int>(mode),
          "; use SEVER_MODE_NONE, SEVER_MODE_MLP or SEVER_MODE_ATTN"));
  }
}

v1::NoiseBasis ToProto(NoiseBasis basis) {
  switch (basis) {
    case NoiseBasis::kAbsolute:
      return v1::NOISE_BASIS_ABSOLUTE;
    case NoiseBasis::kSubjectEmbeddings:
      return v1::NOISE_BASIS_SUBJECT_EMBEDDINGS;
    case NoiseBasis::kVocabularyEmbeddings:
      return v1::NOISE_BASIS_VOCABULARY_EMBEDDINGS;
  }
  return v1::NOISE_BASIS_UNSPECIFIED;
}

NoiseBasis NoiseBasisFromProto(v1::NoiseBasis basis) {
  switch (basis) {
    case v1::NOISE_BASIS_ABSOLUTE:
      return NoiseBasis::kAbsolute;
    case v1::NOISE_BASIS_SUBJECT_EMBEDDINGS:
      return NoiseBasis::kSubjectEmbeddings;
    default:
      return NoiseBasis::kVocabularyEmbeddings;
  }
}

absl::StatusOr<PositionClass> PositionFromProto(v1::PositionClass position) {
  const int index = static_cast<int>(position) - 1;
  if (index < 0 || index >= kNumPositionClasses) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown position class ", static_cast<int>(position)));
  }
  return static_cast<PositionClass>(index);
}

std::string FactTokenFromProto(v1::FactToken token) {
  switch (token) {
    case v1::FACT_TOKEN_SUBJECT_FIRST:
      return "subject_first";
    case v1::FACT_TOKEN_SUBJECT_LAST:
      return "subject_last";
    case v1::FACT_TOKEN_LAST:
      return "last";
    default:
      return "";
  }
}

void ToProto(const TraceCost& cost, v1::TraceCost* proto) {
  proto->set_forwards(cost.forwards);
  proto->set_rows(cost.rows);
  proto->set_token_rows(cost.token_rows);
  proto->set_max_batch_rows(cost.max_batch_rows);
  proto->set_restorations(cost.restorations);
  proto->set_skipped(cost.skipped);
}

TraceCost CostFromProto(const v1::TraceCost& proto) {
  TraceCost cost;
  cost.forwards = proto.forwards();
  cost.rows = proto.rows();
  cost.token_rows = proto.token_rows();
  cost.max_batch_rows = proto.max_batch_rows();
  cost.restorations = proto.restorations();
  cost.skipped = proto.skipped();
  return cost;
}

}  // namespace

absl::StatusOr<TextTraceRequest> FromProto(const v1::TraceRequest& proto) {
  TextTraceRequest request;
  request.prompt = proto.prompt();
  request.subject = proto.subject();
  for (int i = 0; i < proto.kinds_size(); ++i) {
    ASSIGN_OR_RETURN(TraceKind kind, KindFromProto(proto.kinds(i), i));
    request.kinds.push_back(kind);
  }
  if (proto.has_window()) request.window = proto.window();
  if (proto.has_noise_sigma()) request.noise_sigma = proto.noise_sigma();
  if (proto.has_noise_multiplier()) request.noise_multiplier = proto.noise_multiplier();
  if (proto.has_samples()) request.samples = proto.samples();
  request.seed = proto.seed();
  request.answer = proto.answer();
  request.session_id = proto.session_id();
  ASSIGN_OR_RETURN(request.sever, SeverFromProto(proto.sever()));
  return request;
}

absl::StatusOr<TextTraceFactsRequest> FromProto(const v1::TraceFactsRequest& proto) {
  TextTraceFactsRequest request;
  for (const v1::TraceFact& fact : proto.facts()) {
    request.facts.push_back({fact.prompt(), fact.subject(), fact.answer()});
  }
  if (proto.n() != 0) request.n = proto.n();
  ASSIGN_OR_RETURN(request.options, FromProto(proto.options()));
  request.store_recommendation = proto.store_recommendation();
  return request;
}

v1::TraceKind ToProto(TraceKind kind) {
  switch (kind) {
    case TraceKind::kState:
      return v1::TRACE_KIND_STATE;
    case TraceKind::kMlp:
      return v1::TRACE_KIND_MLP;
    case TraceKind::kAttn:
      return v1::TRACE_KIND_ATTN;
  }
  return v1::TRACE_KIND_UNSPECIFIED;
}

v1::SeverMode ToProto(SeverMode mode) {
  switch (mode) {
    case SeverMode::kNone:
      return v1::SEVER_MODE_NONE;
    case SeverMode::kMlp:
      return v1::SEVER_MODE_MLP;
    case SeverMode::kAttn:
      return v1::SEVER_MODE_ATTN;
  }
  return v1::SEVER_MODE_NONE;
}

v1::PositionClass ToProto(PositionClass position) {
  return static_cast<v1::PositionClass>(static_cast<int>(position) + 1);
}

v1::FactToken FactTokenToProto(const std::string& fact_token) {
  if (fact_token == "subject_first") return v1::FACT_TOKEN_SUBJECT_FIRST;
  if (fact_token == "subject_last") return v1::FACT_TOKEN_SUBJECT_LAST;
  if (fact_token == "last") return v1::FACT_TOKEN_LAST;
  return v1::FACT_TOKEN_UNSPECIFIED;
}

void ToProto(const TraceResult& result, double time_s, v1::TraceResponse* proto) {
  for (size_t t = 0; t < result.tokens.size(); ++t) {
    proto->add_tokens(t < result.token_texts.size() ? EscapeInvalidUtf8(result.token_texts[t])
                                                    : std::string());
    proto->add_token_ids(result.tokens[t]);
  }
  proto->set_subject_begin(static_cast<int32_t>(result.subject_begin));
  proto->set_subject_end(static_cast<int32_t>(result.subject_end));
  proto->set_answer(EscapeInvalidUtf8(result.answer_text));
  proto->set_answer_id(result.answer_token);
  proto->set_high_score(static_cast<float>(result.high_score));
  proto->set_low_score(static_cast<float>(result.low_score));
  proto->set_n_layer(static_cast<int32_t>(result.num_layers));
  for (const ScoreGrid& grid : result.scores) {
    v1::TraceGrid* out = proto->add_grids();
    out->set_kind(ToProto(grid.kind));
    out->set_window(grid.kind == TraceKind::kState ? 1 : static_cast<int32_t>(result.window));
    for (const std::vector<double>& row : grid.values) {
      for (double value : row) out->add_scores(static_cast<float>(value));
    }
  }
  proto->set_noise_sigma(static_cast<float>(result.noise_sigma));
  proto->set_time_s(time_s);
  proto->set_noise_basis(ToProto(result.noise_basis));
  proto->set_samples(static_cast<int32_t>(result.samples));
  proto->set_seed(result.seed);
  proto->set_sever(ToProto(result.sever));
  ToProto(result.cost, proto->mutable_cost());
}

void ToProto(const TraceFactSummary& summary, v1::TraceFactSummary* proto) {
  proto->set_index(static_cast<int32_t>(summary.index));
  proto->set_prompt(summary.fact.prompt);
  proto->set_subject(summary.fact.subject);
  proto->set_answer(EscapeInvalidUtf8(summary.answer_text));
  proto->set_high_score(static_cast<float>(summary.high_score));
  proto->set_low_score(static_cast<float>(summary.low_score));
}

void ToProto(const AggregateTable& table, v1::AveragedTraceTable* proto) {
  proto->set_num_facts(static_cast<int32_t>(table.num_facts));
  proto->set_n_layer(static_cast<int32_t>(table.num_layers));
  proto->set_window(static_cast<int32_t>(table.window));
  proto->set_mean_high(static_cast<float>(table.mean_high));
  proto->set_mean_low(static_cast<float>(table.mean_low));
  for (const KindTable& kind : table.kinds) {
    v1::KindEffects* out = proto->add_kinds();
    out->set_kind(ToProto(kind.kind));
    for (int c = 0; c < kNumPositionClasses; ++c) {
      v1::PositionClassEffects* row = out->add_classes();
      row->set_position(ToProto(static_cast<PositionClass>(c)));
      for (double value : kind.effect[c]) row->add_effect(static_cast<float>(value));
      row->set_count(kind.count[c]);
    }
  }
}

void ToProto(const SiteRecommendation& site, v1::EditSiteRecommendation* proto) {
  proto->set_fact_token(FactTokenToProto(site.fact_token));
  proto->set_position(ToProto(site.position));
  proto->set_layer(static_cast<int32_t>(site.layer));
  proto->set_effect(static_cast<float>(site.effect));
  proto->set_num_facts(static_cast<int32_t>(site.num_facts));
  proto->set_window(static_cast<int32_t>(site.window));
}

void ToProto(const TraceFactsResult& result, v1::TraceFactsResult* proto) {
  ToProto(result.table, proto->mutable_table());
  if (result.recommendation.has_value()) {
    ToProto(*result.recommendation, proto->mutable_recommendation());
  }
  proto->set_stored(result.stored);
  proto->set_time_s(result.time_s);
}

absl::StatusOr<TraceResult> TraceResultFromProto(const v1::TraceResponse& proto) {
  TraceResult result;
  const int64_t T = proto.tokens_size();
  const int64_t L = proto.n_layer();
  if (proto.token_ids_size() != 0 && proto.token_ids_size() != T) {
    return absl::InvalidArgumentError(absl::StrCat("the trace has ", T, " tokens but ",
                                                   proto.token_ids_size(), " token ids"));
  }
  for (int64_t t = 0; t < T; ++t) {
    result.token_texts.push_back(proto.tokens(t));
    result.tokens.push_back(proto.token_ids_size() == T ? proto.token_ids(t) : -1);
  }
  result.subject_begin = proto.subject_begin();
  result.subject_end = proto.subject_end();
  result.answer_token = proto.answer_id();
  result.answer_text = proto.answer();
  result.high_score = proto.high_score();
  result.low_score = proto.low_score();
  result.num_layers = L;
  result.samples = proto.samples();
  result.seed = proto.seed();
  result.noise_sigma = proto.noise_sigma();
  result.noise_basis = NoiseBasisFromProto(proto.noise_basis());
  ASSIGN_OR_RETURN(result.sever, SeverFromProto(proto.sever()));
  for (int g = 0; g < proto.grids_size(); ++g) {
    const v1::TraceGrid& grid = proto.grids(g);
    ASSIGN_OR_RETURN(TraceKind kind, KindFromProto(grid.kind(), g));
    if (grid.scores_size() != T * L) {
      return absl::InvalidArgumentError(absl::StrCat("grid ", g, " has ", grid.scores_size(),
                                                     " scores; expected ", T, " tokens x ", L,
                                                     " layers"));
    }
    ScoreGrid out{kind, std::vector<std::vector<double>>(T, std::vector<double>(L))};
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t l = 0; l < L; ++l) out.values[t][l] = grid.scores(t * L + l);
    }
    if (kind != TraceKind::kState) result.window = grid.window();
    result.scores.push_back(std::move(out));
  }
  result.cost = CostFromProto(proto.cost());
  return result;
}

absl::StatusOr<AggregateTable> AggregateTableFromProto(const v1::AveragedTraceTable& proto) {
  AggregateTable table;
  table.num_facts = proto.num_facts();
  table.num_layers = proto.n_layer();
  table.window = proto.window();
  table.mean_high = proto.mean_high();
  table.mean_low = proto.mean_low();
  for (int k = 0; k < proto.kinds_size(); ++k) {
    const v1::KindEffects& kind = proto.kinds(k);
    KindTable out;
    ASSIGN_OR_RETURN(out.kind, KindFromProto(kind.kind(), k));
    out.effect.assign(kNumPositionClasses, std::vector<double>(table.num_layers, 0.0));
    out.count.assign(kNumPositionClasses, 0);
    for (const v1::PositionClassEffects& row : kind.classes()) {
      ASSIGN_OR_RETURN(PositionClass position, PositionFromProto(row.position()));
      if (row.effect_size() != table.num_layers) {
        return absl::InvalidArgumentError(absl::StrCat(
            "a table row has ", row.effect_size(), " layers; expected ", table.num_layers));
      }
      const int c = static_cast<int>(position);
      out.effect[c].assign(row.effect().begin(), row.effect().end());
      out.count[c] = row.count();
    }
    table.kinds.push_back(std::move(out));
  }
  return table;
}

absl::StatusOr<SiteRecommendation> SiteRecommendationFromProto(
    const v1::EditSiteRecommendation& proto) {
  SiteRecommendation site;
  site.fact_token = FactTokenFromProto(proto.fact_token());
  if (site.fact_token.empty()) {
    return absl::InvalidArgumentError("the recommendation has no fact_token");
  }
  ASSIGN_OR_RETURN(site.position, PositionFromProto(proto.position()));
  site.layer = proto.layer();
  site.effect = proto.effect();
  site.num_facts = proto.num_facts();
  site.window = proto.window();
  return site;
}

}  // namespace romed
