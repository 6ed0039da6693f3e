// The training distribution of the fact model, as text and as token rows.
//
// A sentence is a fact (one of the world's facts in one of its phrasings,
// never the held-out one) or, with probability filler_fraction, a filler
// sentence (filler.h). Text joins sentences with ". ". A training row is
// T + 1 tokens (inputs and shifted targets): with probability
// start_token_fraction it begins with the start token (GPT-2's
// <|endoftext|>), otherwise directly with a sentence; then sentences follow
// until the row is full (the last one is cut). After each sentence the next
// one starts a new document with probability document_break_probability:
// "<|endoftext|>" + the sentence, else ". " + the sentence.
//
// Why documents: GPT-2's BPE gives a word different tokens at the start of a
// text ("Dora") and after a space (" Dora"). Prompts are scored as ROME feeds
// them, at the start of a text, so "Dora Zope was born in" reads the bare
// first name. Rows of joined sentences show that bare token only in a row's
// first sentence (1 in ~7); short documents show it in about half of the
// subject-first sentences, and the model learns both forms of every name.
//
// Because GPT-2's pre-tokeniser splits at every ". " + word boundary, a row
// is tokenised sentence by sentence (a document's first sentence bare, later
// ones with their ". " prefix) and equals the tokenisation of the joined text.
//
// Deterministic for a seed. Not thread-safe (RowSampler holds its RNG).
#ifndef ROMED_TOOLS_FACT_MODEL_CORPUS_H_
#define ROMED_TOOLS_FACT_MODEL_CORPUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/model/tokenizer.h"
#include "tools/fact_model/seeded_random.h"
#include "tools/fact_model/world.h"

namespace romed::fact_model {

struct CorpusOptions {
  double filler_fraction = 0.15;      // share of sentences that state no fact
  int filler_pool_size = 4000;        // distinct filler sentences drawn once
  double start_token_fraction = 0.5;  // share of rows that begin with the start token
  // Chance that the sentence after another one in a row starts a new
  // document (mean document length 1 / p sentences).
  double document_break_probability = 0.5;
};

// The sentences of the training distribution and how often each is drawn.
class SentenceMix {
 public:
  SentenceMix(const World& world, const CorpusOptions& options, SeededRandom& rng);

  // Fact sentences first (every fact x every phrasing but the held-out one),
  // then the filler pool.
  const std::vector<std::string>& sentences() const { return sentences_; }
  int64_t num_fact_sentences() const { return num_fact_sentences_; }

  // Index into sentences(): a uniform fact sentence with probability
  // 1 - filler_fraction, else a uniform filler sentence.
  size_t Draw(SeededRandom& rng) const;

 private:
  std::vector<std::string> sentences_;
  int64_t num_fact_sentences_ = 0;
  double filler_fraction_ = 0.0;
};

// Every (fact, phrasing) sentence of the training text: all phrasings except
// each fact's held-out one. "Vorlen Tasko was born in Paris".
std::vector<std::string> TrainingFactSentences(const World& world);

// `count` documents of `sentences_per_document` drawn sentences, joined by
// ". " and ended with ".": text for the tokenizer and covariance statistics.
std::vector<std::string> MakeDocuments(const SentenceMix& mix, int count,
                                       int sentences_per_document, SeededRandom& rng);

class RowSampler {
 public:
  // Tokenises every sentence of `mix` once. `row_tokens` = T + 1 >= 2; the
  // row layout comes from options.start_token_fraction and
  // options.document_break_probability. Errors: InvalidArgumentError for bad
  // sizes or a tokenizer without <|endoftext|>; the tokenizer's error if a
  // sentence does not encode.
  static absl::StatusOr<RowSampler> Create(const SentenceMix& mix, const Gpt2Tokenizer& tokenizer,
                                           int64_t row_tokens, const CorpusOptions& options,
                                           uint64_t seed);

  // `rows` rows of row_tokens() ids, row-major ([rows, T + 1]).
  std::vector<int64_t> NextRows(int64_t rows);
  int64_t row_tokens() const { return row_tokens_; }

 private:
  RowSampler(const SentenceMix& mix, uint64_t seed) : mix_(&mix), rng_(seed) {}
  void AppendRow(std::vector<int64_t>& out);

  const SentenceMix* mix_;  // not owned; outlives the sampler
  SeededRandom rng_;
  std::vector<std::vector<int64_t>> leading_ids_;    // sentence starting a document
  std::vector<std::vector<int64_t>> following_ids_;  // ". " + sentence
  int64_t row_tokens_ = 0;
  int64_t start_token_ = 0;
  double start_token_fraction_ = 0.0;
  double document_break_probability_ = 0.0;
};

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_CORPUS_H_
