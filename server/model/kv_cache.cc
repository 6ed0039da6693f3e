#include "server/model/kv_cache.h"

namespace romed {

void KvCache::SelectRows(const torch::Tensor& rows) {
  if (!mask.defined()) return;
  torch::Tensor index = rows.to(mask.device(), torch::kInt64);
  for (auto& k : keys) k = k.index_select(0, index);
  for (auto& v : values) v = v.index_select(0, index);
  mask = mask.index_select(0, index);
  if (next_position.defined()) next_position = next_position.index_select(0, index);
}

}  // namespace romed
