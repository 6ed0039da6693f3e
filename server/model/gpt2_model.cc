#include "server/model/gpt2_model.h"

#include <cmath>
#include <limits>
#include <map>
#include <utility>
#include <vector>

namespace romed {
namespace {

// Notation (gpt2_config.h): B rows, T this call's positions, T_past cached
// positions, K = T_past + T key positions, C, H, D, M, V.

// What one forward call knows besides the weights.
struct Pass {
  int64_t batch = 0;     // B
  int64_t length = 0;    // T
  int64_t past = 0;      // T_past
  torch::Tensor blocked;  // [B, 1, T, K] bool: true where a query may not look; undefined = none
  const Interventions* interventions = nullptr;
  KvCache* cache = nullptr;
  // Edit views to apply, each to `rows` [B'] (undefined = every row).
  struct EditGroup {
    const EditView* view;
    torch::Tensor rows;
  };
  std::vector<EditGroup> edits;
};

torch::Tensor RunHooks(const Pass& pass, HookPoint point, int64_t layer, torch::Tensor x) {
  if (pass.interventions == nullptr) return x;
  HookAddress address{point, layer};
  if (!pass.interventions->Has(address)) return x;
  return pass.interventions->Apply(address, std::move(x));
}

// x [B, T, in] times a Conv1D weight [in, out] plus bias [out] -> [B, T, out].
// A single row (batch-1 decoding) goes through GEMV: OpenBLAS's GEMM packs
// the whole weight first and runs ~4x slower for one row.
torch::Tensor Conv1D(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(1);
  torch::Tensor rows = x.reshape({-1, weight.size(0)});  // [B*T, in]
  if (rows.size(0) == 1) return torch::addmv(bias, weight.t(), rows[0]).view(sizes);
  return torch::addmm(bias, rows, weight).view(sizes);
}

// Tied LM head: x [N, C] -> logits [N, V] = x wte^T (wte [V, C]).
torch::Tensor LmHead(const torch::Tensor& x, const torch::Tensor& wte) {
  if (x.size(0) == 1) return torch::mv(wte, x[0]).unsqueeze(0);
  return torch::mm(x, wte.t());
}

torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& weight,
                        const torch::Tensor& bias, double eps) {
  return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
}

// Position ids [B, T]: count of real tokens before each position, starting
// at `start` [B] (the cache's next position). Padding gets a valid id whose
// output is never used.
torch::Tensor PositionIds(const torch::Tensor& mask, const torch::Tensor& start) {
  return (start.unsqueeze(1) + mask.cumsum(1) - 1).clamp_min(0);
}

// [B, 1, T, K] true where query t of row b must not see key j: j is padding,
// or j lies after the query (K = past + T). Undefined if nothing is blocked.
torch::Tensor BlockedKeys(const torch::Tensor& key_mask, int64_t length, int64_t past,
                          bool all_real) {
  const int64_t keys = past + length;
  if (all_real && length == 1) return torch::Tensor();
  auto options = torch::TensorOptions().dtype(torch::kBool).device(key_mask.device());
  // future[t][j] = j > past + t.
  torch::Tensor future = torch::ones({length, keys}, options).triu(past + 1);
  if (all_real) return future.view({1, 1, length, keys});
  torch::Tensor padding = key_mask.eq(0).view({key_mask.size(0), 1, 1, keys});
  return future.view({1, 1, length, keys}).logical_or(padding);
}

// Softmax over keys with blocked scores removed. A row with every key
// blocked (a padding query) gets a uniform, finite distribution.
torch::Tensor MaskedSoftmax(torch::Tensor scores, const torch::Tensor& blocked) {
  if (blocked.defined()) {
    scores = scores.masked_fill(blocked, std::numeric_limits<float>::lowest());
  }
  if (scores.scalar_type() == torch::kFloat32 || scores.scalar_type() == torch::kFloat64) {
    return torch::softmax(scores, -1);
  }
  return torch::softmax(scores, -1, torch::kFloat32).to(scores.scalar_type());
}

// Appends this call's keys or values [B, H, T, D] to the cache's and returns
// everything attended to: [B, H, K, D].
torch::Tensor AppendToCache(std::vector<torch::Tensor>& cached, int64_t layer,
                            const torch::Tensor& fresh) {
  if (cached.size() <= static_cast<size_t>(layer)) cached.resize(layer + 1);
  torch::Tensor& slot = cached[layer];
  slot = slot.defined() ? torch::cat({slot, fresh}, 2) : fresh.contiguous();
  return slot;
}

// Causal self-attention of block `layer` on h [B, T, C] -> [B, T, C].
torch::Tensor Attention(const Gpt2Config& config, const Gpt2LayerWeights& w, int64_t layer,
                        const torch::Tensor& h, const Pass& pass) {
  const int64_t B = pass.batch, T = pass.length, H = config.n_head, D = config.head_width();
  // [B, T, 3C] -> [3, B, H, T, D]
  torch::Tensor qkv = Conv1D(h, w.attn_weight, w.attn_bias).view({B, T, 3, H, D});
  qkv = qkv.permute({2, 0, 3, 1, 4});
  torch::Tensor q = qkv[0] * (1.0 / std::sqrt(static_cast<double>(D)));  // [B, H, T, D]
  torch::Tensor k = qkv[1], v = qkv[2];
  if (pass.cache != nullptr) {
    k = AppendToCache(pass.cache->keys, layer, k);    // [B, H, K, D]
    v = AppendToCache(pass.cache->values, layer, v);  // [B, H, K, D]
  }
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1));  // [B, H, T, K]
  torch::Tensor context = torch::matmul(MaskedSoftmax(scores, pass.blocked), v);  // [B, H, T, D]
  context = context.transpose(1, 2).reshape({B, T, H * D});
  return Conv1D(context, w.attn_proj_weight, w.attn_proj_bias);
}

