#include "server/model/scorer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"

// Notation as in gpt2_config.h, plus N prompt tokens, K longest continuation,
// T = N + K positions per row.
namespace romed {
namespace {

absl::Status CheckIds(const std::vector<int64_t>& ids, std::string_view what, int64_t vocab_size) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat(std::string(what), " token ", ids[i], " at position ", i,
                       " is outside the vocabulary [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateScoreRequest(const Gpt2Config& config, const std::vector<int64_t>& prompt,
                                  const std::vector<std::vector<int64_t>>& continuations) {
  if (prompt.empty()) return absl::InvalidArgumentError("prompt is empty");
  RETURN_IF_ERROR(CheckIds(prompt, "prompt", config.vocab_size));
  for (size_t i = 0; i < continuations.size(); ++i) {
    const std::string name = absl::StrCat("continuation ", i);
    if (continuations[i].empty()) return absl::InvalidArgumentError(name + " is empty");
    RETURN_IF_ERROR(CheckIds(continuations[i], name, config.vocab_size));
    const size_t length = prompt.size() + continuations[i].size();
    if (static_cast<int64_t>(length) > config.n_positions) {
      return absl::InvalidArgumentError(absl::StrCat("prompt + ", name, " is ", length,
                                                     " tokens, longer than the model's context of ",
                                                     config.n_positions));
    }
  }
  return absl::OkStatus();
}

// log p(token at t | tokens before t) for t in [N, T): [B, K] float32 CPU.
torch::Tensor ContinuationLogprobs(const Gpt2Model& model, const torch::Tensor& tokens,
                                   const torch::Tensor& mask, int64_t n, const RowEdits* edits) {
  const torch::Device device = model.device();
  ForwardOptions options;
  options.edits = edits;
  const torch::Tensor logits = model.Forward({tokens.to(device), mask.to(device)}, options);
  const int64_t t = tokens.size(1);
  // Position t-1 predicts token t.
  const torch::Tensor predicting = logits.slice(1, n - 1, t - 1).to(torch::kFloat32);  // [B,K,V]
  const torch::Tensor targets = tokens.slice(1, n, t).to(device).unsqueeze(-1);        // [B,K,1]
  return torch::log_softmax(predicting, -1).gather(-1, targets).squeeze(-1).to(torch::kCPU);
}

std::vector<ContinuationScore> ScoreBatch(const Gpt2Model& model,
                                          const std::vector<int64_t>& prompt,
                                          const std::vector<std::vector<int64_t>>& continuations,
                                          const std::shared_ptr<const EditView>& edits) {
  const int64_t n = static_cast<int64_t>(prompt.size());
  int64_t k = 0;
  for (const auto& c : continuations) k = std::max<int64_t>(k, c.size());
  const int64_t b = static_cast<int64_t>(continuations.size());

  // Rows are prompt + continuation, right-padded with token 0 (masked).
  torch::Tensor tokens = torch::zeros({b, n + k}, torch::kInt64);  // [B, T]
  torch::Tensor mask = torch::zeros({b, n + k}, torch::kInt64);    // [B, T]
  const torch::Tensor prompt_tensor = torch::tensor(prompt, torch::kInt64);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t length = n + static_cast<int64_t>(continuations[i].size());
    tokens[i].slice(0, 0, n).copy_(prompt_tensor);
    tokens[i].slice(0, n, length).copy_(torch::tensor(continuations[i], torch::kInt64));
    mask[i].slice(0, 0, length).fill_(1);
  }

  RowEdits row_edits;
  const bool edited = edits != nullptr && !edits->empty();
  if (edited) {
    row_edits.views = {edits};
    row_edits.row_view.assign(b, 0);
  }
  const torch::Tensor logprobs =
      ContinuationLogprobs(model, tokens, mask, n, edited ? &row_edits : nullptr);  // [B, K]

