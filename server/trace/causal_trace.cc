#include "server/trace/causal_trace.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"
#include "server/trace/noise.h"
#include "server/trace/subject_locator.h"

namespace romed {

int64_t DefaultTraceWindow(int64_t num_layers) {
  return std::max<int64_t>(1, std::llround(10.0 * static_cast<double>(num_layers) / 48.0));
}

std::pair<int64_t, int64_t> WindowLayers(int64_t layer, int64_t window, int64_t num_layers) {
  const int64_t first = std::max<int64_t>(0, layer - window / 2);
  const int64_t last = std::min<int64_t>(num_layers, layer + (window + 1) / 2);
  return {first, last};
}

namespace {

// Most elements of the corrupted residual stream kept for forwards that start
// at a later layer (256 MiB of float32); longer traces start at layer 0.
constexpr int64_t kMaxKeptResidualElements = int64_t{64} << 20;

// Notation: T prompt tokens, L layers, C width, S samples, V vocabulary,
// R restorations in one forward, B = R x S rows, T' = T - t positions run.

absl::Status InvalidArgument(const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("trace: ", message));
}

absl::Status ValidateInput(const Gpt2Config& config, const TraceInput& input) {
  const auto T = static_cast<int64_t>(input.tokens.size());
  if (T == 0) return InvalidArgument("the prompt is empty");
  for (int64_t id : input.tokens) {
    if (id < 0 || id >= config.vocab_size) {
      return InvalidArgument(absl::StrCat("token id ", id, " is outside the vocabulary of ",
                                          config.vocab_size));
    }
  }
  if (input.subject_begin < 0 || input.subject_end > T ||
      input.subject_begin >= input.subject_end) {
    return InvalidArgument(absl::StrCat("the subject's tokens [", input.subject_begin, ", ",
                                        input.subject_end, ") are not a non-empty range in a ",
                                        T, "-token prompt"));
  }
  if (input.subject_begin == 0 && input.subject_end == T) {
    return InvalidArgument("the subject covers the whole prompt");
  }
  if (input.answer_token.has_value() &&
      (*input.answer_token < 0 || *input.answer_token >= config.vocab_size)) {
    return InvalidArgument(absl::StrCat("answer token ", *input.answer_token,
                                        " is outside the vocabulary"));
  }
  return absl::OkStatus();
}

absl::Status ValidateOptions(const Gpt2Config& config, int64_t prompt_tokens,
                             const TraceOptions& options) {
  const int64_t limit = options.max_prompt_tokens > 0
                            ? std::min(options.max_prompt_tokens, config.n_positions)
                            : config.n_positions;
  if (prompt_tokens > limit) {
    return InvalidArgument(absl::StrCat("the prompt has ", prompt_tokens,
                                        " tokens; at most ", limit, " may be traced"));
  }
  if (options.kinds.empty()) return InvalidArgument("no kinds to trace");
  if (std::set<TraceKind>(options.kinds.begin(), options.kinds.end()).size() !=
      options.kinds.size()) {
    return InvalidArgument("a kind is listed twice");
  }
  if (options.window.has_value() && (*options.window < 1 || *options.window > config.n_layer)) {
    return InvalidArgument(absl::StrCat("window ", *options.window, " is outside [1, ",
                                        config.n_layer, "] (the model's layers)"));
  }
  if (options.samples < 1 || options.samples > kMaxTraceSamples) {
    return InvalidArgument(absl::StrCat("samples ", options.samples, " is outside [1, ",
                                        kMaxTraceSamples, "]"));
  }
  if (!std::isfinite(options.noise.value) || options.noise.value < 0) {
    return InvalidArgument(absl::StrCat("noise ", options.noise.value,
                                        " must be a finite number >= 0"));
  }
  if (options.embedding_std.has_value() &&
      (!std::isfinite(*options.embedding_std) || *options.embedding_std < 0)) {
    return InvalidArgument("embedding_std must be a finite number >= 0");
  }
  if (options.max_batch_rows < 1) return InvalidArgument("max_batch_rows must be >= 1");
  if (!(options.block_overhead_macs >= 0)) {
    return InvalidArgument("block_overhead_macs must be >= 0");
  }
  return absl::OkStatus();
}

// One (kind, token, layer) cell of the result.
struct Cell {
  int64_t grid = 0;  // index into TraceOptions::kinds
  TraceKind kind = TraceKind::kState;
  int64_t token = 0;
  int64_t layer = 0;
};

// Replacements at one hook address, gathered over a forward's restorations.
struct Patch {
  std::vector<Site> sites;
  std::vector<torch::Tensor> values;  // [n_i, C] pieces, one per restoration
};

class Tracer {
 public:
  Tracer(const Gpt2Model& model, const TraceInput& input, const TraceOptions& options,
         double sigma)
      : model_(model),
        input_(input),
        options_(options),
        T_(static_cast<int64_t>(input.tokens.size())),
        L_(model.config().n_layer),
        S_(options.samples),
        window_(options.window.value_or(DefaultTraceWindow(model.config().n_layer))),
        sigma_(sigma) {
    if (options.edit_view != nullptr) edits_.views = {options.edit_view};
  }

