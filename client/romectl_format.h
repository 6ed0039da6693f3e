// romectl's output: one JSON object per command for machines (--json), and
// text for people otherwise. Pure functions of the replies, so tests compare
// them with expected strings.
//
// JSON field names are the proto's field names; enums are lower-case words
// ("length", "SERVING" for health, as grpc.health.v1 spells it); 64-bit
// integers are JSON numbers (not strings as in proto3's JSON mapping).
#ifndef ROMED_CLIENT_ROMECTL_FORMAT_H_
#define ROMED_CLIENT_ROMECTL_FORMAT_H_

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "client/romed_client.h"
#include "romed/v1/model_editor.pb.h"

namespace romed::client {

// {"status": "SERVING"}
nlohmann::json HealthToJson(ServingStatus status);
// Every ModelInfo field, `limits` as an object, `rpc_status` as an object.
nlohmann::json ModelInfoToJson(const romed::v1::ModelInfo& info);
// {"ids": [...], "tokens": [...]}
nlohmann::json TokenizeToJson(const romed::v1::TokenizeResponse& response);
// {"text", "ids", "logprobs", "finish_reason", "prompt_tokens",
//  "time_to_first_token_s", "total_time_s"}
nlohmann::json GenerateToJson(const romed::v1::GenerateResponse& response);
// {"prompt_tokens", "scores": [{"continuation", "ids", "tokens",
//  "token_logprobs", "total_logprob", "mean_logprob"}, ...]}
nlohmann::json ScoreToJson(const romed::v1::ScoreResponse& response);

// Any message as above: every field under its proto name (session, edit,
// revert, edits and stats replies use this).
nlohmann::json ProtoToJson(const google::protobuf::Message& message);

// Serialises one JSON object on one line; invalid UTF-8 becomes U+FFFD
// instead of an exception.
std::string DumpJson(const nlohmann::json& json);

// "length", "stop", "eos", "cancelled", "unspecified".
std::string FinishReasonName(romed::v1::FinishReason reason);

// A readable multi-line summary: architecture and shape, numerics, limits,
// and which RPCs are available.
std::string FormatModelInfo(const romed::v1::ModelInfo& info);
// One line per token: position, id and the vocabulary string (quoted).
std::string FormatTokens(const romed::v1::TokenizeResponse& response);
// Per continuation: its total and mean log-prob, then a table of its tokens.
std::string FormatScores(const romed::v1::ScoreResponse& response);

// "error: INVALID_ARGUMENT: prompt is empty" (no trailing newline).
std::string FormatError(const absl::Status& status);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_FORMAT_H_
