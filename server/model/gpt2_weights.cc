#include "server/model/gpt2_weights.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace romed {
namespace {

// How Random() initialises a parameter (GPT-2 / HF GPT2PreTrainedModel).
enum class Init {
  kNormal,          // normal(0, 0.02)
  kResidualNormal,  // normal(0, 0.02 / sqrt(2L)): projections into the residual stream
  kOnes,            // LayerNorm gain
  kZeros,           // biases, LayerNorm shift
};

constexpr double kInitializerRange = 0.02;

// Calls fn(name, tensor, shape, conv1d, init) for every parameter in table
// order. `Weights` is Gpt2Weights or const Gpt2Weights; `layers` must hold
// config.n_layer entries.
template <typename Weights, typename Fn>
void VisitParameters(Weights& w, const Gpt2Config& config, Fn&& fn) {
  const int64_t V = config.vocab_size, P = config.n_positions, C = config.n_embd;
  const int64_t M = config.mlp_width();
  constexpr bool kConv1D = true, kPlain = false;
  fn("wte.weight", w.wte, std::vector<int64_t>{V, C}, kPlain, Init::kNormal);
  fn("wpe.weight", w.wpe, std::vector<int64_t>{P, C}, kPlain, Init::kNormal);
  for (int64_t l = 0; l < config.n_layer; ++l) {
    auto& layer = w.layers[l];
    const std::string h = absl::StrCat("h.", l, ".");
    fn(h + "ln_1.weight", layer.ln_1_weight, std::vector<int64_t>{C}, kPlain, Init::kOnes);
    fn(h + "ln_1.bias", layer.ln_1_bias, std::vector<int64_t>{C}, kPlain, Init::kZeros);
    fn(h + "attn.c_attn.weight", layer.attn_weight, std::vector<int64_t>{C, 3 * C}, kConv1D,
       Init::kNormal);
    fn(h + "attn.c_attn.bias", layer.attn_bias, std::vector<int64_t>{3 * C}, kPlain, Init::kZeros);
    fn(h + "attn.c_proj.weight", layer.attn_proj_weight, std::vector<int64_t>{C, C}, kConv1D,
       Init::kResidualNormal);
    fn(h + "attn.c_proj.bias", layer.attn_proj_bias, std::vector<int64_t>{C}, kPlain, Init::kZeros);
    fn(h + "ln_2.weight", layer.ln_2_weight, std::vector<int64_t>{C}, kPlain, Init::kOnes);
    fn(h + "ln_2.bias", layer.ln_2_bias, std::vector<int64_t>{C}, kPlain, Init::kZeros);
    fn(h + "mlp.c_fc.weight", layer.mlp_fc_weight, std::vector<int64_t>{C, M}, kConv1D,
       Init::kNormal);
    fn(h + "mlp.c_fc.bias", layer.mlp_fc_bias, std::vector<int64_t>{M}, kPlain, Init::kZeros);
    fn(h + "mlp.c_proj.weight", layer.mlp_proj_weight, std::vector<int64_t>{M, C}, kConv1D,
       Init::kResidualNormal);
    fn(h + "mlp.c_proj.bias", layer.mlp_proj_bias, std::vector<int64_t>{C}, kPlain, Init::kZeros);
  }
  fn("ln_f.weight", w.ln_f_weight, std::vector<int64_t>{C}, kPlain, Init::kOnes);
  fn("ln_f.bias", w.ln_f_bias, std::vector<int64_t>{C}, kPlain, Init::kZeros);
}

torch::Tensor InitTensor(const std::vector<int64_t>& shape, Init init, double residual_std,
                         at::Generator& generator) {
  auto options = torch::TensorOptions().dtype(torch::kFloat32);
  switch (init) {
    case Init::kNormal:
      return torch::empty(shape, options).normal_(0.0, kInitializerRange, generator);
    case Init::kResidualNormal:
      return torch::empty(shape, options).normal_(0.0, residual_std, generator);
    case Init::kOnes:
      return torch::ones(shape, options);
    case Init::kZeros:
      return torch::zeros(shape, options);
  }
  return {};
}

}  // namespace

std::string ShapeToString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

void Gpt2Weights::Allocate(const Gpt2Config& config) {
  layers.assign(static_cast<size_t>(config.n_layer), Gpt2LayerWeights{});
}

std::vector<Gpt2Weights::Entry> Gpt2Weights::Table(const Gpt2Config& config) {
  std::vector<Entry> table;
  table.reserve(4 + 12 * static_cast<size_t>(config.n_layer));
  VisitParameters(*this, config,
                  [&](std::string name, torch::Tensor& tensor, std::vector<int64_t> shape,
                      bool conv1d, Init) {
                    table.push_back(Entry{std::move(name), &tensor, std::move(shape), conv1d});
                  });
  return table;
}

