#include "client/romectl_format.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace romed::client {
namespace {

using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// FINISH_REASON_LENGTH (of enum FinishReason) -> "length": the value's name
// without its type's UPPER_SNAKE prefix, in lower case.
std::string EnumWord(const EnumValueDescriptor& value) {
  std::string prefix;
  for (char c : value.type()->name()) {
    if (absl::ascii_isupper(c) && !prefix.empty()) prefix += '_';
    prefix += absl::ascii_toupper(c);
  }
  absl::StrAppend(&prefix, "_");
  absl::string_view name = value.name();
  if (absl::StartsWith(name, prefix)) name.remove_prefix(prefix.size());
  return absl::AsciiStrToLower(name);
}

nlohmann::json MessageToJson(const Message& message);

// One value of `field`; `index` < 0 for a singular field.
nlohmann::json FieldValueToJson(const Message& message, const FieldDescriptor& field, int index) {
  const Reflection& r = *message.GetReflection();
  const bool rep = index >= 0;
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return rep ? r.GetRepeatedInt32(message, &field, index) : r.GetInt32(message, &field);
    case FieldDescriptor::CPPTYPE_INT64:
      return rep ? r.GetRepeatedInt64(message, &field, index) : r.GetInt64(message, &field);
    case FieldDescriptor::CPPTYPE_UINT32:
      return rep ? r.GetRepeatedUInt32(message, &field, index) : r.GetUInt32(message, &field);
    case FieldDescriptor::CPPTYPE_UINT64:
      return rep ? r.GetRepeatedUInt64(message, &field, index) : r.GetUInt64(message, &field);
    case FieldDescriptor::CPPTYPE_FLOAT:
      return rep ? r.GetRepeatedFloat(message, &field, index) : r.GetFloat(message, &field);
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return rep ? r.GetRepeatedDouble(message, &field, index) : r.GetDouble(message, &field);
    case FieldDescriptor::CPPTYPE_BOOL:
      return rep ? r.GetRepeatedBool(message, &field, index) : r.GetBool(message, &field);
    case FieldDescriptor::CPPTYPE_STRING:
      return rep ? r.GetRepeatedString(message, &field, index) : r.GetString(message, &field);
    case FieldDescriptor::CPPTYPE_ENUM:
      return EnumWord(rep ? *r.GetRepeatedEnum(message, &field, index)
                          : *r.GetEnum(message, &field));
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return MessageToJson(rep ? r.GetRepeatedMessage(message, &field, index)
                               : r.GetMessage(message, &field));
  }
  return nullptr;
}

// map<K, V> -> {"K": V, ...}, keys in sorted order.
nlohmann::json MapToJson(const Message& message, const FieldDescriptor& field) {
  nlohmann::json out = nlohmann::json::object();
  const Reflection& r = *message.GetReflection();
  for (int i = 0; i < r.FieldSize(message, &field); ++i) {
    const Message& entry = r.GetRepeatedMessage(message, &field, i);
    const FieldDescriptor& key = *entry.GetDescriptor()->map_key();
    const FieldDescriptor& value = *entry.GetDescriptor()->map_value();
    nlohmann::json key_json = FieldValueToJson(entry, key, -1);
    const std::string key_text =
        key_json.is_string() ? key_json.get<std::string>() : key_json.dump();
    out[key_text] = FieldValueToJson(entry, value, -1);
  }
  return out;
}

// Every field, set or not, under its proto name.
nlohmann::json MessageToJson(const Message& message) {
  nlohmann::json out = nlohmann::json::object();
  const Reflection& r = *message.GetReflection();
  const auto& descriptor = *message.GetDescriptor();
  for (int f = 0; f < descriptor.field_count(); ++f) {
    const FieldDescriptor& field = *descriptor.field(f);
    nlohmann::json& slot = out[field.name()];
    if (field.is_map()) {
      slot = MapToJson(message, field);
    } else if (field.is_repeated()) {
      slot = nlohmann::json::array();
      for (int i = 0; i < r.FieldSize(message, &field); ++i) {
        slot.push_back(FieldValueToJson(message, field, i));
      }
    } else {
      slot = FieldValueToJson(message, field, -1);
    }
  }
  return out;
}

std::string Quoted(const std::string& text) { return DumpJson(nlohmann::json(text)); }

