// Conversions between the romed.v1 trace messages and the plain trace types
// (server/engine/trace_types.h, server/trace/trace_result.h,
// trace_aggregate.h), in both directions: the server fills responses from
// results, and romectl turns responses back into results to draw them with
// the same heatmap and table code. Its library (romed_trace_proto) links no
// libtorch.
//
// Request conversion maps enums and proto3 presence (unset window/samples/
// noise = nullopt, 0 stays 0 and is the engine's to reject); every range
// check is the engine's. Text the server sends is valid UTF-8 (token bytes
// that split a character are escaped as \xNN; token_ids stay exact).
#ifndef ROMED_SERVER_SERVICE_PROTO_CONVERT_TRACE_H_
#define ROMED_SERVER_SERVICE_PROTO_CONVERT_TRACE_H_

#include "absl/status/statusor.h"
#include "romed/v1/model_editor.pb.h"
#include "server/engine/trace_types.h"
#include "server/trace/trace_aggregate.h"
#include "server/trace/trace_result.h"

namespace romed {

// INVALID_ARGUMENT for TRACE_KIND_UNSPECIFIED or an enum value this server
// does not know (kinds, sever).
absl::StatusOr<TextTraceRequest> FromProto(const v1::TraceRequest& proto);
// n 0 = nullopt (the default); the options' errors as above.
absl::StatusOr<TextTraceFactsRequest> FromProto(const v1::TraceFactsRequest& proto);

v1::TraceKind ToProto(TraceKind kind);
v1::SeverMode ToProto(SeverMode mode);
v1::PositionClass ToProto(PositionClass position);
// Unknown fact tokens map to FACT_TOKEN_UNSPECIFIED.
v1::FactToken FactTokenToProto(const std::string& fact_token);

// `time_s`: the server's wall time for the trace.
void ToProto(const TraceResult& result, double time_s, v1::TraceResponse* proto);
void ToProto(const TraceFactSummary& summary, v1::TraceFactSummary* proto);
void ToProto(const AggregateTable& table, v1::AveragedTraceTable* proto);
void ToProto(const SiteRecommendation& site, v1::EditSiteRecommendation* proto);
void ToProto(const TraceFactsResult& result, v1::TraceFactsResult* proto);

// The other direction (romectl). INVALID_ARGUMENT for a response that does
// not fit together (grid sizes that are not tokens x n_layer, a class
// row of the wrong width, unknown enums).
absl::StatusOr<TraceResult> TraceResultFromProto(const v1::TraceResponse& proto);
absl::StatusOr<AggregateTable> AggregateTableFromProto(const v1::AveragedTraceTable& proto);
absl::StatusOr<SiteRecommendation> SiteRecommendationFromProto(
    const v1::EditSiteRecommendation& proto);

}  // namespace romed

#endif  // ROMED_SERVER_SERVICE_PROTO_CONVERT_TRACE_H_
