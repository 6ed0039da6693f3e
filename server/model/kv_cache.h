// KvCache: attention keys/values of positions already run, for incremental
// decoding. Owned by one generation; not thread-safe.
//
// Storage: each layer's keys and values live in a buffer [B, H, P_cap, D]
// with room for P_cap >= T_past positions; `keys[l]` / `values[l]` are views
// of its first T_past positions. Append() writes a step's positions into the
// buffer in place (no copy of the past), so a decode step costs O(new
// positions), not O(T_past). A full buffer is replaced by one of twice the
// needed size (one copy); Reserve() sizes the first buffer so that a known
// generation length never regrows.
//
// Copies of a KvCache share buffers. Each buffer records how many positions
// were written into it, and only the cache whose view ends exactly there may
// write further; any other copy that appends moves to a buffer of its own
// first, so a copy never changes what another copy sees.
//
// Code that assigns `keys` / `values` directly (e.g. to a prefix built
// elsewhere) stays valid: the next Append() copies them into a new buffer.
#ifndef ROMED_SERVER_MODEL_KV_CACHE_H_
#define ROMED_SERVER_MODEL_KV_CACHE_H_

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace romed {

struct KvCache {
  std::vector<torch::Tensor> keys;    // per layer [B, H, T_past, D] (view of a buffer)
  std::vector<torch::Tensor> values;  // per layer [B, H, T_past, D] (view of a buffer)
  torch::Tensor mask;                 // [B, T_past] int64, 1 real / 0 padding
  torch::Tensor next_position;        // [B] int64: position id of the next real token

  int64_t length() const { return mask.defined() ? mask.size(1) : 0; }
  bool empty() const { return length() == 0; }
  // Keeps only rows `rows` [B'] (drops finished sequences from a batch).
  void SelectRows(const torch::Tensor& rows);

  // Asks for buffers of at least `positions` positions when they are next
  // allocated (the prompt plus the tokens to generate). Only a hint: the
  // cache still grows past it, and Gpt2Model caps it at n_positions.
  void Reserve(int64_t positions) { reserved_ = positions; }
  int64_t reserved() const { return reserved_; }

  // Appends keys and values [B, H, T, D] of `layer` after its T_past cached
  // positions; afterwards keys[layer] / values[layer] are [B, H, K, D],
  // K = T_past + T. `max_positions` caps the size of a new buffer (never
  // below K). Called by Gpt2Model::Forward.
  void Append(int64_t layer, const torch::Tensor& fresh_keys, const torch::Tensor& fresh_values,
              int64_t max_positions);

  // A preallocated buffer [B, H, P_cap, D] and how many positions of it hold
  // data (the end of the longest view handed out).
  struct Buffer {
    torch::Tensor storage;
    int64_t filled = 0;
  };

 private:
  std::vector<std::shared_ptr<Buffer>> key_buffers_;    // per layer
  std::vector<std::shared_ptr<Buffer>> value_buffers_;  // per layer
  int64_t reserved_ = 0;
};

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_KV_CACHE_H_