// Columns `text` takes in a terminal, counting one per UTF-8 code point
// (enough for vocabulary strings such as "Ġworld").
size_t DisplayWidth(absl::string_view text) {
  return std::count_if(text.begin(), text.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

// `text` padded with spaces to `width` display columns.
std::string PadRight(const std::string& text, size_t width) {
  const size_t shown = DisplayWidth(text);
  return shown >= width ? text : text + std::string(width - shown, ' ');
}

}  // namespace

nlohmann::json HealthToJson(ServingStatus status) {
  return {{"status", std::string(ServingStatusName(status))}};
}
nlohmann::json ModelInfoToJson(const romed::v1::ModelInfo& info) { return MessageToJson(info); }
nlohmann::json TokenizeToJson(const romed::v1::TokenizeResponse& r) { return MessageToJson(r); }
nlohmann::json GenerateToJson(const romed::v1::GenerateResponse& r) { return MessageToJson(r); }
nlohmann::json ScoreToJson(const romed::v1::ScoreResponse& r) { return MessageToJson(r); }
nlohmann::json ProtoToJson(const Message& message) { return MessageToJson(message); }

std::string DumpJson(const nlohmann::json& json) {
  return json.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string FinishReasonName(romed::v1::FinishReason reason) {
  const EnumValueDescriptor* value =
      romed::v1::FinishReason_descriptor()->FindValueByNumber(reason);
  return value == nullptr ? absl::StrCat(static_cast<int>(reason)) : EnumWord(*value);
}

std::string FormatModelInfo(const romed::v1::ModelInfo& info) {
  std::string out;
  auto line = [&out](absl::string_view key, absl::string_view value) {
    absl::StrAppendFormat(&out, "%-12s %s\n", key, value);
  };
  line("model",
       absl::StrFormat("%s: %d layers, d_model %d, %d heads, MLP width %d", info.architecture(),
                       info.n_layer(), info.n_embd(), info.n_head(), info.mlp_width()));
  line("vocabulary",
       absl::StrFormat("%d tokens, context %d", info.vocab_size(), info.context_length()));
  line("parameters", absl::StrCat(info.num_parameters()));
  line("model_dir", info.model_dir());
  line("checksum", info.checksum());
  line("numerics", absl::StrFormat("%s on %s, %d threads, BLAS %s", info.dtype(), info.device(),
                                   info.threads(), info.blas()));
  line("server", info.server_version());
  std::vector<std::string> limits;
  const nlohmann::json limits_json = MessageToJson(info.limits());
  for (const auto& limit : limits_json.items()) {
    limits.push_back(absl::StrCat(limit.key(), "=", limit.value().dump()));
  }
  line("limits", absl::StrJoin(limits, " "));
  std::vector<std::string> available;
  std::vector<std::pair<std::string, std::string>> unavailable;
  const std::map<std::string, std::string> rpc_status(info.rpc_status().begin(),
                                                      info.rpc_status().end());
  for (const auto& [rpc, why] : rpc_status) {
    if (why == "available") {
      available.push_back(rpc);
    } else {
      unavailable.emplace_back(rpc, why);
    }
  }
  line("available", absl::StrJoin(available, ", "));
  for (const auto& [rpc, why] : unavailable) line("unavailable", absl::StrCat(rpc, ": ", why));
  return out;
}

std::string FormatTokens(const romed::v1::TokenizeResponse& response) {
  std::string out;
  for (int i = 0; i < response.ids_size(); ++i) {
    const std::string token = i < response.tokens_size() ? Quoted(response.tokens(i)) : "";
    absl::StrAppendFormat(&out, "%4d %8d  %s\n", i, response.ids(i), token);
  }
  absl::StrAppend(&out, response.ids_size(), " tokens\n");
  return out;
}

std::string FormatScores(const romed::v1::ScoreResponse& response) {
  std::string out = absl::StrCat("prompt: ", response.prompt_tokens(), " tokens\n");
  for (const romed::v1::ContinuationScore& score : response.scores()) {
    absl::StrAppendFormat(&out, "\n%s: total %.4f, mean %.4f over %d tokens\n",
                          Quoted(score.continuation()), score.total_logprob(), score.mean_logprob(),
                          score.ids_size());
    std::vector<std::string> tokens;
    size_t width = 5;  // "token"
    for (int i = 0; i < score.ids_size(); ++i) {
      tokens.push_back(i < score.tokens_size() ? Quoted(score.tokens(i)) : "");
      width = std::max(width, DisplayWidth(tokens.back()));
    }
    absl::StrAppendFormat(&out, "  %s %8s %10s\n", PadRight("token", width), "id", "logprob");
    for (int i = 0; i < score.ids_size(); ++i) {
      const double logprob = i < score.token_logprobs_size() ? score.token_logprobs(i) : 0.0;
      absl::StrAppendFormat(&out, "  %s %8d %10.4f\n", PadRight(tokens[i], width), score.ids(i),
                            logprob);
    }
  }
  return out;
}

std::string FormatError(const absl::Status& status) {
  return absl::StrCat("error: ", absl::StatusCodeToString(status.code()), ": ", status.message());
}

}  // namespace romed::client
