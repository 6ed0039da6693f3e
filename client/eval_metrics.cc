#include "client/eval_metrics.h"

#include <cctype>
#include <cmath>
#include <map>

#include "absl/strings/str_replace.h"

namespace romed::client {
namespace {

// Mean of `value(p)` and the share of `wins(p)` over `prompts`.
template <typename Wins, typename Value>
std::optional<RateAndMagnitude> ShareAndMean(const std::vector<TargetComparison>& prompts,
                                             Wins wins, Value value) {
  if (prompts.empty()) return std::nullopt;
  double won = 0, sum = 0;
  for (const TargetComparison& p : prompts) {
    won += wins(p) ? 1 : 0;
    sum += value(p);
  }
  const double n = static_cast<double>(prompts.size());
  return RateAndMagnitude{won / n, sum / n};
}

bool IsWordByte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }

// Mean of `get(c)` over the cases where it is set.
template <typename Get>
std::optional<double> MeanOf(const std::vector<CaseMetrics>& cases, Get get) {
  double sum = 0;
  int64_t n = 0;
  for (const CaseMetrics& c : cases) {
    if (std::optional<double> v = get(c)) {
      sum += *v;
      ++n;
    }
  }
  if (n == 0) return std::nullopt;
  return sum / static_cast<double>(n);
}

std::optional<double> SetScores(std::optional<double> a, std::optional<double> b,
                                std::optional<double> c) {
  std::vector<double> values;
  for (const std::optional<double>& v : {a, b, c}) {
    if (v) values.push_back(*v);
  }
  if (values.empty()) return std::nullopt;
  return HarmonicMean(values);
}

}  // namespace

double TargetComparison::NewMinusTrue() const { return std::exp(logp_new) - std::exp(logp_true); }

std::optional<RateAndMagnitude> ScoreTowardNew(const std::vector<TargetComparison>& prompts) {
  return ShareAndMean(
      prompts, [](const TargetComparison& p) { return p.PrefersNew(); },
      [](const TargetComparison& p) { return p.NewMinusTrue(); });
}

std::optional<RateAndMagnitude> ScoreTowardTrue(const std::vector<TargetComparison>& prompts) {
  return ShareAndMean(
      prompts, [](const TargetComparison& p) { return p.PrefersTrue(); },
      [](const TargetComparison& p) { return -p.NewMinusTrue(); });
}

double HarmonicMean(const std::vector<double>& values) {
  double inverse_sum = 0;
  for (double v : values) {
    if (!(v > 0)) return 0;
    inverse_sum += 1 / v;
  }
  return static_cast<double>(values.size()) / inverse_sum;
}

std::vector<std::string> WordTokens(absl::string_view text) {
  std::vector<std::string> tokens;
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isspace(c)) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    if (IsWordByte(c)) {
      while (end < text.size() && IsWordByte(static_cast<unsigned char>(text[end]))) ++end;
    } else if (c == '\'' && end < text.size() && IsWordByte(static_cast<unsigned char>(text[end]))) {
      // "'s", "'re": a clitic after a word is one token, as the reference's.
      while (end < text.size() && IsWordByte(static_cast<unsigned char>(text[end]))) ++end;
    }
    tokens.emplace_back(text.substr(i, end - i));
    i = end;
  }
  return tokens;
}

double NGramEntropy(const std::vector<std::string>& tokens, int n) {
  if (n < 1 || tokens.size() < static_cast<size_t>(n)) return 0;
  std::map<std::vector<std::string>, int64_t> counts;
  for (size_t i = 0; i + n <= tokens.size(); ++i) {
    ++counts[std::vector<std::string>(tokens.begin() + i, tokens.begin() + i + n)];
  }
  const double total = static_cast<double>(tokens.size() - n + 1);
  double entropy = 0;
  for (const auto& [gram, count] : counts) {
    const double f = static_cast<double>(count) / total;
    entropy -= f * std::log2(f);
  }
  return entropy;
}

std::string CleanGeneration(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"<|endoftext|>", " "}});
}

double GenerationEntropy(absl::string_view text) {
  const std::vector<std::string> tokens = WordTokens(text);
  return (2.0 / 3.0 * NGramEntropy(tokens, 2) + 4.0 / 3.0 * NGramEntropy(tokens, 3)) / 2.0;
}

std::optional<double> CaseMetrics::Score() const {
  auto score = [](const std::optional<RateAndMagnitude>& m) {
    return m ? std::optional<double>(m->score) : std::nullopt;
  };
  return SetScores(score(efficacy), score(paraphrase), score(neighborhood));
}

MetricSummary Summarize(const std::vector<CaseMetrics>& cases) {
  using M = std::optional<RateAndMagnitude> CaseMetrics::*;
  auto score = [&](M field) {
    return MeanOf(cases, [field](const CaseMetrics& c) {
      return (c.*field) ? std::optional<double>((c.*field)->score) : std::nullopt;
    });
  };
  auto magnitude = [&](M field) {
    return MeanOf(cases, [field](const CaseMetrics& c) {
      return (c.*field) ? std::optional<double>((c.*field)->magnitude) : std::nullopt;
    });
  };
  MetricSummary s;
  s.cases = static_cast<int64_t>(cases.size());
  s.es = score(&CaseMetrics::efficacy);
  s.em = magnitude(&CaseMetrics::efficacy);
  s.ps = score(&CaseMetrics::paraphrase);
  s.pm = magnitude(&CaseMetrics::paraphrase);
  s.ns = score(&CaseMetrics::neighborhood);
  s.nm = magnitude(&CaseMetrics::neighborhood);
  s.ge = MeanOf(cases, [](const CaseMetrics& c) { return c.generation_entropy; });
  s.s = SetScores(s.es, s.ps, s.ns);
  return s;
}

std::optional<double> RetentionCount::Share() const {
  if (held_before == 0) return std::nullopt;
  return static_cast<double>(kept) / static_cast<double>(held_before);
}

RetentionCount& RetentionCount::operator+=(const RetentionCount& other) {
  held_before += other.held_before;
  kept += other.kept;
  return *this;
}

}  // namespace romed::client