// GPT-2's gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
torch::Tensor GeluNew(const torch::Tensor& x) { return torch::gelu(x, "tanh"); }

// Adds each edit group's rank-one terms for `key` [B, T, M] to `out` [B, T, C].
torch::Tensor AddRowEdits(const Pass& pass, int64_t layer, const torch::Tensor& key,
                          torch::Tensor out) {
  for (const Pass::EditGroup& group : pass.edits) {
    if (!group.view->HasLayer(layer)) continue;
    if (!group.rows.defined()) {
      out = out + group.view->Contribution(layer, key);
    } else {
      torch::Tensor term = group.view->Contribution(layer, key.index_select(0, group.rows));
      out = out.index_add(0, group.rows, term);
    }
  }
  return out;
}

// The MLP of block `layer` on the residual x [B, T, C] -> [B, T, C].
torch::Tensor Mlp(const Gpt2Config& config, const Gpt2LayerWeights& w, int64_t layer,
                  const torch::Tensor& x, const Pass& pass) {
  torch::Tensor h = LayerNorm(x, w.ln_2_weight, w.ln_2_bias, config.layer_norm_epsilon);
  torch::Tensor key = GeluNew(Conv1D(h, w.mlp_fc_weight, w.mlp_fc_bias));  // [B, T, M]
  key = RunHooks(pass, HookPoint::kMlpIn, layer, std::move(key));
  torch::Tensor out = Conv1D(key, w.mlp_proj_weight, w.mlp_proj_bias);  // [B, T, C]
  out = AddRowEdits(pass, layer, key, std::move(out));
  return RunHooks(pass, HookPoint::kMlpOut, layer, std::move(out));
}

// One pre-LayerNorm block on x [B, T, C] -> [B, T, C].
torch::Tensor Block(const Gpt2Config& config, const Gpt2LayerWeights& w, int64_t layer,
                    torch::Tensor x, const Pass& pass) {
  x = RunHooks(pass, HookPoint::kResidPre, layer, std::move(x));
  torch::Tensor h = LayerNorm(x, w.ln_1_weight, w.ln_1_bias, config.layer_norm_epsilon);
  torch::Tensor attn = RunHooks(pass, HookPoint::kAttnOut, layer, Attention(config, w, layer, h, pass));
  x = x + attn;
  x = x + Mlp(config, w, layer, x, pass);
  return RunHooks(pass, HookPoint::kResidPost, layer, std::move(x));
}

