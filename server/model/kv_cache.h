// KvCache: attention keys/values of positions already run, for incremental
// decoding. Owned by one generation; not thread-safe.
#ifndef ROMED_SERVER_MODEL_KV_CACHE_H_
#define ROMED_SERVER_MODEL_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace romed {

struct KvCache {
  std::vector<torch::Tensor> keys;    // per layer [B, H, T_past, D]
  std::vector<torch::Tensor> values;  // per layer [B, H, T_past, D]
  torch::Tensor mask;                 // [B, T_past] int64, 1 real / 0 padding
  torch::Tensor next_position;        // [B] int64: position id of the next real token

  int64_t length() const { return mask.defined() ? mask.size(1) : 0; }
  bool empty() const { return length() == 0; }
  // Keeps only rows `rows` [B'] (drops finished sequences from a batch).
  void SelectRows(const torch::Tensor& rows);
};

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_KV_CACHE_H_
