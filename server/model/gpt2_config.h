// Gpt2Config: the shape of a GPT-2 family model, as in Hugging Face's
// config.json (model_type "gpt2").
//
// Notation used across server/model: B batch rows, T positions, C = n_embd
// (d_model), H = n_head, D = C / H (head width), M = mlp width (n_inner, 4C
// by default), V = vocab_size, L = n_layer, P = n_positions (context).
#ifndef ROMED_SERVER_MODEL_GPT2_CONFIG_H_
#define ROMED_SERVER_MODEL_GPT2_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace romed {

struct Gpt2Config {
  int64_t vocab_size = 50257;     // V
  int64_t n_positions = 1024;     // P: longest sequence (prompt + generated)
  int64_t n_embd = 768;           // C
  int64_t n_layer = 12;           // L
  int64_t n_head = 12;            // H; must divide C
  int64_t n_inner = 0;            // M; 0 means 4 * C (HF's null)
  double layer_norm_epsilon = 1e-5;
  int64_t bos_token_id = 50256;
  int64_t eos_token_id = 50256;
  // Only "gelu_new" (tanh approximation, GPT-2's) is supported.
  std::string activation_function = "gelu_new";

  int64_t mlp_width() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  int64_t head_width() const { return n_embd / n_head; }

  // Checks internal consistency (positive sizes, H divides C, activation).
  // InvalidArgumentError naming the offending field otherwise.
  absl::Status Validate() const;

  // Parses config.json text. Unknown keys are ignored; missing keys take the
  // defaults above except n_embd/n_layer/n_head/vocab_size/n_positions, which
  // are required. Errors: InvalidArgumentError naming the key.
  static absl::StatusOr<Gpt2Config> FromJson(std::string_view json_text);

  // Serialises as a Hugging Face config.json (model_type gpt2,
  // architectures [GPT2LMHeadModel]) that transformers can load.
  std::string ToJson() const;

  // The published shapes: "gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl".
  // NotFoundError for any other name.
  static absl::StatusOr<Gpt2Config> Preset(std::string_view name);
};

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_GPT2_CONFIG_H_
