// Conversions between romed.v1.CompareRequest / CompareResponse and the
// Engine's compare types (server/engine/compare_types.h). Pure data mapping;
// proto defaults are resolved here (an unset variant is the original model,
// top_p 0 means 1); every range check is the engine's.
#ifndef ROMED_SERVER_SERVICE_PROTO_CONVERT_COMPARE_H_
#define ROMED_SERVER_SERVICE_PROTO_CONVERT_COMPARE_H_

#include "romed/v1/model_editor.pb.h"
#include "server/engine/compare_types.h"

namespace romed {

TextCompareRequest FromProto(const v1::CompareRequest& proto);

// `request` names the variants the response echoes.
void ToProto(const TextCompareRequest& request, const CompareResult& result,
             v1::CompareResponse* proto);

}  // namespace romed

#endif  // ROMED_SERVER_SERVICE_PROTO_CONVERT_COMPARE_H_
