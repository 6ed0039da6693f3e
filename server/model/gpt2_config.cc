#include "server/model/gpt2_config.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace romed {
namespace {

using Json = nlohmann::json;

absl::Status RequirePositive(const char* field, int64_t value) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be positive, got ", value));
}

// Reads integer `key` into `*out`. A missing key is an error only when
// `required`; a present key of the wrong type always is.
absl::Status ReadInt(const Json& json, const char* key, bool required, int64_t* out) {
  auto it = json.find(key);
  if (it == json.end() || (it->is_null() && !required)) {
    if (required) return absl::InvalidArgumentError(absl::StrCat("missing key \"", key, "\""));
    return absl::OkStatus();
  }
  if (!it->is_number_integer()) {
    return absl::InvalidArgumentError(
        absl::StrCat("key \"", key, "\" must be an integer, got ", it->dump()));
  }
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

absl::Status ReadDouble(const Json& json, const char* key, double* out) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat("key \"", key, "\" must be a number, got ", it->dump()));
  }
  *out = it->get<double>();
  return absl::OkStatus();
}

absl::Status ReadString(const Json& json, const char* key, std::string* out) {
  auto it = json.find(key);
  if (it == json.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("key \"", key, "\" must be a string, got ", it->dump()));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::StatusOr<Gpt2Config> ConfigFromParsedJson(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("top level must be a JSON object");
  Gpt2Config config;
  absl::Status status;
  status.Update(ReadInt(json, "vocab_size", /*required=*/true, &config.vocab_size));
  status.Update(ReadInt(json, "n_positions", /*required=*/true, &config.n_positions));
  status.Update(ReadInt(json, "n_embd", /*required=*/true, &config.n_embd));
  status.Update(ReadInt(json, "n_layer", /*required=*/true, &config.n_layer));
  status.Update(ReadInt(json, "n_head", /*required=*/true, &config.n_head));
  status.Update(ReadInt(json, "n_inner", /*required=*/false, &config.n_inner));
  status.Update(ReadDouble(json, "layer_norm_epsilon", &config.layer_norm_epsilon));
  status.Update(ReadInt(json, "bos_token_id", /*required=*/false, &config.bos_token_id));
  status.Update(ReadInt(json, "eos_token_id", /*required=*/false, &config.eos_token_id));
  status.Update(ReadString(json, "activation_function", &config.activation_function));
  if (!status.ok()) return status;
  return config;
}

}  // namespace

absl::Status Gpt2Config::Validate() const {
  absl::Status status;
  status.Update(RequirePositive("vocab_size", vocab_size));
  status.Update(RequirePositive("n_positions", n_positions));
  status.Update(RequirePositive("n_embd", n_embd));
  status.Update(RequirePositive("n_layer", n_layer));
  status.Update(RequirePositive("n_head", n_head));
  if (!status.ok()) return status;
  if (n_inner < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_inner must be >= 0 (0 means 4 * n_embd), got ", n_inner));
  }
  if (n_embd % n_head != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "n_head (", n_head, ") must divide n_embd (", n_embd, ")"));
  }
  if (!(layer_norm_epsilon > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer_norm_epsilon must be positive, got ", layer_norm_epsilon));
  }
  if (activation_function != "gelu_new") {
    return absl::InvalidArgumentError(absl::StrCat(
        "activation_function \"", activation_function,
        "\" is not supported (only \"gelu_new\")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Gpt2Config> Gpt2Config::FromJson(std::string_view json_text) {
  Json json = Json::parse(json_text.begin(), json_text.end(), /*cb=*/nullptr,
                          /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  return ConfigFromParsedJson(json);
}

std::string Gpt2Config::ToJson() const {
  // Key set and values as Hugging Face's GPT2Config.to_json_string() writes
  // them, so transformers' AutoModelForCausalLM loads the directory.
  Json json = {
      {"activation_function", activation_function},
      {"architectures", Json::array({"GPT2LMHeadModel"})},
      {"attn_pdrop", 0.1},
      {"bos_token_id", bos_token_id},
      {"embd_pdrop", 0.1},
      {"eos_token_id", eos_token_id},
      {"initializer_range", 0.02},
      {"layer_norm_epsilon", layer_norm_epsilon},
      {"model_type", "gpt2"},
      {"n_ctx", n_positions},
      {"n_embd", n_embd},
      {"n_head", n_head},
      {"n_inner", n_inner > 0 ? Json(n_inner) : Json(nullptr)},
      {"n_layer", n_layer},
      {"n_positions", n_positions},
      {"reorder_and_upcast_attn", false},
      {"resid_pdrop", 0.1},
      {"scale_attn_by_inverse_layer_idx", false},
      {"scale_attn_weights", true},
      {"summary_activation", nullptr},
      {"summary_first_dropout", 0.1},
      {"summary_proj_to_labels", true},
      {"summary_type", "cls_index"},
      {"summary_use_proj", true},
      {"use_cache", true},
      {"vocab_size", vocab_size},
  };
  return json.dump(2) + "\n";
}

absl::StatusOr<Gpt2Config> Gpt2Config::Preset(std::string_view name) {
  struct Shape {
    std::string_view name;
    int64_t n_embd, n_layer, n_head;
  };
  static constexpr Shape kPresets[] = {
      {"gpt2", 768, 12, 12},
      {"gpt2-medium", 1024, 24, 16},
      {"gpt2-large", 1280, 36, 20},
      {"gpt2-xl", 1600, 48, 25},
  };
  for (const Shape& shape : kPresets) {
    if (shape.name != name) continue;
    Gpt2Config config;  // defaults: V 50257, P 1024, M 4C
    config.n_embd = shape.n_embd;
    config.n_layer = shape.n_layer;
    config.n_head = shape.n_head;
    return config;
  }
  return absl::NotFoundError(absl::StrCat(
      "unknown GPT-2 preset \"", std::string(name), "\" (known: gpt2, gpt2-medium, gpt2-large, gpt2-xl)"));
}

}  // namespace romed
