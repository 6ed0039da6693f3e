#include "server/model/gpt2_model.h"

#include <ATen/Parallel.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <type_traits>
#include <utility>
#include <vector>

// at::parallel_for is inline: with libtorch's OpenMP pool its parallel
// branch is compiled only under -fopenmp; without it the decode kernels below
// would silently run on one thread (they did until 2026-11-27).
#if AT_PARALLEL_OPENMP && !defined(_OPENMP)
#error "compile with OpenMP (romed_torch links OpenMP::OpenMP_CXX): at::parallel_for is serial without it"
#endif

namespace romed {
namespace {

// Notation (gpt2_config.h): B rows, T this call's positions, T_past cached
// positions, K = T_past + T key positions, C, H, D, M, V.

// What one forward call knows besides the weights.
struct Pass {
  int64_t batch = 0;      // B
  int64_t length = 0;     // T
  int64_t past = 0;       // T_past
  torch::Tensor blocked;  // [B, 1, T, K] bool: true where a query may not look;
                          // undefined = none
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

// Decode-time matrix products for a few rows (1 <= N <= kMaxSmallRows). They
// read each weight once per call: OpenBLAS's sgemm packs the whole weight for
// M = 2..8 rows and ran at ~1.5 GB/s here. The projections of one row run
// here too (39-40 ms for gpt2-medium's 96 matrices against 43.5 ms for
// OpenBLAS's GEMV, bench/results/decode_cpu.md); the LM head of one row goes
// to GEMV (torch::mv), which was faster there. Used only without autograd,
// on contiguous fp32 CPU tensors with AVX2 and FMA; everything else goes
// through BLAS.
// Setting the environment variable ROMED_BLAS_DECODE=1 sends these through
// BLAS too (read on every call, so a benchmark can compare both in one
// process).
constexpr int64_t kMaxSmallRows = 8;

// Below this many weights a product runs on the calling thread: waking the
// pool (OMP_WAIT_POLICY=passive) costs more than the work (the fact model's
// 128 x 512 matrices).
constexpr int64_t kMinParallelWeights = int64_t{1} << 18;

// Whether rows [N, in] times `weight` may run the kernels below, for N in
// [min_rows, kMaxSmallRows].
bool UseSmallRowKernels(const torch::Tensor& rows, const torch::Tensor& weight, int64_t min_rows) {
  static const bool cpu_has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const char* blas_only = std::getenv("ROMED_BLAS_DECODE");
  return cpu_has_avx2 && (blas_only == nullptr || std::strcmp(blas_only, "1") != 0) &&
         rows.size(0) >= min_rows && rows.size(0) <= kMaxSmallRows && rows.device().is_cpu() &&
         weight.device().is_cpu() && rows.scalar_type() == torch::kFloat32 &&
         weight.scalar_type() == torch::kFloat32 && weight.is_contiguous() &&
         !(torch::GradMode::is_enabled() && (rows.requires_grad() || weight.requires_grad()));
}

// Weight rows per pass over the accumulators for N input rows: each
// accumulator vector is loaded and stored once per R FMAs, so the pass stays
// bound by reading w, not by accumulator traffic.
template <int N>
constexpr int PassRows() {
  return N <= 2 ? 8 : 4;
}

// acc[r * ld + j] += sum_{k in [k0, k1)} x[r * in + k] w[k * out + j] for
// every j < out; w row-major [in, out]. Reads rows k0..k1-1 of w as one
// contiguous stream.
template <int N>
__attribute__((target("avx2,fma"))) void AccumulateWeightRows(const float* x, const float* w,
                                                              int64_t in, int64_t out, int64_t k0,
                                                              int64_t k1, float* acc, int64_t ld) {
  constexpr int R = PassRows<N>();
  const int64_t vec_end = out - out % 8;
  int64_t k = k0;
  for (; k + R <= k1; k += R) {
    const float* wk = w + k * out;
    __m256 xk[N][R];
    for (int r = 0; r < N; ++r) {
      for (int q = 0; q < R; ++q) xk[r][q] = _mm256_broadcast_ss(x + r * in + k + q);
    }
    for (int64_t j = 0; j < vec_end; j += 8) {
      __m256 wv[R];
      for (int q = 0; q < R; ++q) wv[q] = _mm256_loadu_ps(wk + q * out + j);
      for (int r = 0; r < N; ++r) {
        // Two independent chains halve the FMA latency on the critical path.
        __m256 even = _mm256_mul_ps(xk[r][0], wv[0]);
        __m256 odd = _mm256_mul_ps(xk[r][1], wv[1]);
        for (int q = 2; q < R; q += 2) {
          even = _mm256_fmadd_ps(xk[r][q], wv[q], even);
          odd = _mm256_fmadd_ps(xk[r][q + 1], wv[q + 1], odd);
        }
        float* p = acc + r * ld + j;
        _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), _mm256_add_ps(even, odd)));
      }
    }
    for (int64_t j = vec_end; j < out; ++j) {
      for (int r = 0; r < N; ++r) {
        float sum = 0.0f;
        for (int q = 0; q < R; ++q) sum += x[r * in + k + q] * wk[q * out + j];
        acc[r * ld + j] += sum;
      }
    }
  }
  for (; k < k1; ++k) {
    const float* wk = w + k * out;
    for (int r = 0; r < N; ++r) {
      for (int64_t j = 0; j < out; ++j) acc[r * ld + j] += x[r * in + k] * wk[j];
    }
  }
}

