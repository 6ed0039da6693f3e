#include "server/model/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"

namespace romed {
namespace {

// Logits of one row as contiguous float32 on the CPU (a view when they are).
torch::Tensor CpuFloatRow(const torch::Tensor& logits) {
  return logits.reshape({-1}).to(torch::kCPU, torch::kFloat32).contiguous();
}

// Highest logit, lowest id on ties; NaN never wins.
int64_t Argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best] || std::isnan(logits[best])) best = i;
  }
  return best;
}

// log softmax(row)[id] for `row` [V] float32 (vectorised logsumexp).
float LogSoftmaxAt(const torch::Tensor& row, int64_t id) {
  return row.data_ptr<float>()[id] - torch::logsumexp(row, 0).item<float>();
}

// A uniform double in [0, 1) from the top 53 bits of one draw; unlike
// std::uniform_real_distribution, identical on every standard library.
double UniformUnit(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

// A token still in the running, with its unnormalised probability.
struct Candidate {
  int64_t id;
  double weight;  // exp((logit - max) / temperature)
};

// Every token with its weight at `temperature`, in id order.
std::vector<Candidate> TemperatureWeights(const float* logits, int64_t n, float temperature) {
  const float max = *std::max_element(logits, logits + n);
  std::vector<Candidate> candidates(n);
  for (int64_t i = 0; i < n; ++i) {
    candidates[i] = {i, std::exp((double(logits[i]) - max) / temperature)};
  }
  return candidates;
}

bool MoreLikely(const Candidate& a, const Candidate& b) {
  return a.weight > b.weight || (a.weight == b.weight && a.id < b.id);
}

// Keeps the `top_k` most likely candidates, sorted most likely first.
void KeepTopK(std::vector<Candidate>& candidates, int64_t top_k) {
  if (top_k <= 0 || top_k >= static_cast<int64_t>(candidates.size())) return;
  std::partial_sort(candidates.begin(), candidates.begin() + top_k, candidates.end(), MoreLikely);
  candidates.resize(top_k);
}

// Keeps the smallest most-likely-first prefix whose mass is >= top_p of the
// candidates' total (the nucleus). Orders only as many candidates as needed:
// selects the 64 most likely (nth_element, linear), sorts them, and widens
// the window fourfold until the nucleus fits, instead of sorting all V.
void KeepNucleus(std::vector<Candidate>& candidates, float top_p) {
  if (top_p >= 1.0f) return;
  const double total = std::accumulate(candidates.begin(), candidates.end(), 0.0,
                                       [](double s, const Candidate& c) { return s + c.weight; });
  size_t sorted = 0;
  double mass = 0.0;
  for (size_t window = 64;; window *= 4) {
    const size_t end = std::min(window, candidates.size());
    const auto first = candidates.begin() + sorted, last = candidates.begin() + end;
    std::nth_element(first, last - 1, candidates.end(), MoreLikely);
    std::sort(first, last, MoreLikely);
    for (; sorted < end; ++sorted) {
      mass += candidates[sorted].weight;
      if (mass >= top_p * total) {
        candidates.resize(sorted + 1);
        return;
      }
    }
    if (end == candidates.size()) return;  // rounding: keep everything
  }
}

// Draws one candidate with probability proportional to its weight.
int64_t Draw(const std::vector<Candidate>& candidates, std::mt19937_64& rng) {
  double total = 0.0;
  for (const Candidate& c : candidates) total += c.weight;
  const double target = UniformUnit(rng) * total;
  double mass = 0.0;
  for (const Candidate& c : candidates) {
    mass += c.weight;
    if (target < mass) return c.id;
  }
  // Rounding left target at the very top: the last token with any weight.
  for (auto it = candidates.rbegin(); it != candidates.rend(); ++it) {
    if (it->weight > 0.0) return it->id;
  }
  return candidates.front().id;
}

}  // namespace

absl::Status ValidateSampling(const SamplingParams& params) {
  if (!(params.temperature >= 0.0f) || std::isinf(params.temperature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be a finite number >= 0, got ", params.temperature));
  }
  if (params.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0, got ", params.top_k));
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", params.top_p));
  }
  return absl::OkStatus();
}

std::mt19937_64 MakeRng(uint64_t seed) { return std::mt19937_64(seed); }

SampledToken SampleToken(const torch::Tensor& logits, const SamplingParams& params,
                         std::mt19937_64& rng) {
  const torch::Tensor row = CpuFloatRow(logits);
  const float* data = row.data_ptr<float>();
  const int64_t n = row.numel();

  int64_t id;
  if (params.temperature == 0.0f || params.top_k == 1) {
    id = Argmax(data, n);
  } else {
    std::vector<Candidate> candidates = TemperatureWeights(data, n, params.temperature);
    KeepTopK(candidates, params.top_k);
    KeepNucleus(candidates, params.top_p);
    id = Draw(candidates, rng);
  }
  return {id, LogSoftmaxAt(row, id)};
}

}  // namespace romed