// Groups rows by edit view. One view over every row needs no index_select.
std::vector<Pass::EditGroup> PlanRowEdits(const RowEdits* edits, int64_t batch,
                                          torch::Device device) {
  std::vector<Pass::EditGroup> groups;
  if (edits == nullptr || edits->views.empty()) return groups;
  auto usable = [&](int index) {
    return index >= 0 && edits->views[index] != nullptr && !edits->views[index]->empty();
  };
  if (edits->row_view.empty()) {
    if (usable(0)) groups.push_back({edits->views[0].get(), torch::Tensor()});
    return groups;
  }
  TORCH_CHECK(static_cast<int64_t>(edits->row_view.size()) == batch, "RowEdits: row_view has ",
              edits->row_view.size(), " entries for ", batch, " rows");
  std::map<int, std::vector<int64_t>> rows_by_view;
  for (int64_t row = 0; row < batch; ++row) {
    int index = edits->row_view[row];
    TORCH_CHECK(index < static_cast<int>(edits->views.size()), "RowEdits: row ", row,
                " names view ", index, " of ", edits->views.size());
    if (usable(index)) rows_by_view[index].push_back(row);
  }
  for (auto& [index, rows] : rows_by_view) {
    torch::Tensor row_index;
    if (static_cast<int64_t>(rows.size()) < batch) {
      row_index = torch::tensor(rows, torch::kInt64).to(device);
    }
    groups.push_back({edits->views[index].get(), row_index});
  }
  return groups;
}

}  // namespace

Gpt2Model::Gpt2Model(Gpt2Config config, Gpt2Weights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {
  absl::Status config_status = config_.Validate();
  TORCH_CHECK(config_status.ok(), "Gpt2Model: ", config_status.ToString());
  absl::Status status = weights_.Validate(config_);
  TORCH_CHECK(status.ok(), "Gpt2Model: ", status.ToString());
}

torch::Tensor Gpt2Model::Forward(const ForwardInput& input, const ForwardOptions& options) const {
  const torch::Tensor& tokens = input.tokens;  // [B, T]
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(1) > 0, "Forward: tokens must be [B, T], got ",
              tokens.sizes());
  TORCH_CHECK(options.cache == nullptr || options.stop_after_layer < 0,
              "Forward: stop_after_layer cannot be combined with a KV cache");
  Pass pass;
  pass.batch = tokens.size(0);
  pass.length = tokens.size(1);
  pass.interventions = options.interventions;
  pass.cache = options.cache;
  KvCache* cache = options.cache;
  pass.past = cache != nullptr ? cache->length() : 0;
  TORCH_CHECK(pass.past + pass.length <= config_.n_positions, "Forward: ", pass.past, " cached + ",
              pass.length, " new positions exceed the context of ", config_.n_positions);

  torch::Tensor mask = input.attention_mask.defined()
                           ? input.attention_mask.to(device(), torch::kInt64)
                           : torch::ones({pass.batch, pass.length},
                                         torch::TensorOptions().dtype(torch::kInt64).device(device()));
  TORCH_CHECK(mask.sizes() == tokens.sizes(), "Forward: attention_mask ", mask.sizes(),
              " does not match tokens ", tokens.sizes());
  torch::Tensor start = torch::zeros({pass.batch}, mask.options());
  torch::Tensor key_mask = mask;  // [B, K]
  if (pass.past > 0) {
    TORCH_CHECK(cache->mask.size(0) == pass.batch, "Forward: cache holds ", cache->mask.size(0),
                " rows, input has ", pass.batch);
    start = cache->next_position;
    key_mask = torch::cat({cache->mask, mask}, 1);
  }
  bool all_real = !input.attention_mask.defined() && pass.past == 0
                      ? true
                      : key_mask.all().item<bool>();
  pass.blocked = BlockedKeys(key_mask, pass.length, pass.past, all_real);
  pass.edits = PlanRowEdits(options.edits, pass.batch, device());

  torch::Tensor x = torch::embedding(weights_.wte, tokens.to(device()));  // [B, T, C]
  x = RunHooks(pass, HookPoint::kEmbed, 0, std::move(x));
  x = x + torch::embedding(weights_.wpe, PositionIds(mask, start));
  const int64_t last_layer =
      options.stop_after_layer >= 0 ? std::min(options.stop_after_layer, config_.n_layer - 1)
                                    : config_.n_layer - 1;
  for (int64_t layer = 0; layer <= last_layer; ++layer) {
    x = Block(config_, weights_.layers[layer], layer, std::move(x), pass);
  }
  if (cache != nullptr) {
    cache->mask = key_mask;
    cache->next_position = start + mask.sum(1);
  }
  if (options.stop_after_layer >= 0) return torch::Tensor();

  if (options.last_position_logits) x = x.narrow(1, pass.length - 1, 1);  // [B, 1, C]
  x = LayerNorm(x, weights_.ln_f_weight, weights_.ln_f_bias, config_.layer_norm_epsilon);
  return LmHead(x.reshape({-1, config_.n_embd}), weights_.wte)
      .view({pass.batch, x.size(1), config_.vocab_size});
}

}  // namespace romed