  absl::StatusOr<TraceResult> Run();

 private:
  bool CannotChangeAnswer(const Cell& cell) const;
  int64_t FirstRestoredLayer(const Cell& cell) const;
  absl::Status BeforeForward();
  void AfterForward(const torch::Tensor& tokens);
  torch::Tensor Forward(const torch::Tensor& tokens, const Interventions* interventions,
                        KvCache* cache, int64_t start_layer = 0,
                        const torch::Tensor& start_hidden = torch::Tensor());
  absl::Status RunClean();
  absl::Status RunCorrupted();
  torch::Tensor NoiseFrom(int64_t first_position) const;
  KvCache PrefixCache(int64_t token, int64_t restorations, int64_t first_layer) const;
  int64_t StartLayer(const std::vector<Cell>& cells) const;
  std::vector<std::vector<Cell>> PlanForwards(std::vector<Cell> cells) const;
  void AddRestoration(const Cell& cell, int64_t first_row, int64_t first_position,
                      std::map<HookAddress, Patch>& patches) const;
  absl::StatusOr<std::vector<double>> RunRestorations(const std::vector<Cell>& cells);

  const Gpt2Model& model_;
  const TraceInput& input_;
  const TraceOptions& options_;
  const int64_t T_, L_, S_, window_;
  const double sigma_;
  RowEdits edits_;
  TraceCost cost_;
  int64_t planned_forwards_ = 0;
  int64_t answer_ = -1;
  double high_ = 0, low_ = 0;
  torch::Tensor tokens_;  // [1, T]
  torch::Tensor noise_;   // [S, subject tokens, C]
  // Clean activations [L, T, C] per point.
  std::map<HookPoint, torch::Tensor> clean_;
  // Corrupted MLP / attention outputs [L, S, T, C] (only when severing).
  torch::Tensor corrupted_frozen_;
  // Corrupted residual stream after each block but the last [L - 1, S, T, C]:
  // where forwards that restore only later layers start. Not kept when too
  // large (then every forward starts at the embedding).
  bool keep_resid_ = false;
  torch::Tensor corrupted_resid_;
  KvCache corrupted_cache_;  // per layer [S, H, T, D]
};

int64_t Tracer::FirstRestoredLayer(const Cell& cell) const {
  if (cell.kind == TraceKind::kState) return cell.layer;
  return WindowLayers(cell.layer, window_, L_).first;
}

// Restoring at a token before the subject copies values equal to the
// corrupted ones; restoring only the last layer at a token other than the
// last cannot reach the last position's logits.
bool Tracer::CannotChangeAnswer(const Cell& cell) const {
  if (cell.token < input_.subject_begin) return true;
  return cell.token < T_ - 1 && FirstRestoredLayer(cell) == L_ - 1;
}

absl::Status Tracer::BeforeForward() {
  if (options_.check_cancelled) return options_.check_cancelled();
  return absl::OkStatus();
}

void Tracer::AfterForward(const torch::Tensor& tokens) {
  ++cost_.forwards;
  cost_.rows += tokens.size(0);
  cost_.token_rows += tokens.numel();
  cost_.max_batch_rows = std::max(cost_.max_batch_rows, tokens.size(0));
  if (options_.progress) options_.progress(cost_.forwards, planned_forwards_);
}

// Logits at the last position [B, 1, V].
torch::Tensor Tracer::Forward(const torch::Tensor& tokens, const Interventions* interventions,
                              KvCache* cache, int64_t start_layer,
                              const torch::Tensor& start_hidden) {
  ForwardOptions forward;
  forward.start_layer = start_layer;
  forward.start_hidden = start_hidden;
  forward.cache = cache;
  forward.interventions = interventions;
  forward.edits = edits_.views.empty() ? nullptr : &edits_;
  forward.last_position_logits = true;
  torch::Tensor logits = model_.Forward({tokens, torch::Tensor()}, forward);
  AfterForward(tokens);
  return logits;
}

// p(answer) per row [B] from last-position logits [B, 1, V].
torch::Tensor AnswerProbability(const torch::Tensor& logits, int64_t answer) {
  return torch::softmax(logits.select(1, 0).to(torch::kFloat32), -1).select(1, answer);
}

absl::Status Tracer::RunClean() {
  RETURN_IF_ERROR(BeforeForward());
  Interventions interventions;
  for (int64_t layer = 0; layer < L_; ++layer) {
    for (HookPoint point : {HookPoint::kResidPost, HookPoint::kMlpOut, HookPoint::kAttnOut}) {
      interventions.Capture({point, layer});
    }
  }
  torch::Tensor logits = Forward(tokens_, &interventions, nullptr);
  torch::Tensor probs = torch::softmax(logits[0][0].to(torch::kFloat32), -1);  // [V]
  answer_ = input_.answer_token.value_or(probs.argmax().item<int64_t>());
  high_ = probs[answer_].item<double>();
  for (HookPoint point : {HookPoint::kResidPost, HookPoint::kMlpOut, HookPoint::kAttnOut}) {
    std::vector<torch::Tensor> layers;
    for (int64_t layer = 0; layer < L_; ++layer) {
      layers.push_back(interventions.Captured({point, layer})[0]);  // [T, C]
    }
    clean_[point] = torch::stack(layers);  // [L, T, C]
  }
  return absl::OkStatus();
}

// Noise for positions [first_position, T) of the S samples: [S, T', C], zero
// outside the subject (adding 0 leaves an embedding bit-identical).
torch::Tensor Tracer::NoiseFrom(int64_t first_position) const {
  const int64_t C = model_.config().n_embd;
  torch::Tensor delta = torch::zeros({S_, T_ - first_position, C}, noise_.options());
  const int64_t from = std::max(first_position, input_.subject_begin);
  if (from < input_.subject_end) {
    delta.narrow(1, from - first_position, input_.subject_end - from)
        .copy_(noise_.narrow(1, from - input_.subject_begin, input_.subject_end - from));
  }
  return delta;
}

absl::Status Tracer::RunCorrupted() {
  RETURN_IF_ERROR(BeforeForward());
  Interventions interventions;
  interventions.Add({HookPoint::kEmbed, 0}, {}, NoiseFrom(0));
  const HookPoint frozen =
      options_.sever == SeverMode::kMlp ? HookPoint::kMlpOut : HookPoint::kAttnOut;
  if (options_.sever != SeverMode::kNone) {
    for (int64_t layer = 0; layer < L_; ++layer) interventions.Capture({frozen, layer});
  }
  if (keep_resid_) {
    for (int64_t layer = 0; layer + 1 < L_; ++layer) {
      interventions.Capture({HookPoint::kResidPost, layer});
    }
  }
  torch::Tensor logits =
      Forward(tokens_.expand({S_, T_}).contiguous(), &interventions, &corrupted_cache_);
  low_ = AnswerProbability(logits, answer_).mean().item<double>();
  if (keep_resid_) {
    std::vector<torch::Tensor> layers;
    for (int64_t layer = 0; layer + 1 < L_; ++layer) {
      layers.push_back(interventions.Captured({HookPoint::kResidPost, layer}));  // [S, T, C]
    }
    corrupted_resid_ = torch::stack(layers);  // [L - 1, S, T, C]
  }
  if (options_.sever != SeverMode::kNone) {
    std::vector<torch::Tensor> layers;
    for (int64_t layer = 0; layer < L_; ++layer) {
      layers.push_back(interventions.Captured({frozen, layer}));  // [S, T, C]
    }
    corrupted_frozen_ = torch::stack(layers);  // [L, S, T, C]
  }
  return absl::OkStatus();
}

// The corrupted run's cache for positions [0, token), each sample's rows
// repeated for `restorations` restorations (row r x S + s is sample s).
// Layers before `first_layer` are left empty: a forward starting there
// never reads them.
KvCache Tracer::PrefixCache(int64_t token, int64_t restorations, int64_t first_layer) const {
  KvCache cache;
  cache.keys.resize(corrupted_cache_.keys.size());
  cache.values.resize(corrupted_cache_.values.size());
  for (size_t layer = first_layer; layer < corrupted_cache_.keys.size(); ++layer) {
    cache.keys[layer] =
        corrupted_cache_.keys[layer].narrow(2, 0, token).repeat({restorations, 1, 1, 1});
    cache.values[layer] =
        corrupted_cache_.values[layer].narrow(2, 0, token).repeat({restorations, 1, 1, 1});
  }
  const int64_t rows = restorations * S_;
  auto options = torch::TensorOptions().dtype(torch::kInt64).device(model_.device());
  cache.mask = torch::ones({rows, token}, options);
  cache.next_position = torch::full({rows}, token, options);
  return cache;
}

// Patches for one restoration whose S rows start at `first_row`, in a
// forward over positions [first_position, T).
void Tracer::AddRestoration(const Cell& cell, int64_t first_row, int64_t first_position,
                            std::map<HookAddress, Patch>& patches) const {
  std::vector<Site> sites;
  for (int64_t s = 0; s < S_; ++s) sites.push_back({first_row + s, cell.token - first_position});
  auto restore = [&](HookPoint point, int64_t layer, torch::Tensor values) {
    Patch& patch = patches[{point, layer}];
    patch.sites.insert(patch.sites.end(), sites.begin(), sites.end());
    patch.values.push_back(values.expand({S_, values.size(-1)}));
  };
  if (cell.kind == TraceKind::kState) {
    restore(HookPoint::kResidPost, cell.layer, clean_.at(HookPoint::kResidPost)[cell.layer][cell.token]);
    if (options_.sever != SeverMode::kNone) {
      const HookPoint frozen =
          options_.sever == SeverMode::kMlp ? HookPoint::kMlpOut : HookPoint::kAttnOut;
      for (int64_t layer = cell.layer + 1; layer < L_; ++layer) {
        // [S, C]: each sample keeps its own corrupted value.
        restore(frozen, layer, corrupted_frozen_[layer].select(1, cell.token));
      }
    }
    return;
  }
  const HookPoint point = cell.kind == TraceKind::kMlp ? HookPoint::kMlpOut : HookPoint::kAttnOut;
  auto [first, last] = WindowLayers(cell.layer, window_, L_);
  for (int64_t layer = first; layer < last; ++layer) {
    restore(point, layer, clean_.at(point)[layer][cell.token]);
  }
}

// The layer a forward over `cells` can start at: their earliest restored
// layer, or 0 without the corrupted residual stream.
int64_t Tracer::StartLayer(const std::vector<Cell>& cells) const {
  if (!keep_resid_) return 0;
  int64_t first = L_;
  for (const Cell& cell : cells) first = std::min(first, FirstRestoredLayer(cell));
  return first;
}

// Groups the cells into forwards. A forward over a group runs positions
// [p, T) from its earliest token p (on the corrupted prefix's KV cache) and
// blocks [f, L) from its earliest restored layer f; positions and blocks a
// cell does not restore compute the corrupted run again, so any grouping
// gives the same scores. Cells sorted by (token, first restored layer) are
// cut into consecutive groups of at most max_batch_rows rows minimising
//   sum over groups of (L - f) x (block overhead + rows x (T - p) x block MACs)
//                      + rows x LM-head MACs + 2 x block overhead,
// by dynamic programming: deep, wide models get per-token forwards that
// start late; small ones a few large forwards across tokens, where the
// per-forward overhead dominates.
std::vector<std::vector<Cell>> Tracer::PlanForwards(std::vector<Cell> cells) const {
  std::stable_sort(cells.begin(), cells.end(), [&](const Cell& a, const Cell& b) {
    if (a.token != b.token) return a.token < b.token;
    return FirstRestoredLayer(a) < FirstRestoredLayer(b);
  });
  const auto n = static_cast<int64_t>(cells.size());
  const int64_t per_forward = std::max<int64_t>(1, options_.max_batch_rows / S_);
  const double C = static_cast<double>(model_.config().n_embd);
  const double block_macs = 12.0 * C * C + 2.0 * C * static_cast<double>(T_);
  const double head_macs = C * static_cast<double>(model_.config().vocab_size);
  const double overhead = options_.block_overhead_macs;
  std::vector<double> best(n + 1, std::numeric_limits<double>::infinity());
  std::vector<int64_t> cut(n + 1, 0);
  best[0] = 0;
  for (int64_t end = 1; end <= n; ++end) {
    int64_t first_layer = L_;
    for (int64_t begin = end - 1; begin >= std::max<int64_t>(0, end - per_forward); --begin) {
      first_layer = std::min(first_layer, keep_resid_ ? FirstRestoredLayer(cells[begin]) : 0);
      const double rows = static_cast<double>((end - begin) * S_);
      const double length = static_cast<double>(T_ - cells[begin].token);
      const double cost = best[begin] +
                          static_cast<double>(L_ - first_layer) *
                              (overhead + rows * length * block_macs) +
                          rows * head_macs + 2.0 * overhead;
      if (cost < best[end]) {
        best[end] = cost;
        cut[end] = begin;
      }
    }
  }
  std::vector<std::vector<Cell>> forwards;
  for (int64_t end = n; end > 0; end = cut[end]) {
    forwards.emplace(forwards.begin(), cells.begin() + cut[end], cells.begin() + end);
  }
  return forwards;
}

// Scores of `cells`, in order, from one forward over positions from their
// earliest token on.
absl::StatusOr<std::vector<double>> Tracer::RunRestorations(const std::vector<Cell>& cells) {
  RETURN_IF_ERROR(BeforeForward());
  const auto R = static_cast<int64_t>(cells.size());
  int64_t token = T_;
  for (const Cell& cell : cells) token = std::min(token, cell.token);
  const int64_t rows = R * S_, length = T_ - token;
  torch::Tensor tokens = tokens_.narrow(1, token, length).expand({rows, length}).contiguous();
  // Every restored value sits at a layer >= first: blocks before it compute
  // exactly the corrupted run, so the forward starts from its hidden state.
  const int64_t first = StartLayer(cells);
  Interventions interventions;
  if (first == 0 && token < input_.subject_end) {
    interventions.Add({HookPoint::kEmbed, 0}, {}, NoiseFrom(token).repeat({R, 1, 1}));
  }
  std::map<HookAddress, Patch> patches;
  for (int64_t i = 0; i < R; ++i) AddRestoration(cells[i], i * S_, token, patches);
  for (auto& [address, patch] : patches) {
    interventions.Replace(address, std::move(patch.sites), torch::cat(patch.values));
  }
  KvCache cache = token > 0 ? PrefixCache(token, R, first) : KvCache();
  torch::Tensor start_hidden;
  if (first > 0) {
    start_hidden = corrupted_resid_[first - 1].narrow(1, token, length).repeat({R, 1, 1});
  }
  torch::Tensor logits = Forward(tokens, &interventions, token > 0 ? &cache : nullptr, first,
                                 start_hidden);
  torch::Tensor scores = AnswerProbability(logits, answer_).view({R, S_}).mean(1).to(torch::kFloat64);
  std::vector<double> out(R);
  for (int64_t i = 0; i < R; ++i) out[i] = scores[i].item<double>();
  return out;
}

absl::StatusOr<TraceResult> Tracer::Run() {
  torch::NoGradGuard no_grad;
  const int64_t C = model_.config().n_embd;
  auto long_options = torch::TensorOptions().dtype(torch::kInt64).device(model_.device());
  tokens_ = torch::tensor(input_.tokens, torch::kInt64).view({1, T_}).to(long_options);
  noise_ = SubjectNoise(S_, input_.subject_end - input_.subject_begin, C, sigma_, options_.seed,
                        torch::TensorOptions().dtype(model_.dtype()).device(model_.device()));

  // Which cells need a forward, by token (grouped into forwards once the
  // corrupted run has shown where forwards may start).
  std::vector<std::vector<Cell>> by_token(T_);
  std::vector<Cell> skipped;
  for (int64_t g = 0; g < static_cast<int64_t>(options_.kinds.size()); ++g) {
    for (int64_t t = 0; t < T_; ++t) {
      for (int64_t l = 0; l < L_; ++l) {
        Cell cell{g, options_.kinds[g], t, l};
        (CannotChangeAnswer(cell) ? skipped : by_token[t]).push_back(cell);
      }
    }
  }
  keep_resid_ = L_ > 1 && (L_ - 1) * S_ * T_ * C <= kMaxKeptResidualElements;
  std::vector<Cell> to_run;
  for (const auto& cells : by_token) to_run.insert(to_run.end(), cells.begin(), cells.end());
  const std::vector<std::vector<Cell>> plan = PlanForwards(std::move(to_run));
  planned_forwards_ = 2 + static_cast<int64_t>(plan.size());

  RETURN_IF_ERROR(RunClean());
  RETURN_IF_ERROR(RunCorrupted());

  TraceResult result;
  for (TraceKind kind : options_.kinds) {
    result.scores.push_back({kind, std::vector<std::vector<double>>(T_, std::vector<double>(L_))});
  }
  for (const Cell& cell : skipped) result.scores[cell.grid].values[cell.token][cell.layer] = low_;
  for (const std::vector<Cell>& chunk : plan) {
    ASSIGN_OR_RETURN(std::vector<double> scores, RunRestorations(chunk));
    for (size_t i = 0; i < chunk.size(); ++i) {
      result.scores[chunk[i].grid].values[chunk[i].token][chunk[i].layer] = scores[i];
    }
  }

  result.tokens = input_.tokens;
  result.subject_begin = input_.subject_begin;
  result.subject_end = input_.subject_end;
  result.answer_token = answer_;
  result.high_score = high_;
  result.low_score = low_;
  result.num_layers = L_;
  result.window = window_;
  result.samples = S_;
  result.seed = options_.seed;
  result.noise_sigma = sigma_;
  result.sever = options_.sever;
  cost_.restorations = static_cast<int64_t>(options_.kinds.size()) * T_ * L_;
  cost_.skipped = static_cast<int64_t>(skipped.size());
  result.cost = cost_;
  return result;
}

}  // namespace