// y [N, out] = x [N, in] w [in, out] + bias. The rows of w are split into one
// contiguous block per thread (a GEMV's access pattern: each thread streams
// its block once); each thread sums its block into its own accumulators
// [N, ld], then the partial sums and the bias are added into y. ld = out + 16
// keeps the N accumulator rows off the same cache sets when out is a
// multiple of 1024 (4 KiB aliasing cost 2x at N = 8).
template <int N>
void SmallRowsAddmm(const float* x, const float* w, const float* bias, float* y, int64_t in,
                    int64_t out) {
  constexpr int R = PassRows<N>();
  const int64_t ld = out + 16;
  const int64_t parts =
      in * out < kMinParallelWeights
          ? 1
          : std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), in / (8 * R)));
  const int64_t block = (in + parts * R - 1) / (parts * R) * R;  // rows of w per part
  // The caller's scratch; the pool's threads write into it through `partial`.
  thread_local std::vector<float> scratch;
  scratch.resize(static_cast<size_t>(parts * N * ld));
  float* partial = scratch.data();
  auto accumulate = [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      float* acc = partial + p * N * ld;
      std::fill(acc, acc + N * ld, 0.0f);
      const int64_t k0 = std::min(in, p * block), k1 = std::min(in, k0 + block);
      AccumulateWeightRows<N>(x, w, in, out, k0, k1, acc, ld);
    }
  };
  if (parts == 1) {
    accumulate(0, 1);
  } else {
    at::parallel_for(0, parts, 1, accumulate);
  }
  for (int r = 0; r < N; ++r) {
    float* yr = y + r * out;
    std::memcpy(yr, bias, out * sizeof(float));
    for (int64_t p = 0; p < parts; ++p) {
      const float* acc = partial + (p * N + r) * ld;
      for (int64_t j = 0; j < out; ++j) yr[j] += acc[j];
    }
  }
}

// logits[r, v] = sum_c x[r, c] wte[v, c] for v in [v0, v1); wte row-major [V,
// C]. U accumulators per row (independent FMA chains) for small N.
template <int N>
__attribute__((target("avx2,fma"))) void RowsDotVocab(const float* x, const float* wte,
                                                      float* logits, int64_t c_size, int64_t v_size,
                                                      int64_t v0, int64_t v1) {
  constexpr int U = N <= 4 ? 2 : 1;
  const int64_t vec_end = c_size - c_size % (8 * U);
  for (int64_t v = v0; v < v1; ++v) {
    const float* wv = wte + v * c_size;
    __m256 acc[N][U];
    for (int r = 0; r < N; ++r) {
      for (int u = 0; u < U; ++u) acc[r][u] = _mm256_setzero_ps();
    }
    for (int64_t c = 0; c < vec_end; c += 8 * U) {
      for (int u = 0; u < U; ++u) {
        const __m256 w8 = _mm256_loadu_ps(wv + c + 8 * u);
        for (int r = 0; r < N; ++r) {
          acc[r][u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * c_size + c + 8 * u), w8, acc[r][u]);
        }
      }
    }
    for (int r = 0; r < N; ++r) {
      __m256 sum8 = acc[r][0];
      for (int u = 1; u < U; ++u) sum8 = _mm256_add_ps(sum8, acc[r][u]);
      __m128 half = _mm_add_ps(_mm256_castps256_ps128(sum8), _mm256_extractf128_ps(sum8, 1));
      half = _mm_add_ps(half, _mm_movehl_ps(half, half));
      half = _mm_add_ss(half, _mm_movehdup_ps(half));
      float sum = _mm_cvtss_f32(half);
      for (int64_t c = vec_end; c < c_size; ++c) sum += x[r * c_size + c] * wv[c];
      logits[r * v_size + v] = sum;
    }
  }
}

