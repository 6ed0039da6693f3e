#include "tests/model/reference_gpt2.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

namespace romed::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("reference: cannot open " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

ReferenceConfig ParseConfig(const std::string& text) {
  auto json = nlohmann::json::parse(text);
  ReferenceConfig config;
  config.vocab_size = json.at("vocab_size").get<int64_t>();
  config.n_positions = json.at("n_positions").get<int64_t>();
  config.n_embd = json.at("n_embd").get<int64_t>();
  config.n_layer = json.at("n_layer").get<int64_t>();
  config.n_head = json.at("n_head").get<int64_t>();
  config.n_inner = 4 * config.n_embd;
  if (json.contains("n_inner") && !json["n_inner"].is_null()) {
    config.n_inner = json["n_inner"].get<int64_t>();
  }
  if (json.contains("layer_norm_epsilon")) {
    config.layer_norm_epsilon = json["layer_norm_epsilon"].get<double>();
  }
  return config;
}

// safetensors: u64 little-endian header size N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}}, then the data.
std::map<std::string, std::vector<float>> ParseSafetensors(const std::string& bytes) {
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) {
    header_size = (header_size << 8) | static_cast<unsigned char>(bytes.at(i));
  }
  auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  const size_t data_start = 8 + header_size;
  std::map<std::string, std::vector<float>> tensors;
  for (auto& [name, info] : header.items()) {
    if (name == "__metadata__") continue;
    if (info.at("dtype") != "F32") throw std::runtime_error("reference: " + name + " is not F32");
    auto begin = info.at("data_offsets")[0].get<size_t>();
    auto end = info.at("data_offsets")[1].get<size_t>();
    if (data_start + end > bytes.size()) throw std::runtime_error("reference: truncated " + name);
    std::vector<float> data((end - begin) / sizeof(float));
    std::memcpy(data.data(), bytes.data() + data_start + begin, end - begin);
    std::string key = name;
    const std::string prefix = "transformer.";
    if (key.rfind(prefix, 0) == 0) key = key.substr(prefix.size());
    tensors[key] = std::move(data);
  }
  return tensors;
}

double GeluTanh(double x) {
  const double kSqrt2OverPi = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(kSqrt2OverPi * (x + 0.044715 * x * x * x)));
}

}  // namespace

ReferenceGpt2::ReferenceGpt2(ReferenceConfig config,
                             std::map<std::string, std::vector<float>> tensors)
    : config_(config), tensors_(std::move(tensors)) {}

ReferenceGpt2 ReferenceGpt2::LoadDir(const std::string& dir) {
  return ReferenceGpt2(ParseConfig(ReadFile(dir + "/config.json")),
                       ParseSafetensors(ReadFile(dir + "/model.safetensors")));
}

const std::vector<float>& ReferenceGpt2::Tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw std::runtime_error("reference: no tensor " + name);
  return it->second;
}

ReferenceGpt2::Matrix ReferenceGpt2::LayerNorm(const Matrix& x, const std::string& prefix) const {
  const auto& gain = Tensor(prefix + ".weight");
  const auto& shift = Tensor(prefix + ".bias");
  Matrix out = x;
  for (auto& row : out) {
    double mean = 0, var = 0;
    for (double v : row) mean += v;
    mean /= row.size();
    for (double v : row) var += (v - mean) * (v - mean);
    var /= row.size();
    const double inv = 1.0 / std::sqrt(var + config_.layer_norm_epsilon);
    for (size_t c = 0; c < row.size(); ++c) row[c] = (row[c] - mean) * inv * gain[c] + shift[c];
  }
  return out;
}