absl::StatusOr<TraceResult> CausalTrace(const Gpt2Model& model, const TraceInput& input,
                                        const TraceOptions& options) {
  RETURN_IF_ERROR(ValidateInput(model.config(), input));
  RETURN_IF_ERROR(
      ValidateOptions(model.config(), static_cast<int64_t>(input.tokens.size()), options));
  double sigma = options.noise.value;
  NoiseBasis basis = NoiseBasis::kAbsolute;
  if (options.noise.mode == NoiseScale::Mode::kMultiple) {
    basis = options.embedding_std.has_value() ? NoiseBasis::kSubjectEmbeddings
                                              : NoiseBasis::kVocabularyEmbeddings;
    double embedding_std = 0;
    if (options.embedding_std.has_value()) {
      embedding_std = *options.embedding_std;
    } else {
      ASSIGN_OR_RETURN(embedding_std, VocabularyEmbeddingStd(model));
    }
    sigma *= embedding_std;
  }
  ASSIGN_OR_RETURN(TraceResult result, GuardTorch("causal trace", [&] {
                     return Tracer(model, input, options, sigma).Run();
                   }));
  result.noise_basis = basis;
  return result;
}

absl::StatusOr<TraceResult> TracePrompt(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                        std::string_view prompt, std::string_view subject,
                                        const TraceOptions& options) {
  ASSIGN_OR_RETURN(LocatedPrompt located, LocateSubject(tokenizer, prompt, subject));
  TraceInput input;
  input.tokens = located.tokens;
  input.subject_begin = located.subject_begin;
  input.subject_end = located.subject_end;
  if (options.target.has_value()) {
    ASSIGN_OR_RETURN(std::vector<int64_t> target, tokenizer.Encode(*options.target));
    if (target.empty()) return InvalidArgument("the target is empty");
    input.answer_token = target.front();
  }
  ASSIGN_OR_RETURN(TraceResult result, CausalTrace(model, input, options));
  result.token_texts = std::move(located.token_texts);
  ASSIGN_OR_RETURN(result.answer_text, tokenizer.Decode({result.answer_token}));
  return result;
}

}  // namespace romed
