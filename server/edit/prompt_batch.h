// Right-padded batches of token rows for the forward passes of server/edit
// (keys, values, statistics). Right padding keeps every real token at its
// own position, so a site (row, position) is the same as for the row alone.
#ifndef ROMED_SERVER_EDIT_PROMPT_BATCH_H_
#define ROMED_SERVER_EDIT_PROMPT_BATCH_H_

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "server/model/gpt2_model.h"
#include "server/model/rank_one.h"

namespace romed {

struct PromptBatch {
  torch::Tensor tokens;  // [B, T] int64 CPU, padding = token 0
  torch::Tensor mask;    // [B, T] int64 CPU, 1 real / 0 padding

  ForwardInput ToInput(torch::Device device) const {
    return {tokens.to(device), mask.to(device)};
  }
};

// Rows [first, last) of `rows` (each non-empty), right-padded to the longest.
PromptBatch PadRight(const std::vector<std::vector<int64_t>>& rows, size_t first, size_t last);
inline PromptBatch PadRight(const std::vector<std::vector<int64_t>>& rows) {
  return PadRight(rows, 0, rows.size());
}

// RowEdits applying `view` to every row; `holder` keeps it. Returns nullptr
// when `view` is null or empty (the base model).
const RowEdits* EditsForAllRows(const std::shared_ptr<const EditView>& view, RowEdits* holder);

}  // namespace romed

#endif  // ROMED_SERVER_EDIT_PROMPT_BATCH_H_
