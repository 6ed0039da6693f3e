// Conversions between romed.v1 session / edit / statistics messages and the
// Engine's types (server/engine/edit_types.h, server/session/session_types.h).
// Pure data mapping; every range check is the engine's, except the shape
// errors only a proto can have (an unknown enum value, no Revert target),
// which are INVALID_ARGUMENT here.
#ifndef ROMED_SERVER_SERVICE_PROTO_CONVERT_SESSION_H_
#define ROMED_SERVER_SERVICE_PROTO_CONVERT_SESSION_H_

#include "absl/status/statusor.h"
#include "romed/v1/model_editor.pb.h"
#include "server/edit/covariance.h"
#include "server/engine/edit_types.h"
#include "server/session/session_registry.h"
#include "server/session/session_types.h"

namespace romed {

CreateSessionRequest FromProto(const v1::CreateSessionRequest& proto);
void ToProto(const SessionState& state, v1::Session* proto);

// INVALID_ARGUMENT for a fact_token value this server does not know.
absl::StatusOr<TextEditRequest> FromProto(const v1::EditRequest& proto);
void ToProto(const EditEntry& entry, v1::EditRecord* proto);

// INVALID_ARGUMENT when neither pop nor keep_up_to_id is set.
absl::StatusOr<RevertTarget> RevertTargetFromProto(const v1::RevertRequest& proto);

ComputeStatsRequest FromProto(const v1::ComputeStatsRequest& proto);
// A progress message (done unset) for one batch.
void ToProto(const CovarianceProgress& progress, v1::ComputeStatsProgress* proto);
// The last message (done set).
void ToProto(const ComputeStatsResult& result, v1::ComputeStatsProgress* proto);

}  // namespace romed

#endif  // ROMED_SERVER_SERVICE_PROTO_CONVERT_SESSION_H_
