// TrainBpe: trains a byte-level BPE tokenizer in GPT-2's file format
// (vocab.json + merges.txt) from a corpus, so a model trained here is served
// by the same Gpt2Tokenizer code path as GPT-2 itself.
//
//   BpeTrainerOptions options;
//   options.vocab_size = 2000;
//   options.required_words = {" Paris", "Paris", " Vor"};
//   ASSIGN_OR_RETURN(BpeModel bpe, TrainBpe(corpus, options));
//   // bpe.vocab_json / bpe.merges_txt load with Gpt2Tokenizer::FromText, and
//   // " Paris" encodes to exactly one id.
//
// How it trains:
//  1. Each corpus text is split on the literal "<|endoftext|>" (which is never
//     learned: it becomes the last id) and pre-tokenised with GPT-2's pattern
//     (PreTokenize in server/model/tokenizer.h); identical pre-tokens are
//     counted together.
//  2. Frequency merges: repeatedly merge the most frequent adjacent pair of
//     symbols within pre-tokens (ties broken by the pair's bytes, so the result
//     does not depend on hash order) until the pair count drops below
//     min_frequency or the vocabulary budget is used.
//  3. Required words: each in turn is encoded with the merges so far and
//     merges joining its pieces left to right are appended. Appending merges
//     never changes how a word that is already one token encodes (every step
//     of its encoding had a lower-ranked merge available), so every required
//     word ends as exactly one token. The number of frequency merges kept is
//     the largest that leaves room for these.
//
// The vocabulary: ids 0..255 are the 256 byte symbols in GPT-2's order (by
// code point of their printable spelling, as in GPT-2's encoder.json), then
// merged tokens in the order their merges appear, then "<|endoftext|>" last.
// The vocabulary may be smaller than requested when the corpus runs out of
// pairs seen min_frequency times; BpeModel::vocab_size says how large it is.
//
// Deterministic: the same corpus and options give byte-identical output.
// Thread-safe (no shared state).
#ifndef ROMED_TOOLS_FACT_MODEL_BPE_TRAINER_H_
#define ROMED_TOOLS_FACT_MODEL_BPE_TRAINER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace romed {

struct BpeTrainerOptions {
  // Total vocabulary size: 256 byte symbols + merged tokens + "<|endoftext|>".
  // At least 257 (257 = bytes only, no merges).
  int64_t vocab_size = 1024;

  // Words that must each encode to exactly one token, as raw UTF-8 text with
  // any leading space (" Paris" is GPT-2's "ĠParis"; "Paris" is a different
  // token, used at the start of a text). Each must be a single GPT-2
  // pre-token: " New York" or "Paris." can never be one token. Duplicates are
  // ignored. They need not occur in the corpus.
  std::vector<std::string> required_words;

  // Pairs seen fewer times than this are not merged by frequency (at least 1).
  // Required words are merged regardless.
  int64_t min_frequency = 2;
};

struct BpeModel {
  std::string vocab_json;        // The text of vocab.json: {"token": id, ...} in id order.
  std::string merges_txt;        // The text of merges.txt: "#version: 0.2", then "a b" lines.
  int64_t vocab_size = 0;        // Entries in vocab_json (<= options.vocab_size).
  int64_t frequency_merges = 0;  // Merges learned from pair counts.
  int64_t required_merges = 0;   // Merges appended for required words.
};

// Trains the BPE described above. InvalidArgumentError for vocab_size < 257,
// min_frequency < 1, a corpus text or required word that is not valid UTF-8
// (naming its index and byte offset), a required word that is empty or not
// one pre-token, or a vocab_size too small to make every required word one
// token (the message says how many ids they need).
absl::StatusOr<BpeModel> TrainBpe(const std::vector<std::string>& corpus_texts,
                                  const BpeTrainerOptions& options);

}  // namespace romed

#endif  // ROMED_TOOLS_FACT_MODEL_BPE_TRAINER_H_
