// Gpt2Weights: every parameter tensor of a GPT-2 model, and the table that
// maps them to Hugging Face checkpoint names.
//
// Layout (stated, never guessed from shapes): Hugging Face GPT-2 stores
// c_attn, c_proj (attention and MLP) and c_fc as "Conv1D", whose weight is
// [in, out] -- the transpose of torch.nn.Linear. romed keeps that layout in
// memory, so a projection is `x.matmul(w) + b`.
#ifndef ROMED_SERVER_MODEL_GPT2_WEIGHTS_H_
#define ROMED_SERVER_MODEL_GPT2_WEIGHTS_H_

#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "server/model/gpt2_config.h"

namespace romed {

struct Gpt2LayerWeights {
  torch::Tensor ln_1_weight, ln_1_bias;  // [C], [C]
  torch::Tensor attn_weight;             // [C, 3C] Conv1D  (h.{l}.attn.c_attn)
  torch::Tensor attn_bias;               // [3C]
  torch::Tensor attn_proj_weight;        // [C, C]  Conv1D  (h.{l}.attn.c_proj)
  torch::Tensor attn_proj_bias;          // [C]
  torch::Tensor ln_2_weight, ln_2_bias;  // [C], [C]
  torch::Tensor mlp_fc_weight;           // [C, M]  Conv1D  (h.{l}.mlp.c_fc)
  torch::Tensor mlp_fc_bias;             // [M]
  torch::Tensor mlp_proj_weight;         // [M, C]  Conv1D  (h.{l}.mlp.c_proj) = ROME's W_proj^T
  torch::Tensor mlp_proj_bias;           // [C]
};

struct Gpt2Weights {
  torch::Tensor wte;                     // [V, C] token embeddings; tied to the LM head
  torch::Tensor wpe;                     // [P, C] position embeddings
  std::vector<Gpt2LayerWeights> layers;  // L entries
  torch::Tensor ln_f_weight, ln_f_bias;  // [C], [C]

  // One row of the name table: HF name without the "transformer." prefix,
  // the member it binds to, and its expected shape under `config`.
  struct Entry {
    std::string name;                // e.g. "h.3.mlp.c_proj.weight"
    torch::Tensor* tensor;           // points into *this
    std::vector<int64_t> shape;      // expected
    bool conv1d = false;             // stored [in, out] (HF Conv1D), not [out, in]
  };
  // Every parameter with its HF name and expected shape. `layers` must
  // already hold config.n_layer entries (see Allocate()).
  std::vector<Entry> Table(const Gpt2Config& config);

  // Sizes `layers` to config.n_layer (tensors left undefined).
  void Allocate(const Gpt2Config& config);

  // Checks every tensor is defined and has the shape in Table(); one dtype
  // and device throughout. InvalidArgumentError naming the tensor otherwise.
  absl::Status Validate(const Gpt2Config& config) const;

  // Randomly initialised weights in GPT-2's scheme (normal(0, 0.02); residual
  // projections scaled by 1/sqrt(2L); LayerNorm 1/0; biases 0), seeded.
  static Gpt2Weights Random(const Gpt2Config& config, uint64_t seed);

  // Same tensors converted to `dtype` on `device`.
  Gpt2Weights To(torch::Device device, torch::Dtype dtype) const;

  // (HF name, tensor) pairs in table order, for writing a checkpoint.
  std::vector<std::pair<std::string, torch::Tensor>> Named(const Gpt2Config& config) const;

  // All parameter tensors (for an optimiser when training).
  std::vector<torch::Tensor> Parameters();

  int64_t NumParameters() const;
};

// "[768,2304]": how shapes appear in every error message of server/model.
std::string ShapeToString(const std::vector<int64_t>& shape);

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_GPT2_WEIGHTS_H_
