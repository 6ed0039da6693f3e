// CounterFact metrics as ROME.md section 6 (and the paper's reference
// evaluation) define them, as plain functions over scores a server returned.
//
// Per prompt, a target's probability is exp(mean per-token log-probability)
// of the target with a leading space (Score's `mean_logprob`). Then, per case:
//   ES / EM  rewrite prompt(s): share with P(new) > P(true) / mean P(new) - P(true)
//   PS / PM  paraphrase prompts: the same
//   NS / NM  neighbourhood prompts: share with P(true) > P(new) / mean P(true) - P(new)
//   GE       mean over generated texts of (2/3 H2 + 4/3 H3) / 2, Hn the entropy
//            (bits) of the text's n-gram frequencies
// and over cases: the mean of each per-case value (cases without such
// prompts are left out of that mean), with S the harmonic mean of ES, PS, NS.
// Values are fractions in [0, 1] (magnitudes in [-1, 1], GE in bits); the
// paper's tables print 100x these.
//
// Torch-free; pure functions, thread-safe.
#ifndef ROMED_CLIENT_EVAL_METRICS_H_
#define ROMED_CLIENT_EVAL_METRICS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace romed::client {

// One prompt's two targets: mean per-token log-probabilities (natural log).
struct TargetComparison {
  double logp_new = 0;
  double logp_true = 0;

  bool PrefersNew() const { return logp_new > logp_true; }
  bool PrefersTrue() const { return logp_true > logp_new; }
  // P(new) - P(true) with P = exp(mean log-probability).
  double NewMinusTrue() const;
};

// A share of prompts (score) and a mean probability difference (magnitude).
struct RateAndMagnitude {
  double score = 0;
  double magnitude = 0;
};

// Rewrite and paraphrase prompts: score = share preferring target_new,
// magnitude = mean P(new) - P(true). nullopt for no prompts.
std::optional<RateAndMagnitude> ScoreTowardNew(const std::vector<TargetComparison>& prompts);

// Neighbourhood prompts: score = share preferring target_true, magnitude =
// mean P(true) - P(new). nullopt for no prompts.
std::optional<RateAndMagnitude> ScoreTowardTrue(const std::vector<TargetComparison>& prompts);

// n / sum(1 / v); 0 if any value is <= 0 (a zero score zeroes S, as in the
// paper). Precondition: `values` is not empty.
double HarmonicMean(const std::vector<double>& values);

// Words and punctuation of `text`, as the reference's word tokenizer splits
// them for GE: runs of letters, digits and non-ASCII bytes form a word
// (an apostrophe inside a word starts a new one: "Zope's" -> "Zope", "'s");
// every other non-space character is a token of its own.
std::vector<std::string> WordTokens(absl::string_view text);

// Entropy in bits of the frequencies of the `n`-grams of `tokens`
// (-sum f log2 f); 0 when there are fewer than n tokens. n >= 1.
double NGramEntropy(const std::vector<std::string>& tokens, int n);

// A generated text as GE reads it: each "<|endoftext|>" replaced by a space
// (the reference drops it; a space keeps the words around it apart).
std::string CleanGeneration(absl::string_view text);

// The reference's n_gram_entropy of one text: (2/3 H2 + 4/3 H3) / 2 over
// WordTokens(text).
double GenerationEntropy(absl::string_view text);

// One case's metrics (unset when the case had no prompts of that kind or no
// generations).
struct CaseMetrics {
  std::optional<RateAndMagnitude> efficacy;      // ES / EM
  std::optional<RateAndMagnitude> paraphrase;    // PS / PM
  std::optional<RateAndMagnitude> neighborhood;  // NS / NM
  std::optional<double> generation_entropy;      // GE (bits)

  // Harmonic mean of the case's ES, PS and NS that are set; nullopt if none.
  std::optional<double> Score() const;
};

// The mean of each metric over the cases that have it, and S.
struct MetricSummary {
  int64_t cases = 0;  // cases summarised
  std::optional<double> es, em, ps, pm, ns, nm, ge;
  // Harmonic mean of es, ps, ns (those set); nullopt if none is.
  std::optional<double> s;
};

MetricSummary Summarize(const std::vector<CaseMetrics>& cases);

// Prompts whose preferred target was held before and how many still are.
struct RetentionCount {
  int64_t held_before = 0;
  int64_t kept = 0;
  // kept / held_before; nullopt when nothing was held.
  std::optional<double> Share() const;
  RetentionCount& operator+=(const RetentionCount& other);
};

}  // namespace romed::client

#endif  // ROMED_CLIENT_EVAL_METRICS_H_