// y[t][o] = b[o] + sum_i x[t][i] * W[i][o], W stored [in, out].
ReferenceGpt2::Matrix ReferenceGpt2::Conv1D(const Matrix& x, const std::string& prefix,
                                            int64_t out) const {
  const auto& weight = Tensor(prefix + ".weight");
  const auto& bias = Tensor(prefix + ".bias");
  Matrix y(x.size(), std::vector<double>(out));
  for (size_t t = 0; t < x.size(); ++t) {
    for (int64_t o = 0; o < out; ++o) {
      double sum = bias[o];
      for (size_t i = 0; i < x[t].size(); ++i) sum += x[t][i] * weight[i * out + o];
      y[t][o] = sum;
    }
  }
  return y;
}

ReferenceGpt2::Matrix ReferenceGpt2::Attention(const Matrix& x, int64_t layer) const {
  const std::string prefix = "h." + std::to_string(layer) + ".";
  const int64_t C = config_.n_embd, H = config_.n_head, D = C / H;
  const int64_t T = static_cast<int64_t>(x.size());
  Matrix qkv = Conv1D(LayerNorm(x, prefix + "ln_1"), prefix + "attn.c_attn", 3 * C);
  Matrix context(T, std::vector<double>(C, 0.0));
  for (int64_t head = 0; head < H; ++head) {
    for (int64_t t = 0; t < T; ++t) {
      // Query t sees keys 0..t.
      std::vector<double> score(t + 1);
      double best = -1e300;
      for (int64_t s = 0; s <= t; ++s) {
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += qkv[t][head * D + d] * qkv[s][C + head * D + d];
        score[s] = dot / std::sqrt(static_cast<double>(D));
        best = std::max(best, score[s]);
      }
      double total = 0;
      for (auto& v : score) total += (v = std::exp(v - best));
      for (int64_t s = 0; s <= t; ++s) {
        for (int64_t d = 0; d < D; ++d) {
          context[t][head * D + d] += score[s] / total * qkv[s][2 * C + head * D + d];
        }
      }
    }
  }
  return Conv1D(context, prefix + "attn.c_proj", C);
}

ReferenceGpt2::Matrix ReferenceGpt2::Mlp(const Matrix& x, int64_t layer) const {
  const std::string prefix = "h." + std::to_string(layer) + ".";
  Matrix hidden = Conv1D(LayerNorm(x, prefix + "ln_2"), prefix + "mlp.c_fc", config_.n_inner);
  for (auto& row : hidden) {
    for (auto& v : row) v = GeluTanh(v);
  }
  return Conv1D(hidden, prefix + "mlp.c_proj", config_.n_embd);
}

std::vector<std::vector<float>> ReferenceGpt2::Logits(const std::vector<int64_t>& tokens) const {
  const int64_t C = config_.n_embd, V = config_.vocab_size;
  const auto& wte = Tensor("wte.weight");
  const auto& wpe = Tensor("wpe.weight");
  Matrix x(tokens.size(), std::vector<double>(C));
  for (size_t t = 0; t < tokens.size(); ++t) {
    for (int64_t c = 0; c < C; ++c) x[t][c] = double(wte[tokens[t] * C + c]) + wpe[t * C + c];
  }
  for (int64_t layer = 0; layer < config_.n_layer; ++layer) {
    Matrix attn = Attention(x, layer);
    for (size_t t = 0; t < x.size(); ++t) {
      for (int64_t c = 0; c < C; ++c) x[t][c] += attn[t][c];
    }
    Matrix mlp = Mlp(x, layer);
    for (size_t t = 0; t < x.size(); ++t) {
      for (int64_t c = 0; c < C; ++c) x[t][c] += mlp[t][c];
    }
  }
  Matrix final_x = LayerNorm(x, "ln_f");
  std::vector<std::vector<float>> logits(tokens.size(), std::vector<float>(V));
  for (size_t t = 0; t < tokens.size(); ++t) {
    for (int64_t v = 0; v < V; ++v) {
      double sum = 0;
      for (int64_t c = 0; c < C; ++c) sum += final_x[t][c] * wte[v * C + c];
      logits[t][v] = static_cast<float>(sum);
    }
  }
  return logits;
}

}  // namespace romed::testing
