// Gpt2Tokenizer: GPT-2's byte-level BPE, token-for-token identical to
// OpenAI's encoder.py (and Hugging Face's GPT2Tokenizer):
//  1. pre-tokenise with the pattern
//       's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//     (PCRE2, UTF-8, Unicode properties);
//  2. map each piece's bytes through the byte-to-unicode table;
//  3. apply merges by rank (lowest first) until none applies;
//  4. look each resulting symbol up in vocab.json.
// "<|endoftext|>" is recognised as a special token only by EncodeWithSpecial.
//
// Immutable after construction; all methods are thread-safe.
#ifndef ROMED_SERVER_MODEL_TOKENIZER_H_
#define ROMED_SERVER_MODEL_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace romed {

class Gpt2Tokenizer {
 public:
  // Builds from the text of vocab.json ({"token": id}) and merges.txt (an
  // optional "#version" first line, then "a b" per line, rank = line order;
  // blank lines are ignored; a pair listed twice keeps its later rank, as in
  // OpenAI's encoder). InvalidArgumentError on malformed JSON, an id that is
  // not an integer in [0, 2^24), two tokens with one id, or a merge line
  // without exactly two symbols (the message names the line). A merge whose
  // result is not in the vocabulary is allowed (GPT-2's own files contain
  // none, but trained vocabularies may); Encode fails only if text actually
  // ends on such a symbol. vocab_size() is the largest id + 1.
  static absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> FromText(std::string_view vocab_json,
                                                                 std::string_view merges_txt);
  // Reads the two files; NotFoundError naming a missing file.
  static absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> FromFiles(
      const std::string& vocab_json_path, const std::string& merges_path);
  ~Gpt2Tokenizer();

  // Encodes UTF-8 text (no special tokens: "<|endoftext|>" is plain text).
  // InvalidArgumentError if `text` is not valid UTF-8 (message gives the
  // byte offset); FailedPreconditionError if a symbol is not in the
  // vocabulary (cannot happen with a complete byte-level vocabulary).
  absl::StatusOr<std::vector<int64_t>> Encode(std::string_view text) const;

  // Like Encode, but the literal "<|endoftext|>" becomes eos_id().
  absl::StatusOr<std::vector<int64_t>> EncodeWithSpecial(std::string_view text) const;

  // Decodes ids to bytes. The result may be invalid UTF-8 if `ids` end in
  // the middle of a multi-byte character (callers that stream text should
  // hold back incomplete characters). OutOfRangeError for an unknown id.
  absl::StatusOr<std::string> Decode(const std::vector<int64_t>& ids) const;

  // The vocabulary string of one id ("Ġworld"); empty for an unknown id.
  std::string_view IdToToken(int64_t id) const;
  // -1 if `token` is not in the vocabulary.
  int64_t TokenToId(std::string_view token) const;

  int64_t vocab_size() const;
  // Id of "<|endoftext|>", or -1 if the vocabulary has none.
  int64_t eos_id() const;

  // GPT-2's byte -> printable code point table (bytes_to_unicode()).
  static const std::vector<char32_t>& ByteToUnicode();

 private:
  struct Impl;
  explicit Gpt2Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Index of the first byte of `text` that breaks UTF-8 validity, or -1.
// Strict: rejects overlong forms, surrogates (U+D800..U+DFFF), code points
// above U+10FFFF and truncated sequences.
int64_t FindInvalidUtf8(std::string_view text);

// Splits UTF-8 text into GPT-2's pre-tokens (the pattern above), each a view
// into `text`; concatenated they give `text` back. InvalidArgumentError (with
// the byte offset) if `text` is not valid UTF-8. `\s` means Unicode
// White_Space, as in the Python `regex` module OpenAI's encoder uses (so
// U+0085 is whitespace and U+FEFF is not). Thread-safe.
//   PreTokenize("Hello world's  end") -> {"Hello", " world", "'s", " ", " end"}
absl::StatusOr<std::vector<std::string_view>> PreTokenize(std::string_view text);

// Maps raw bytes to GPT-2's printable symbol string (each byte through
// ByteToUnicode(), UTF-8 encoded): " Paris" -> "ĠParis". This is how tokens
// are spelled in vocab.json and merges.txt.
std::string BytesToSymbols(std::string_view bytes);

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_TOKENIZER_H_
