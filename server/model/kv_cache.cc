#include "server/model/kv_cache.h"

#include <algorithm>

namespace romed {
namespace {

// True if `view` [B, H, T_past, D] is the filled prefix of `buffer`, so the
// next positions may be written into the buffer in place.
bool ViewEndsBuffer(const torch::Tensor& view, const KvCache::Buffer* buffer) {
  if (buffer == nullptr || !view.defined()) return false;
  const torch::Tensor& storage = buffer->storage;
  return view.data_ptr() == storage.data_ptr() && view.size(2) == buffer->filled &&
         view.size(0) == storage.size(0) && view.strides() == storage.strides() &&
         view.scalar_type() == storage.scalar_type();
}

// Appends `fresh` [B, H, T, D] to `view` [B, H, T_past, D] (undefined = no
// past) and returns the view [B, H, K, D]; moves to a new buffer of
// `capacity` positions (>= K) when the current one cannot take it.
torch::Tensor AppendPositions(torch::Tensor view, std::shared_ptr<KvCache::Buffer>& buffer,
                              const torch::Tensor& fresh, int64_t capacity) {
  const int64_t past = view.defined() ? view.size(2) : 0;
  const int64_t total = past + fresh.size(2);
  const bool in_place =
      past > 0 && ViewEndsBuffer(view, buffer.get()) && buffer->storage.size(2) >= total &&
      fresh.scalar_type() == buffer->storage.scalar_type() && fresh.size(0) == view.size(0);
  if (!in_place) {
    auto sizes = fresh.sizes().vec();
    sizes[2] = std::max(capacity, total);
    auto next = std::make_shared<KvCache::Buffer>();
    next->storage =
        torch::empty(sizes, fresh.options().memory_format(at::MemoryFormat::Contiguous));
    if (past > 0) next->storage.narrow(2, 0, past).copy_(view);
    buffer = std::move(next);
  }
  buffer->storage.narrow(2, past, fresh.size(2)).copy_(fresh);
  buffer->filled = total;
  return buffer->storage.narrow(2, 0, total);
}

// Rows `index` [B'] of `view`, keeping the rest of its buffer's capacity.
torch::Tensor SelectBufferRows(const torch::Tensor& view, std::shared_ptr<KvCache::Buffer>& buffer,
                               const torch::Tensor& index) {
  if (!ViewEndsBuffer(view, buffer.get())) {
    buffer.reset();
    return view.index_select(0, index);
  }
  // Selects over the whole capacity (unfilled positions included) so the
  // new buffer keeps the room to grow.
  auto next = std::make_shared<KvCache::Buffer>();
  next->storage = buffer->storage.index_select(0, index);
  next->filled = buffer->filled;
  buffer = std::move(next);
  return buffer->storage.narrow(2, 0, buffer->filled);
}

}  // namespace

void KvCache::SelectRows(const torch::Tensor& rows) {
  if (!mask.defined()) return;
  torch::Tensor index = rows.to(mask.device(), torch::kInt64);
  key_buffers_.resize(keys.size());
  value_buffers_.resize(values.size());
  for (size_t l = 0; l < keys.size(); ++l)
    keys[l] = SelectBufferRows(keys[l], key_buffers_[l], index);
  for (size_t l = 0; l < values.size(); ++l) {
    values[l] = SelectBufferRows(values[l], value_buffers_[l], index);
  }
  mask = mask.index_select(0, index);
  if (next_position.defined()) next_position = next_position.index_select(0, index);
}

void KvCache::Append(int64_t layer, const torch::Tensor& fresh_keys,
                     const torch::Tensor& fresh_values, int64_t max_positions) {
  const size_t needed = static_cast<size_t>(layer) + 1;
  if (keys.size() < needed) keys.resize(needed);
  if (values.size() < needed) values.resize(needed);
  if (key_buffers_.size() < needed) key_buffers_.resize(needed);
  if (value_buffers_.size() < needed) value_buffers_.resize(needed);

  const int64_t past = keys[layer].defined() ? keys[layer].size(2) : 0;
  const int64_t total = past + fresh_keys.size(2);
  // First call: exactly what is asked for (one-shot forwards stay lean);
  // growing: double, so a long generation copies O(log) times.
  int64_t capacity = std::max(reserved_, past == 0 ? total : 2 * total);
  capacity = std::max(std::min(capacity, max_positions), total);
  keys[layer] = AppendPositions(keys[layer], key_buffers_[layer], fresh_keys, capacity);
  values[layer] = AppendPositions(values[layer], value_buffers_[layer], fresh_values, capacity);
}

}  // namespace romed
