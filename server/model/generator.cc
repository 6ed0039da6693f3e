#include "server/model/generator.h"

#include <algorithm>
#include <chrono>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"

// Notation as in gpt2_config.h: B rows of the current step (unfinished
// requests), T0 longest prompt, V vocabulary.
namespace romed {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

enum class Utf8Char { kComplete, kIncomplete, kInvalid };

// Classifies the bytes at the start of `s` (non-empty): a complete, valid
// UTF-8 character of `*length` bytes; the start of one cut off by the end of
// `s`; or bytes no continuation can make valid.
Utf8Char ClassifyUtf8(std::string_view s, size_t* length) {
  const unsigned char lead = s[0];
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (lead < 0x80) {
    *length = 1;
    return Utf8Char::kComplete;
  } else if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) lo = 0xA0;  // overlong
    if (lead == 0xED) hi = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) lo = 0x90;  // overlong
    if (lead == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return Utf8Char::kInvalid;
  }
  for (size_t k = 1; k < n; ++k) {
    if (k >= s.size()) return Utf8Char::kIncomplete;
    const unsigned char b = s[k];
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return Utf8Char::kInvalid;
  }
  *length = n;
  return Utf8Char::kComplete;
}

// The generated text of one row, built token by token. Bytes that cannot
// form UTF-8 become U+FFFD; a character cut off at the end waits for the
// next token. Text that is a proper prefix of a stop sequence is held back
// from streaming until it is known not to start one.
class IncrementalText {
 public:
  explicit IncrementalText(const std::vector<std::string>& stops) : stops_(stops) {}

  // Appends a token's bytes. Returns true if the text now contains a stop
  // sequence; the text is then cut just before its first occurrence.
  bool Append(std::string_view bytes) {
    pending_ += bytes;
    const size_t old_size = text_.size();
    DecodePending(/*flush=*/false);
    return CutAtStop(old_size);
  }

  // No more tokens: a cut-off character becomes U+FFFD, nothing is held back.
  void Finish() {
    DecodePending(/*flush=*/true);
    finished_ = true;
  }

  // The text that became final since the previous call.
  std::string TakeFinal() {
    const size_t end = finished_ ? text_.size() : text_.size() - HeldBackSize();
    std::string out = text_.substr(emitted_, end - emitted_);
    emitted_ = end;
    return out;
  }

  const std::string& text() const { return text_; }

 private:
  void DecodePending(bool flush) {
    size_t i = 0;
    while (i < pending_.size()) {
      size_t length = 0;
      const Utf8Char kind = ClassifyUtf8(std::string_view(pending_).substr(i), &length);
      if (kind == Utf8Char::kIncomplete && !flush) break;
      if (kind == Utf8Char::kComplete) {
        text_.append(pending_, i, length);
        i += length;
      } else {
        text_ += kReplacementChar;
        i += 1;
      }
    }
    pending_.erase(0, i);
  }

  // Searches only occurrences that end in the text added after `old_size`.
  bool CutAtStop(size_t old_size) {
    size_t first = std::string::npos;
    for (const std::string& stop : stops_) {
      const size_t from = old_size >= stop.size() ? old_size - stop.size() + 1 : 0;
      first = std::min(first, text_.find(stop, from));
    }
    if (first == std::string::npos) return false;
    text_.resize(first);
    pending_.clear();
    finished_ = true;
    return true;
  }

  // Length of the longest suffix of the text that is a proper prefix of a
  // stop sequence (stops are valid UTF-8, so the cut is on a character).
  size_t HeldBackSize() const {
    size_t held = 0;
    for (const std::string& stop : stops_) {
      for (size_t n = std::min(stop.size() - 1, text_.size()); n > held; --n) {
        if (std::string_view(text_).substr(text_.size() - n) ==
            std::string_view(stop).substr(0, n)) {
          held = n;
          break;
        }
      }
    }
    return held;
  }

  const std::vector<std::string>& stops_;
  std::string pending_;  // bytes of a character not yet complete
  std::string text_;     // valid UTF-8
  size_t emitted_ = 0;   // bytes of text_ already returned by TakeFinal
  bool finished_ = false;
};