template <int N>
void SmallRowsLmHead(const float* x, const float* wte, float* logits, int64_t c_size,
                     int64_t v_size) {
  // Vocabulary rows per task: at least kMinParallelWeights weights, so a
  // small head stays on the calling thread.
  const int64_t grain = std::max<int64_t>(256, kMinParallelWeights / c_size);
  at::parallel_for(0, v_size, grain, [&](int64_t begin, int64_t end) {
    RowsDotVocab<N>(x, wte, logits, c_size, v_size, begin, end);
  });
}

// Calls f.template operator()<N>() for the runtime N in [1, kMaxSmallRows].
template <typename F>
void DispatchRows(int64_t n, F&& f) {
  switch (n) {
    case 1:
      f(std::integral_constant<int, 1>());
      break;
    case 2:
      f(std::integral_constant<int, 2>());
      break;
    case 3:
      f(std::integral_constant<int, 3>());
      break;
    case 4:
      f(std::integral_constant<int, 4>());
      break;
    case 5:
      f(std::integral_constant<int, 5>());
      break;
    case 6:
      f(std::integral_constant<int, 6>());
      break;
    case 7:
      f(std::integral_constant<int, 7>());
      break;
    default:
      f(std::integral_constant<int, 8>());
      break;
  }
}

// x [B, T, in] times a Conv1D weight [in, out] plus bias [out] -> [B, T, out].
torch::Tensor Conv1D(const torch::Tensor& x, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  auto sizes = x.sizes().vec();
  sizes.back() = weight.size(1);
  torch::Tensor rows = x.reshape({-1, weight.size(0)});  // [B*T, in]
  if (!UseSmallRowKernels(rows, weight, /*min_rows=*/1) || !bias.is_contiguous() ||
      bias.scalar_type() != torch::kFloat32) {
    // One row through GEMV: OpenBLAS's GEMM packs the whole weight first.
    if (rows.size(0) == 1) return torch::addmv(bias, weight.t(), rows[0]).view(sizes);
    return torch::addmm(bias, rows, weight).view(sizes);
  }
  rows = rows.contiguous();
  torch::Tensor y = torch::empty({rows.size(0), weight.size(1)}, rows.options());
  DispatchRows(rows.size(0), [&](auto n) {
    SmallRowsAddmm<decltype(n)::value>(rows.data_ptr<float>(), weight.data_ptr<float>(),
                                       bias.data_ptr<float>(), y.data_ptr<float>(), weight.size(0),
                                       weight.size(1));
  });
  return y.view(sizes);
}

// Tied LM head: x [N, C] -> logits [N, V] = x wte^T (wte [V, C]).
torch::Tensor LmHead(const torch::Tensor& x, const torch::Tensor& wte) {
  if (!UseSmallRowKernels(x, wte, /*min_rows=*/2)) {
    if (x.size(0) == 1) return torch::mv(wte, x[0]).unsqueeze(0);
    return torch::mm(x, wte.t());
  }
  torch::Tensor rows = x.contiguous();
  torch::Tensor logits = torch::empty({rows.size(0), wte.size(0)}, rows.options());
  DispatchRows(rows.size(0), [&](auto n) {
    SmallRowsLmHead<decltype(n)::value>(rows.data_ptr<float>(), wte.data_ptr<float>(),
                                        logits.data_ptr<float>(), wte.size(1), wte.size(0));
  });
  return logits;
}