  std::vector<ContinuationScore> scores(b);
  const auto accessor = logprobs.accessor<float, 2>();
  for (int64_t i = 0; i < b; ++i) {
    scores[i].ids = continuations[i];
    for (size_t j = 0; j < continuations[i].size(); ++j) {
      scores[i].token_logprobs.push_back(accessor[i][j]);
      scores[i].total_logprob += accessor[i][j];
    }
  }
  return scores;
}

absl::Status ValidateRows(const Gpt2Config& config, const std::vector<ScoreRow>& rows,
                          size_t num_views) {
  if (rows.empty()) return absl::InvalidArgumentError("no rows to score");
  for (size_t i = 0; i < rows.size(); ++i) {
    const ScoreRow& row = rows[i];
    const std::string name = absl::StrCat("row ", i);
    if (row.prompt_ids.empty()) return absl::InvalidArgumentError(name + ": prompt is empty");
    RETURN_IF_ERROR(CheckIds(row.prompt_ids, name + " prompt", config.vocab_size));
    RETURN_IF_ERROR(CheckIds(row.continuation_ids, name + " continuation", config.vocab_size));
    const size_t length = row.prompt_ids.size() + row.continuation_ids.size();
    if (static_cast<int64_t>(length) > config.n_positions) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is ", length,
                                                     " tokens, longer than the model's context of ",
                                                     config.n_positions));
    }
    if (row.view < -1 || row.view >= static_cast<int>(num_views)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " names edit view ", row.view, " of ", num_views));
    }
  }
  return absl::OkStatus();
}

// Rows of different prompts, right-padded to the longest (T), each on its
// own view; reads log-probs at each row's own positions.
std::vector<RowScore> ScoreMixedBatch(const Gpt2Model& model, const std::vector<ScoreRow>& rows,
                                      const std::vector<std::shared_ptr<const EditView>>& views,
                                      bool want_next) {
  const int64_t b = static_cast<int64_t>(rows.size());
  int64_t t = 0;
  for (const ScoreRow& row : rows) {
    t = std::max<int64_t>(t, row.prompt_ids.size() + row.continuation_ids.size());
  }
  torch::Tensor tokens = torch::zeros({b, t}, torch::kInt64);  // [B, T]
  torch::Tensor mask = torch::zeros({b, t}, torch::kInt64);    // [B, T]
  RowEdits row_edits;
  row_edits.views = views;
  for (int64_t i = 0; i < b; ++i) {
    std::vector<int64_t> ids = rows[i].prompt_ids;
    ids.insert(ids.end(), rows[i].continuation_ids.begin(), rows[i].continuation_ids.end());
    const int64_t length = static_cast<int64_t>(ids.size());
    tokens[i].slice(0, 0, length).copy_(torch::tensor(ids, torch::kInt64));
    mask[i].slice(0, 0, length).fill_(1);
    row_edits.row_view.push_back(rows[i].view);
  }
  const torch::Device device = model.device();
  ForwardOptions options;
  options.edits = views.empty() ? nullptr : &row_edits;
  const torch::Tensor logits = model.Forward({tokens.to(device), mask.to(device)}, options);

  std::vector<RowScore> out(b);
  for (int64_t i = 0; i < b; ++i) {
    const int64_t n = static_cast<int64_t>(rows[i].prompt_ids.size());
    const int64_t k = static_cast<int64_t>(rows[i].continuation_ids.size());
    // Position p predicts token p + 1: positions n-1 .. n+k-1, [k+1, V].
    const torch::Tensor logprobs = torch::log_softmax(
        logits[i].slice(0, n - 1, n + k).to(torch::kFloat32), -1).to(torch::kCPU);
    RowScore& row = out[i];
    row.score.ids = rows[i].continuation_ids;
    for (int64_t j = 0; j < k; ++j) {
      const float lp = logprobs[j][rows[i].continuation_ids[j]].item<float>();
      row.score.token_logprobs.push_back(lp);
      row.score.total_logprob += lp;
    }
    if (want_next) row.next_token_logprobs = logprobs[0].clone();
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<RowScore>> ScoreRows(
    const Gpt2Model& model, const std::vector<ScoreRow>& rows,
    const std::vector<std::shared_ptr<const EditView>>& views, bool next_token_logprobs) {
  RETURN_IF_ERROR(ValidateRows(model.config(), rows, views.size()));
  return GuardTorch("score rows", [&] {
    c10::InferenceMode inference_mode;
    return ScoreMixedBatch(model, rows, views, next_token_logprobs);
  });
}

absl::StatusOr<std::vector<ContinuationScore>> ScoreContinuations(
    const Gpt2Model& model, const std::vector<int64_t>& prompt_ids,
    const std::vector<std::vector<int64_t>>& continuations,
    const std::shared_ptr<const EditView>& edits) {
  RETURN_IF_ERROR(ValidateScoreRequest(model.config(), prompt_ids, continuations));
  if (continuations.empty()) return std::vector<ContinuationScore>{};
  return GuardTorch("score continuations", [&] {
    c10::InferenceMode inference_mode;
    return ScoreBatch(model, prompt_ids, continuations, edits);
  });
}

}  // namespace romed