absl::Status Gpt2Weights::Validate(const Gpt2Config& config) const {
  if (static_cast<int64_t>(layers.size()) != config.n_layer) {
    return absl::InvalidArgumentError(absl::StrCat(
        "weights: ", layers.size(), " layers, config has n_layer ", config.n_layer));
  }
  absl::Status status;
  const torch::Tensor* first = nullptr;
  VisitParameters(*this, config,
                  [&](const std::string& name, const torch::Tensor& tensor,
                      const std::vector<int64_t>& shape, bool conv1d, Init) {
                    if (!status.ok()) return;
                    if (!tensor.defined()) {
                      status = absl::InvalidArgumentError(
                          absl::StrCat("weights: tensor \"", name, "\" is missing"));
                      return;
                    }
                    if (tensor.sizes().vec() != shape) {
                      status = absl::InvalidArgumentError(absl::StrCat(
                          "weights: tensor \"", name, "\" has shape ",
                          ShapeToString(tensor.sizes().vec()), ", expected ",
                          ShapeToString(shape), conv1d ? " (Conv1D layout [in, out])" : ""));
                      return;
                    }
                    if (first == nullptr) {
                      first = &tensor;
                    } else if (tensor.scalar_type() != first->scalar_type() ||
                               tensor.device() != first->device()) {
                      status = absl::InvalidArgumentError(absl::StrCat(
                          "weights: tensor \"", name, "\" is ",
                          c10::toString(tensor.scalar_type()), " on ", tensor.device().str(),
                          ", wte.weight is ", c10::toString(first->scalar_type()), " on ",
                          first->device().str()));
                    }
                  });
  return status;
}

Gpt2Weights Gpt2Weights::Random(const Gpt2Config& config, uint64_t seed) {
  torch::NoGradGuard no_grad;
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const double residual_std =
      kInitializerRange / std::sqrt(2.0 * static_cast<double>(config.n_layer));
  Gpt2Weights weights;
  weights.Allocate(config);
  VisitParameters(weights, config,
                  [&](const std::string&, torch::Tensor& tensor,
                      const std::vector<int64_t>& shape, bool, Init init) {
                    tensor = InitTensor(shape, init, residual_std, generator);
                  });
  return weights;
}

Gpt2Weights Gpt2Weights::To(torch::Device device, torch::Dtype dtype) const {
  auto convert = [&](const torch::Tensor& t) {
    return t.defined() ? t.to(device, dtype) : torch::Tensor();
  };
  Gpt2Weights out;
  out.wte = convert(wte);
  out.wpe = convert(wpe);
  out.ln_f_weight = convert(ln_f_weight);
  out.ln_f_bias = convert(ln_f_bias);
  out.layers.reserve(layers.size());
  for (const Gpt2LayerWeights& layer : layers) {
    Gpt2LayerWeights& o = out.layers.emplace_back();
    o.ln_1_weight = convert(layer.ln_1_weight);
    o.ln_1_bias = convert(layer.ln_1_bias);
    o.attn_weight = convert(layer.attn_weight);
    o.attn_bias = convert(layer.attn_bias);
    o.attn_proj_weight = convert(layer.attn_proj_weight);
    o.attn_proj_bias = convert(layer.attn_proj_bias);
    o.ln_2_weight = convert(layer.ln_2_weight);
    o.ln_2_bias = convert(layer.ln_2_bias);
    o.mlp_fc_weight = convert(layer.mlp_fc_weight);
    o.mlp_fc_bias = convert(layer.mlp_fc_bias);
    o.mlp_proj_weight = convert(layer.mlp_proj_weight);
    o.mlp_proj_bias = convert(layer.mlp_proj_bias);
  }
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> Gpt2Weights::Named(
    const Gpt2Config& config) const {
  std::vector<std::pair<std::string, torch::Tensor>> named;
  VisitParameters(*this, config,
                  [&](const std::string& name, const torch::Tensor& tensor,
                      const std::vector<int64_t>&, bool, Init) {
                    named.emplace_back(name, tensor);
                  });
  return named;
}

namespace {

// Tensor handles (shared storage) of every parameter; works on const weights.
template <typename Weights>
std::vector<torch::Tensor> AllTensors(Weights& w) {
  std::vector<torch::Tensor> params = {w.wte, w.wpe};
  for (const Gpt2LayerWeights& layer : w.layers) {
    params.insert(params.end(),
                  {layer.ln_1_weight, layer.ln_1_bias, layer.attn_weight, layer.attn_bias,
                   layer.attn_proj_weight, layer.attn_proj_bias, layer.ln_2_weight,
                   layer.ln_2_bias, layer.mlp_fc_weight, layer.mlp_fc_bias,
                   layer.mlp_proj_weight, layer.mlp_proj_bias});
  }
  params.push_back(w.ln_f_weight);
  params.push_back(w.ln_f_bias);
  return params;
}

}  // namespace

std::vector<torch::Tensor> Gpt2Weights::Parameters() { return AllTensors(*this); }

int64_t Gpt2Weights::NumParameters() const {
  int64_t total = 0;
  for (const torch::Tensor& t : AllTensors(*this)) {
    if (t.defined()) total += t.numel();
  }
  return total;
}

}  // namespace romed