absl::Status ValidateRequest(const GenerateRequest& request, const Gpt2Config& config) {
  if (request.prompt_ids.empty()) return absl::InvalidArgumentError("prompt is empty");
  for (size_t i = 0; i < request.prompt_ids.size(); ++i) {
    const int64_t id = request.prompt_ids[i];
    if (id < 0 || id >= config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token ", id, " at position ", i,
                                                     " is outside the vocabulary [0, ",
                                                     config.vocab_size, ")"));
    }
  }
  if (request.max_new_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens must be >= 1, got ", request.max_new_tokens));
  }
  const int64_t prompt_tokens = static_cast<int64_t>(request.prompt_ids.size());
  if (prompt_tokens + request.max_new_tokens > config.n_positions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt (", prompt_tokens, " tokens) + max_new_tokens (", request.max_new_tokens,
        ") exceeds the model's context of ", config.n_positions, " positions"));
  }
  RETURN_IF_ERROR(ValidateSampling(request.sampling));
  for (size_t j = 0; j < request.score_continuations.size(); ++j) {
    const std::vector<int64_t>& c = request.score_continuations[j];
    if (c.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("continuation ", j, " to score is empty"));
    }
    for (int64_t id : c) {
      if (id < 0 || id >= config.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("continuation ", j, " token ", id,
                                                       " is outside the vocabulary [0, ",
                                                       config.vocab_size, ")"));
      }
    }
    if (prompt_tokens + static_cast<int64_t>(c.size()) > config.n_positions) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt (", prompt_tokens, " tokens) + continuation ", j, " (", c.size(),
          " tokens) exceeds the model's context of ", config.n_positions, " positions"));
    }
  }
  for (size_t i = 0; i < request.stop.size(); ++i) {
    if (request.stop[i].empty()) {
      return absl::InvalidArgumentError(absl::StrCat("stop sequence ", i, " is empty"));
    }
    if (FindInvalidUtf8(request.stop[i]) >= 0) {
      return absl::InvalidArgumentError(absl::StrCat("stop sequence ", i, " is not valid UTF-8"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateBatch(const std::vector<GenerateRequest>& requests,
                           const std::vector<TokenCallback>& callbacks, const Gpt2Config& config) {
  if (!callbacks.empty() && callbacks.size() != requests.size()) {
    return absl::InvalidArgumentError(absl::StrCat("got ", callbacks.size(), " callbacks for ",
                                                   requests.size(),
                                                   " requests; pass none or one each"));
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    const absl::Status status = ValidateRequest(requests[i], config);
    if (!status.ok()) {
      if (requests.size() == 1) return status;
      return absl::InvalidArgumentError(absl::StrCat("request ", i, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

// One request's progress through the batch.
struct RowState {
  RowState(const GenerateRequest& req, const TokenCallback* cb)
      : request(&req), callback(cb), rng(MakeRng(req.sampling.seed)), text(req.stop) {
    result.prompt_tokens = static_cast<int64_t>(req.prompt_ids.size());
  }
  const GenerateRequest* request;
  const TokenCallback* callback;  // null: no streaming
  std::mt19937_64 rng;
  IncrementalText text;
  GenerateResult result;
  bool finished = false;
};

// Runs one batch: prefill of the left-padded prompts, then one decode step
// per token for the rows still running. Finished rows leave the KV cache.
class BatchDecoder {
 public:
  BatchDecoder(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
               const std::vector<GenerateRequest>& requests,
               const std::vector<TokenCallback>& callbacks)
      : model_(model), tokenizer_(tokenizer), start_(Clock::now()) {
    rows_.reserve(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      rows_.emplace_back(requests[i], callbacks.empty() ? nullptr : &callbacks[i]);
      active_.push_back(static_cast<int64_t>(i));
      AddView(requests[i].edits);
    }
  }

  absl::StatusOr<std::vector<GenerateResult>> Run() {
    torch::Tensor logits = Prefill();
    ScoreContinuations(logits);
    while (true) {
      RETURN_IF_ERROR(SampleActiveRows(logits));
      if (!DropFinishedRows()) break;
      logits = DecodeStep();
    }
    std::vector<GenerateResult> results;
    results.reserve(rows_.size());
    for (RowState& row : rows_) results.push_back(std::move(row.result));
    return results;
  }

 private:
  void AddView(const std::shared_ptr<const EditView>& view) {
    if (view == nullptr || view->empty()) return;
    if (std::find(views_.begin(), views_.end(), view) == views_.end()) views_.push_back(view);
  }

  // Index of `row`'s edit view in views_; -1 for the base model.
  int ViewIndex(const RowState& row) const {
    const auto it = std::find(views_.begin(), views_.end(), row.request->edits);
    return it == views_.end() ? -1 : static_cast<int>(it - views_.begin());
  }

  // The edit view of each active row; null if no active row has one.
  const RowEdits* ActiveEdits() {
    row_edits_.views = views_;
    row_edits_.row_view.clear();
    bool any = false;
    for (int64_t r : active_) {
      const int index = ViewIndex(rows_[r]);
      any = any || index >= 0;
      row_edits_.row_view.push_back(index);
    }
    return any ? &row_edits_ : nullptr;
  }

  // Logits [B, V] float32 on the CPU, from the model's [B, 1, V].
  static torch::Tensor LastLogits(const torch::Tensor& logits) {
    return logits.select(1, 0).to(torch::kCPU, torch::kFloat32).contiguous();
  }

  // Runs every prompt, left-padded to T0; returns logits [B, V].
  torch::Tensor Prefill() {
    int64_t t0 = 0;
    int64_t new_tokens = 0;
    for (const RowState& row : rows_) {
      t0 = std::max(t0, row.result.prompt_tokens);
      new_tokens = std::max(new_tokens, row.request->max_new_tokens);
    }
    // Room for the whole generation, so decode steps never regrow the cache.
    cache_.Reserve(t0 + new_tokens);
    const int64_t b = static_cast<int64_t>(rows_.size());
    torch::Tensor tokens = torch::zeros({b, t0}, torch::kInt64);  // [B, T0]
    torch::Tensor mask = torch::zeros({b, t0}, torch::kInt64);    // [B, T0]
    for (int64_t i = 0; i < b; ++i) {
      const std::vector<int64_t>& prompt = rows_[i].request->prompt_ids;
      const int64_t pad = t0 - static_cast<int64_t>(prompt.size());
      tokens[i].slice(0, pad).copy_(torch::tensor(prompt, torch::kInt64));
      mask[i].slice(0, pad).fill_(1);
    }
    return Forward(tokens, mask);
  }

  // Fills each row's continuation_scores from the prefill: a continuation's
  // first token from the prompt's last logits `logits` [B, V], the rest
  // from one forward of all continuations (right-padded, without their last
  // token) on a copy of the prompt's KV cache, one row per continuation.
  // Runs before any row leaves the batch, so cache row i is rows_[i].
  void ScoreContinuations(const torch::Tensor& logits) {
    struct Pending {
      size_t row, index;
    };
    std::vector<Pending> rest;  // continuations of 2+ tokens
    int64_t length = 0;
    for (size_t i = 0; i < rows_.size(); ++i) {
      const std::vector<std::vector<int64_t>>& list = rows_[i].request->score_continuations;
      if (list.empty()) continue;
      const torch::Tensor first = torch::log_softmax(logits[i], -1);  // [V]
      std::vector<ContinuationScore>& scores = rows_[i].result.continuation_scores;
      scores.resize(list.size());
      for (size_t j = 0; j < list.size(); ++j) {
        scores[j].ids = list[j];
        scores[j].token_logprobs.push_back(first[list[j][0]].item<float>());
        if (list[j].size() > 1) {
          rest.push_back({i, j});
          length = std::max<int64_t>(length, list[j].size() - 1);
        }
      }
    }
    if (!rest.empty()) {
      const int64_t n = static_cast<int64_t>(rest.size());
      torch::Tensor tokens = torch::zeros({n, length}, torch::kInt64);  // [N, L]
      torch::Tensor mask = torch::zeros({n, length}, torch::kInt64);    // [N, L]
      std::vector<int64_t> source;
      RowEdits edits;
      edits.views = views_;
      bool any_edits = false;
      for (int64_t p = 0; p < n; ++p) {
        const RowState& row = rows_[rest[p].row];
        const std::vector<int64_t>& c = row.request->score_continuations[rest[p].index];
        const int64_t fed = static_cast<int64_t>(c.size()) - 1;
        tokens[p].slice(0, 0, fed).copy_(
            torch::tensor(std::vector<int64_t>(c.begin(), c.end() - 1), torch::kInt64));
        mask[p].slice(0, 0, fed).fill_(1);
        source.push_back(static_cast<int64_t>(rest[p].row));
        const int index = ViewIndex(row);
        any_edits = any_edits || index >= 0;
        edits.row_view.push_back(index);
      }
      KvCache prompt_cache = cache_;  // shares buffers; SelectRows copies
      prompt_cache.SelectRows(torch::tensor(source, torch::kInt64));
      ForwardOptions options;
      options.cache = &prompt_cache;
      options.edits = any_edits ? &edits : nullptr;
      const torch::Device device = model_.device();
      const torch::Tensor logprobs = torch::log_softmax(
          model_.Forward({tokens.to(device), mask.to(device)}, options).to(torch::kCPU,
                                                                          torch::kFloat32),
          -1);  // [N, L, V]
      for (int64_t p = 0; p < n; ++p) {
        ContinuationScore& score = rows_[rest[p].row].result.continuation_scores[rest[p].index];
        for (size_t t = 1; t < score.ids.size(); ++t) {
          score.token_logprobs.push_back(
              logprobs[p][static_cast<int64_t>(t) - 1][score.ids[t]].item<float>());
        }
      }
    }
    for (RowState& row : rows_) {
      for (ContinuationScore& score : row.result.continuation_scores) {
        score.total_logprob = 0.0;
        for (float lp : score.token_logprobs) score.total_logprob += lp;
      }
    }
  }

  // Feeds each active row's last token; returns logits [B, V].
  torch::Tensor DecodeStep() {
    std::vector<int64_t> last;
    for (int64_t r : active_) last.push_back(rows_[r].result.ids.back());
    const int64_t b = static_cast<int64_t>(last.size());
    return Forward(torch::tensor(last, torch::kInt64).view({b, 1}), torch::Tensor());
  }

  torch::Tensor Forward(const torch::Tensor& tokens, const torch::Tensor& mask) {
    ForwardOptions options;
    options.cache = &cache_;
    options.last_position_logits = true;
    options.edits = ActiveEdits();
    const torch::Device device = model_.device();
    const torch::Tensor logits =
        model_.Forward({tokens.to(device), mask.defined() ? mask.to(device) : mask}, options);
    return LastLogits(logits);
  }

  absl::Status SampleActiveRows(const torch::Tensor& logits) {
    for (size_t i = 0; i < active_.size(); ++i) {
      RowState& row = rows_[active_[i]];
      if (row.result.ids.empty() && row.request->keep_first_logprobs) {
        row.result.first_logprobs = torch::log_softmax(logits[i], -1);
      }
      const SampledToken token = SampleToken(logits[i], row.request->sampling, row.rng);
      RETURN_IF_ERROR(AcceptToken(row, token));
    }
    return absl::OkStatus();
  }

  // Records `token`, decides whether the row is done, streams its text.
  absl::Status AcceptToken(RowState& row, const SampledToken& token) {
    GenerateResult& result = row.result;
    if (result.ids.empty()) result.time_to_first_token_s = SecondsSince(start_);
    result.ids.push_back(token.id);
    result.logprobs.push_back(token.logprob);

    if (row.request->stop_at_eos && token.id == tokenizer_.eos_id()) {
      Finish(row, FinishReason::kEos);
    } else {
      ASSIGN_OR_RETURN(const std::string bytes, tokenizer_.Decode({token.id}));
      if (row.text.Append(bytes)) {
        Finish(row, FinishReason::kStop);
      } else if (static_cast<int64_t>(result.ids.size()) >= row.request->max_new_tokens) {
        Finish(row, FinishReason::kLength);
      }
    }
    const bool keep_going = row.callback == nullptr || *row.callback == nullptr ||
                            (*row.callback)({token.id, token.logprob, row.text.TakeFinal()});
    if (!keep_going && !row.finished) Finish(row, FinishReason::kCancelled);
    return absl::OkStatus();
  }

  void Finish(RowState& row, FinishReason reason) {
    row.text.Finish();
    row.finished = true;
    row.result.finish = reason;
    row.result.text = row.text.text();
    row.result.total_time_s = SecondsSince(start_);
  }

  // Removes finished rows from the batch and the cache. False if none is left.
  bool DropFinishedRows() {
    std::vector<int64_t> keep_rows, keep_positions;
    for (size_t i = 0; i < active_.size(); ++i) {
      if (rows_[active_[i]].finished) continue;
      keep_rows.push_back(active_[i]);
      keep_positions.push_back(static_cast<int64_t>(i));
    }
    if (keep_rows.empty()) return false;
    if (keep_rows.size() < active_.size()) {
      cache_.SelectRows(torch::tensor(keep_positions, torch::kInt64).to(model_.device()));
      active_ = std::move(keep_rows);
    }
    return true;
  }

  const Gpt2Model& model_;
  const Gpt2Tokenizer& tokenizer_;
  const Clock::time_point start_;
  std::vector<RowState> rows_;
  std::vector<int64_t> active_;                         // [B] index into rows_ of each cache row
  std::vector<std::shared_ptr<const EditView>> views_;  // distinct non-empty views
  RowEdits row_edits_;
  KvCache cache_;
};

}  // namespace

std::string_view FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

Generator::Generator(std::shared_ptr<const Gpt2Model> model,
                     std::shared_ptr<const Gpt2Tokenizer> tokenizer)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)) {}

absl::StatusOr<std::vector<GenerateResult>> Generator::GenerateBatch(
    const std::vector<GenerateRequest>& requests,
    const std::vector<TokenCallback>& callbacks) const {
  RETURN_IF_ERROR(ValidateBatch(requests, callbacks, model_->config()));
  if (requests.empty()) return std::vector<GenerateResult>{};
  // Rows are left-padded to the longest prompt and decode for the most new
  // tokens, so a batch needs max(prompt) + max(max_new_tokens) positions
  // (or more for a long continuation to score):
  // requests that each fit the context may not fit together. Split them (in
  // order) into groups that do, each run as its own batch.
  const int64_t context = model_->config().n_positions;
  std::vector<std::vector<size_t>> groups;
  int64_t longest_prompt = 0, most_new = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const int64_t prompt = static_cast<int64_t>(requests[i].prompt_ids.size());
    // Positions after the (left-padded) prompts: the decode's, or a scored
    // continuation's minus its last token, whichever is more.
    int64_t fresh = requests[i].max_new_tokens;
    for (const std::vector<int64_t>& c : requests[i].score_continuations) {
      fresh = std::max<int64_t>(fresh, static_cast<int64_t>(c.size()) - 1);
    }
    if (groups.empty() || std::max(longest_prompt, prompt) + std::max(most_new, fresh) > context) {
      groups.emplace_back();
      longest_prompt = most_new = 0;
    }
    groups.back().push_back(i);
    longest_prompt = std::max(longest_prompt, prompt);
    most_new = std::max(most_new, fresh);
  }
  return GuardTorch("generate", [&]() -> absl::StatusOr<std::vector<GenerateResult>> {
    c10::InferenceMode inference_mode;
    if (groups.size() == 1) return BatchDecoder(*model_, *tokenizer_, requests, callbacks).Run();
    std::vector<GenerateResult> results(requests.size());
    for (const std::vector<size_t>& group : groups) {
      std::vector<GenerateRequest> part;
      std::vector<TokenCallback> part_callbacks;
      for (size_t i : group) {
        part.push_back(requests[i]);
        if (!callbacks.empty()) part_callbacks.push_back(callbacks[i]);
      }
      ASSIGN_OR_RETURN(std::vector<GenerateResult> done,
                       BatchDecoder(*model_, *tokenizer_, part, part_callbacks).Run());
      for (size_t k = 0; k < group.size(); ++k) results[group[k]] = std::move(done[k]);
    }
    return results;
  });
}

absl::StatusOr<GenerateResult> Generator::Generate(const GenerateRequest& request,
                                                   const TokenCallback& on_token) const {
  std::vector<TokenCallback> callbacks;
  if (on_token) callbacks.push_back(on_token);
  ASSIGN_OR_RETURN(std::vector<GenerateResult> results, GenerateBatch({request}, callbacks));
  return std::move(results.front());
}

}  // namespace romed
