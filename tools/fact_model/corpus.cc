#include "tools/fact_model/corpus.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/core/status_macros.h"
#include "tools/fact_model/filler.h"

namespace romed::fact_model {

std::vector<std::string> TrainingFactSentences(const World& world) {
  std::vector<std::string> sentences;
  for (const Fact& fact : world.facts()) {
    for (int p = 0; p < kPhrasingsPerRelation; ++p) {
      if (p != fact.held_out_phrasing) sentences.push_back(world.Sentence(fact, p));
    }
  }
  return sentences;
}

SentenceMix::SentenceMix(const World& world, const CorpusOptions& options, SeededRandom& rng)
    : sentences_(TrainingFactSentences(world)), filler_fraction_(options.filler_fraction) {
  num_fact_sentences_ = static_cast<int64_t>(sentences_.size());
  for (std::string& filler : MakeFillerSentences(world, options.filler_pool_size, rng)) {
    sentences_.push_back(std::move(filler));
  }
}

size_t SentenceMix::Draw(SeededRandom& rng) const {
  const size_t num_filler = sentences_.size() - num_fact_sentences_;
  if (num_filler > 0 && rng.Bernoulli(filler_fraction_)) {
    return num_fact_sentences_ + rng.Index(num_filler);
  }
  return rng.Index(num_fact_sentences_);
}

std::vector<std::string> MakeDocuments(const SentenceMix& mix, int count,
                                       int sentences_per_document, SeededRandom& rng) {
  std::vector<std::string> documents;
  documents.reserve(count);
  for (int d = 0; d < count; ++d) {
    std::vector<std::string> parts;
    for (int s = 0; s < sentences_per_document; ++s) parts.push_back(mix.sentences()[mix.Draw(rng)]);
    documents.push_back(absl::StrCat(absl::StrJoin(parts, ". "), "."));
  }
  return documents;
}

absl::StatusOr<RowSampler> RowSampler::Create(const SentenceMix& mix,
                                              const Gpt2Tokenizer& tokenizer, int64_t row_tokens,
                                              const CorpusOptions& options, uint64_t seed) {
  if (row_tokens < 2) return absl::InvalidArgumentError("corpus: row_tokens must be >= 2");
  if (tokenizer.eos_id() < 0) {
    return absl::InvalidArgumentError("corpus: the tokenizer has no <|endoftext|> token");
  }
  RowSampler sampler(mix, seed);
  sampler.row_tokens_ = row_tokens;
  sampler.start_token_ = tokenizer.eos_id();
  sampler.start_token_fraction_ = options.start_token_fraction;
  sampler.document_break_probability_ = options.document_break_probability;
  for (const std::string& sentence : mix.sentences()) {
    ASSIGN_OR_RETURN(std::vector<int64_t> leading, tokenizer.Encode(sentence));
    ASSIGN_OR_RETURN(std::vector<int64_t> following, tokenizer.Encode(". " + sentence));
    sampler.leading_ids_.push_back(std::move(leading));
    sampler.following_ids_.push_back(std::move(following));
  }
  return sampler;
}

std::vector<int64_t> RowSampler::NextRows(int64_t rows) {
  std::vector<int64_t> out;
  out.reserve(rows * row_tokens_);
  for (int64_t r = 0; r < rows; ++r) AppendRow(out);
  return out;
}

void RowSampler::AppendRow(std::vector<int64_t>& out) {
  const size_t end = out.size() + row_tokens_;
  if (rng_.Bernoulli(start_token_fraction_)) out.push_back(start_token_);
  bool first = true;
  while (out.size() < end) {
    const size_t index = mix_->Draw(rng_);
    const bool new_document = !first && rng_.Bernoulli(document_break_probability_);
    if (new_document) out.push_back(start_token_);
    if (out.size() == end) break;
    const std::vector<int64_t>& ids =
        first || new_document ? leading_ids_[index] : following_ids_[index];
    const size_t take = std::min(ids.size(), end - out.size());
    out.insert(out.end(), ids.begin(), ids.begin() + take);
    first = false;
  }
}

}  // namespace romed::fact_model
