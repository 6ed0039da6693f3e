// ReferenceGpt2: an independent GPT-2 forward pass for golden tests.
//
// It shares no code with server/model: it reads config.json and
// model.safetensors itself (float32 only) and computes with plain loops over
// float arrays, accumulating in double. It is slow and handles one unpadded
// sequence at a time; that is the point. Weights are addressed by their
// Hugging Face names ("h.0.attn.c_attn.weight", Conv1D layout [in, out]).
#ifndef ROMED_TESTS_MODEL_REFERENCE_GPT2_H_
#define ROMED_TESTS_MODEL_REFERENCE_GPT2_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace romed::testing {

struct ReferenceConfig {
  int64_t vocab_size = 0;   // V
  int64_t n_positions = 0;  // P
  int64_t n_embd = 0;       // C
  int64_t n_layer = 0;      // L
  int64_t n_head = 0;       // H
  int64_t n_inner = 0;      // M (4C when config.json says null)
  double layer_norm_epsilon = 1e-5;
};

class ReferenceGpt2 {
 public:
  // `tensors` maps HF names (no "transformer." prefix) to row-major data.
  ReferenceGpt2(ReferenceConfig config, std::map<std::string, std::vector<float>> tensors);

  // Reads `dir`/config.json and `dir`/model.safetensors (F32 tensors, names
  // with or without "transformer."). Throws std::runtime_error on anything
  // unexpected.
  static ReferenceGpt2 LoadDir(const std::string& dir);

  const ReferenceConfig& config() const { return config_; }

  // Logits [T][V] for one sequence of real tokens (positions 0..T-1).
  std::vector<std::vector<float>> Logits(const std::vector<int64_t>& tokens) const;

 private:
  using Matrix = std::vector<std::vector<double>>;  // [rows][cols]

  const std::vector<float>& Tensor(const std::string& name) const;
  Matrix LayerNorm(const Matrix& x, const std::string& prefix) const;
  Matrix Conv1D(const Matrix& x, const std::string& prefix, int64_t out) const;
  Matrix Attention(const Matrix& x, int64_t layer) const;
  Matrix Mlp(const Matrix& x, int64_t layer) const;

  ReferenceConfig config_;
  std::map<std::string, std::vector<float>> tensors_;
};

}  // namespace romed::testing

#endif  // ROMED_TESTS_MODEL_REFERENCE_GPT2_H_