// Below this many elements libtorch's LayerNorm and batched matmuls run on
// the calling thread (SerialOpsGuard).
constexpr int64_t kMinParallelElements = int64_t{1} << 15;

// Runs the libtorch ops in its scope on the calling thread when `serial`.
// LayerNorm and bmm split rows / batches among threads with grain 1, so a
// 2-row decode step woke the pool for microseconds of work at every block
// (the fact model's 2-row step cost 1.6x a 1-row step; 1.2x on one thread).
// omp_set_num_threads sets this thread's OpenMP ICV only, so other threads'
// calls are unaffected.
class SerialOpsGuard {
 public:
  explicit SerialOpsGuard(bool serial) : saved_(serial ? omp_get_max_threads() : 0) {
    if (saved_ > 1) omp_set_num_threads(1);
  }
  ~SerialOpsGuard() {
    if (saved_ > 1) omp_set_num_threads(saved_);
  }
  SerialOpsGuard(const SerialOpsGuard&) = delete;
  SerialOpsGuard& operator=(const SerialOpsGuard&) = delete;

 private:
  int saved_;
};

torch::Tensor LayerNorm(const torch::Tensor& x, const torch::Tensor& weight,
                        const torch::Tensor& bias, double eps) {
  SerialOpsGuard serial(x.numel() < kMinParallelElements);
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
    // Written in place into the cache's buffers (kv_cache.h).
    pass.cache->Append(layer, k, v, config.n_positions);
    k = pass.cache->keys[layer];    // [B, H, K, D]
    v = pass.cache->values[layer];  // [B, H, K, D]
  }
  torch::Tensor scores, context;
  {
    SerialOpsGuard serial(B * H * T * k.size(2) * D < kMinParallelElements * 8);
    scores = torch::matmul(q, k.transpose(-2, -1));                          // [B, H, T, K]
    context = torch::matmul(MaskedSoftmax(scores, pass.blocked), v);         // [B, H, T, D]
  }
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
  torch::Tensor attn =
      RunHooks(pass, HookPoint::kAttnOut, layer, Attention(config, w, layer, h, pass));
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

  torch::Tensor mask =
      input.attention_mask.defined()
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
  bool all_real =
      !input.attention_mask.defined() && pass.past == 0 ? true : key_mask.all().item<bool>();
  pass.blocked = BlockedKeys(key_mask, pass.length, pass.past, all_real);
  pass.edits = PlanRowEdits(options.edits, pass.batch, device());

  TORCH_CHECK(options.start_layer >= 0 && options.start_layer < config_.n_layer,
              "Forward: start_layer ", options.start_layer, " is outside [0, ",
              config_.n_layer, ")");
  torch::Tensor x;
  if (options.start_layer == 0) {
    TORCH_CHECK(!options.start_hidden.defined(),
                "Forward: start_hidden is only used with start_layer > 0");
    x = torch::embedding(weights_.wte, tokens.to(device()));  // [B, T, C]
    x = RunHooks(pass, HookPoint::kEmbed, 0, std::move(x));
    x = x + torch::embedding(weights_.wpe, PositionIds(mask, start));
  } else {
    TORCH_CHECK(options.start_hidden.defined() && options.start_hidden.dim() == 3 &&
                    options.start_hidden.size(0) == pass.batch &&
                    options.start_hidden.size(1) == pass.length &&
                    options.start_hidden.size(2) == config_.n_embd,
                "Forward: start_hidden must be [", pass.batch, ", ", pass.length, ", ",
                config_.n_embd, "] to start at layer ", options.start_layer, ", got ",
                options.start_hidden.defined() ? options.start_hidden.sizes()
                                               : torch::IntArrayRef{});
    x = options.start_hidden.to(device(), dtype());
  }
  const int64_t last_layer = options.stop_after_layer >= 0
                                 ? std::min(options.stop_after_layer, config_.n_layer - 1)
                                 : config_.n_layer - 1;
  for (int64_t layer = options.start_layer; layer <= last_layer; ++layer) {
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
