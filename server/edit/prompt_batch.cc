#include "server/edit/prompt_batch.h"

#include <algorithm>

namespace romed {

PromptBatch PadRight(const std::vector<std::vector<int64_t>>& rows, size_t first, size_t last) {
  int64_t width = 0;
  for (size_t i = first; i < last; ++i) width = std::max<int64_t>(width, rows[i].size());
  const int64_t b = static_cast<int64_t>(last - first);
  PromptBatch batch{torch::zeros({b, width}, torch::kInt64),
                    torch::zeros({b, width}, torch::kInt64)};
  for (size_t i = first; i < last; ++i) {
    const int64_t n = static_cast<int64_t>(rows[i].size());
    const int64_t r = static_cast<int64_t>(i - first);
    batch.tokens[r].slice(0, 0, n).copy_(torch::tensor(rows[i], torch::kInt64));
    batch.mask[r].slice(0, 0, n).fill_(1);
  }
  return batch;
}

const RowEdits* EditsForAllRows(const std::shared_ptr<const EditView>& view, RowEdits* holder) {
  if (view == nullptr || view->empty()) return nullptr;
  holder->views = {view};
  holder->row_view.clear();
  return holder;
}

}  // namespace romed
