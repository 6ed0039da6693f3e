// Conversions between romed.v1 messages and the Engine's types
// (server/engine/engine_types.h). Pure data mapping; proto defaults are
// resolved here (top_p 0 means 1), every range check is the engine's.
#ifndef ROMED_SERVER_SERVICE_PROTO_CONVERT_H_
#define ROMED_SERVER_SERVICE_PROTO_CONVERT_H_

#include <cstdint>
#include <string>

#include "romed/v1/model_editor.pb.h"
#include "server/engine/engine_types.h"
#include "server/model/generator.h"

namespace romed {

SamplingParams FromProto(const v1::SamplingParams& proto);
TextGenerateRequest FromProto(const v1::GenerateRequest& proto);
TextScoreRequest FromProto(const v1::ScoreRequest& proto);

v1::FinishReason ToProto(FinishReason reason);
void ToProto(const GenerateResult& result, v1::GenerateResponse* proto);
void ToProto(const ScoreResult& result, v1::ScoreResponse* proto);
void ToProto(const TokenizeResult& result, v1::TokenizeResponse* proto);

// Server-level facts the engine does not know.
struct ServerFacts {
  int64_t max_receive_message_bytes = 0;
  std::string server_version;
};
// Fills everything, including rpc_status (rpc_availability.h).
void ToProto(const EngineInfo& info, const ServerFacts& facts, v1::ModelInfo* proto);

}  // namespace romed

#endif  // ROMED_SERVER_SERVICE_PROTO_CONVERT_H_
