// GPT-2 byte-level BPE. See tokenizer.h for the contract.
//
// Internally every token spelling that can occur during BPE (the 256 byte
// symbols and both sides and the result of every merge) is interned as a
// "symbol" (an int32). A pre-token starts as one symbol per byte; merges are
// looked up by the packed pair of symbol ids, and the final symbols are
// mapped to vocabulary ids.
#include "server/model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/core/status_macros.h"

namespace romed {
namespace {

constexpr std::string_view kEndOfText = "<|endoftext|>";
constexpr int64_t kMaxVocabId = int64_t{1} << 24;

// GPT-2's pre-tokenisation pattern. `\s` is spelled out as Unicode's
// White_Space set because that is what `\s` means in the Python `regex`
// module (PCRE2's `\s` under UCP also matches U+180E; JavaScript's adds U+FEFF
// and drops U+0085).
constexpr char kWhiteSpace[] =
    "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}"
    "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}";

std::string PreTokenPattern() {
  const std::string s = absl::StrCat("[", kWhiteSpace, "]");
  const std::string not_s = absl::StrCat("[^", kWhiteSpace, "]");
  return absl::StrCat("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^", kWhiteSpace,
                      "\\p{L}\\p{N}]+|", s, "+(?!", not_s, ")|", s, "+");
}

// The compiled pattern, shared by all threads (pcre2_code is read-only once
// compiled; each match uses its own match data).
class PreTokenRegex {
 public:
  static const PreTokenRegex& Get() {
    static const PreTokenRegex* const kInstance = new PreTokenRegex();
    return *kInstance;
  }

  // Appends the pre-tokens of `text` (valid UTF-8) to `out`.
  absl::Status Split(std::string_view text, std::vector<std::string_view>* out) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
        pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t offset = 0;
    while (offset < text.size()) {
      const int rc = pcre2_match(code_, subject, text.size(), offset, PCRE2_NO_UTF_CHECK,
                                 match.get(), nullptr);
      // The alternatives cover every character, so only a resource limit
      // (JIT stack, match limit) can stop a match.
      if (rc < 0) {
        return absl::ResourceExhaustedError(absl::StrCat("pre-tokenisation failed at byte offset ",
                                                         offset, " (PCRE2 error ", rc, ")"));
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
      out->push_back(text.substr(ovector[0], ovector[1] - ovector[0]));
      offset = ovector[1];
    }
    return absl::OkStatus();
  }

 private:
  PreTokenRegex() {
    const std::string pattern = PreTokenPattern();
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
    if (code_ == nullptr) std::abort();            // A constant pattern: a bug, not input.
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // Falls back to the interpreter.
  }
  pcre2_code* code_ = nullptr;
};

void AppendUtf8(char32_t c, std::string* out) {
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 if invalid.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t length = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // Allowed range of the second byte.
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    if (b0 == 0xE0) lo = 0xA0;  // Overlong.
    if (b0 == 0xED) hi = 0x9F;  // Surrogates.
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    if (b0 == 0xF0) lo = 0x90;  // Overlong.
    if (b0 == 0xF4) hi = 0x8F;  // Above U+10FFFF.
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  return length;
}

// Decodes valid UTF-8 into code points (used on vocabulary spellings, which
// nlohmann-json has already validated).
std::u32string DecodeUtf8(std::string_view text) {
  std::u32string out;
  for (size_t i = 0; i < text.size();) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    const size_t length = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
    char32_t c = length == 1   ? b0
                 : length == 2 ? (b0 & 0x1F)
                 : length == 3 ? (b0 & 0x0F)
                               : (b0 & 0x07);
    for (size_t k = 1; k < length && i + k < text.size(); ++k) {
      c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    }
    out.push_back(c);
    i += length;
  }
  return out;
}

absl::Status InvalidUtf8Error(int64_t offset) {
  return absl::InvalidArgumentError(
      absl::StrCat("text is not valid UTF-8 at byte offset ", offset));
}

uint64_t PackPair(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Decode's bytes for one spelling: each character through the inverse byte
// table; characters outside it (only in added tokens) keep their UTF-8.
std::string SpellingToBytes(std::string_view spelling) {
  static const std::unordered_map<char32_t, char>* const kInverse = [] {
    auto* inverse = new std::unordered_map<char32_t, char>();
    const std::vector<char32_t>& table = Gpt2Tokenizer::ByteToUnicode();
    for (int b = 0; b < 256; ++b) (*inverse)[table[b]] = static_cast<char>(b);
    return inverse;
  }();
  std::string bytes;
  for (char32_t c : DecodeUtf8(spelling)) {
    auto it = kInverse->find(c);
    if (it != kInverse->end()) {
      bytes.push_back(it->second);
    } else {
      AppendUtf8(c, &bytes);
    }
  }
  return bytes;
}

// The non-empty runs of non-space characters of `line`.
std::vector<std::string> SplitOnSpaces(std::string_view line) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < line.size()) {
    const size_t end = std::min(line.find(' ', start), line.size());
    if (end > start) parts.emplace_back(line.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

}  // namespace

const std::vector<char32_t>& Gpt2Tokenizer::ByteToUnicode() {
  // Printable bytes keep their code point; the rest (controls, space, DEL,
  // NBSP, soft hyphen) are shifted to 256, 257, ... in byte order.
  static const std::vector<char32_t>* const kTable = [] {
    auto* table = new std::vector<char32_t>(256);
    char32_t next_shifted = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      (*table)[b] = printable ? static_cast<char32_t>(b) : next_shifted++;
    }
    return table;
  }();
  return *kTable;
}

std::string BytesToSymbols(std::string_view bytes) {
  const std::vector<char32_t>& table = Gpt2Tokenizer::ByteToUnicode();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char b : bytes) AppendUtf8(table[static_cast<unsigned char>(b)], &out);
  return out;
}

int64_t FindInvalidUtf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return static_cast<int64_t>(i);
    i += length;
  }
  return -1;
}

absl::StatusOr<std::vector<std::string_view>> PreTokenize(std::string_view text) {
  const int64_t bad = FindInvalidUtf8(text);
  if (bad >= 0) return InvalidUtf8Error(bad);
  std::vector<std::string_view> pieces;
  RETURN_IF_ERROR(PreTokenRegex::Get().Split(text, &pieces));
  return pieces;
}

// ---------------------------------------------------------------------------
// The loaded vocabulary and merges.

struct Gpt2Tokenizer::Impl {
  struct Merge {
    int32_t left;
    int32_t right;
    int32_t result;
  };

  // Vocabulary, indexed by id (gaps hold empty spellings and has_id false).
  std::vector<std::string> id_to_token;
  std::vector<std::string> id_to_bytes;  // What Decode emits for each id.
  std::vector<bool> has_id;
  std::unordered_map<std::string, int64_t> token_to_id;
  int64_t eos_id = -1;

  // Symbols: spelling -> index while loading; index -> vocabulary id (or -1).
  std::unordered_map<std::string, int32_t> symbol_index;
  std::vector<int64_t> symbol_to_id;
  int32_t byte_symbol[256] = {};

  // Merges by rank, and (left, right) -> rank.
  std::vector<Merge> merges;
  std::unordered_map<uint64_t, int32_t> pair_rank;

  int32_t InternSymbol(const std::string& spelling);
  absl::Status ParseVocab(std::string_view vocab_json);
  absl::Status ParseMerges(std::string_view merges_txt);
  void IndexByteSymbols();
  // Scratch space for MergePiece, reused across the pieces of one call.
  struct BpeWork {
    std::vector<int32_t> symbol;  // Per byte position; -1 once merged away.
    std::vector<int32_t> next;    // Linked list of live positions; -1 ends it.
    std::vector<int32_t> prev;
    std::vector<std::pair<int32_t, int32_t>> heap;  // Min-heap of (rank, left position).
    std::vector<int32_t> batch;
  };
  void MergePiece(std::string_view piece, BpeWork* work) const;
  void PushPairAt(int32_t left, BpeWork* work) const;
  absl::Status EncodePiece(std::string_view piece, BpeWork* work, std::vector<int64_t>* ids) const;
  absl::Status EncodePlain(std::string_view text, std::vector<int64_t>* ids) const;
};

int32_t Gpt2Tokenizer::Impl::InternSymbol(const std::string& spelling) {
  auto [it, inserted] = symbol_index.emplace(spelling, static_cast<int32_t>(symbol_to_id.size()));
  if (inserted) {
    auto id = token_to_id.find(spelling);
    symbol_to_id.push_back(id == token_to_id.end() ? -1 : id->second);
  }
  return it->second;
}

absl::Status Gpt2Tokenizer::Impl::ParseVocab(std::string_view vocab_json) {
  const nlohmann::json json =
      nlohmann::json::parse(vocab_json, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError("vocab.json is not a JSON object of token -> id");
  }
  for (const auto& [token, value] : json.items()) {
    if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
        value.get<int64_t>() >= kMaxVocabId) {
      return absl::InvalidArgumentError(
          absl::StrCat("vocab.json: the id of token \"", token,
                       "\" is not an integer in [0, 2^24): ", value.dump()));
    }
    const int64_t id = value.get<int64_t>();
    if (id >= static_cast<int64_t>(id_to_token.size())) {
      id_to_token.resize(id + 1);
      id_to_bytes.resize(id + 1);
      has_id.resize(id + 1, false);
    }
    if (has_id[id]) {
      return absl::InvalidArgumentError(absl::StrCat("vocab.json: id ", id, " is given to both \"",
                                                     id_to_token[id], "\" and \"", token, "\""));
    }
    has_id[id] = true;
    id_to_token[id] = token;
    id_to_bytes[id] = SpellingToBytes(token);
    token_to_id.emplace(token, id);
  }
  auto eos = token_to_id.find(std::string(kEndOfText));
  if (eos != token_to_id.end()) eos_id = eos->second;
  return absl::OkStatus();
}

void Gpt2Tokenizer::Impl::IndexByteSymbols() {
  for (int b = 0; b < 256; ++b) {
    byte_symbol[b] = InternSymbol(BytesToSymbols(std::string(1, static_cast<char>(b))));
  }
}

absl::Status Gpt2Tokenizer::Impl::ParseMerges(std::string_view merges_txt) {
  int line_number = 0;
  for (size_t start = 0; start < merges_txt.size(); ++line_number) {
    size_t end = merges_txt.find('\n', start);
    if (end == std::string_view::npos) end = merges_txt.size();
    std::string_view line = merges_txt.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_number == 0 && line.substr(0, 8) == "#version")) continue;
    const std::vector<std::string> parts = SplitOnSpaces(line);
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat("merges.txt line ", line_number + 1,
                                                     ": expected two symbols, got \"",
                                                     std::string(line), "\""));
    }
    Merge merge;
    merge.left = InternSymbol(parts[0]);
    merge.right = InternSymbol(parts[1]);
    merge.result = InternSymbol(parts[0] + parts[1]);
    pair_rank[PackPair(merge.left, merge.right)] = static_cast<int32_t>(merges.size());
    merges.push_back(merge);
  }
  return absl::OkStatus();
}

// Applies the merges to one pre-token, as OpenAI's bpe(): repeatedly take the
// lowest-ranked adjacent pair and merge all its occurrences left to right.
// Implemented with a heap of (rank, position) candidates over a linked list
// of symbols so that long pieces cost O(n log n) rather than O(n^2): all
// candidates of the lowest rank are popped in position order, checked
// against the current symbols (stale ones are skipped), and merged; the pairs
// a merge creates are pushed for later rounds.
void Gpt2Tokenizer::Impl::MergePiece(std::string_view piece, BpeWork* work) const {
  const int32_t n = static_cast<int32_t>(piece.size());
  std::vector<int32_t>& symbol = work->symbol;
  std::vector<int32_t>& next = work->next;
  std::vector<int32_t>& prev = work->prev;
  symbol.resize(n);
  next.resize(n);
  prev.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    symbol[i] = byte_symbol[static_cast<unsigned char>(piece[i])];
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  work->heap.clear();
  for (int32_t i = 0; i + 1 < n; ++i) PushPairAt(i, work);
  while (!work->heap.empty()) {
    const int32_t rank = work->heap.front().first;
    const Merge& merge = merges[rank];
    work->batch.clear();  // This rank's candidates, by position.
    while (!work->heap.empty() && work->heap.front().first == rank) {
      std::pop_heap(work->heap.begin(), work->heap.end(), std::greater<>());
      work->batch.push_back(work->heap.back().second);
      work->heap.pop_back();
    }
    for (const int32_t left : work->batch) {
      const int32_t right = next[left];
      if (symbol[left] != merge.left || right < 0 || symbol[right] != merge.right) continue;
      symbol[left] = merge.result;
      symbol[right] = -1;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      PushPairAt(prev[left], work);
      PushPairAt(left, work);
    }
  }
}

// Pushes the pair that starts at `left` if it is a merge.
void Gpt2Tokenizer::Impl::PushPairAt(int32_t left, BpeWork* work) const {
  if (left < 0 || work->next[left] < 0) return;
  auto it = pair_rank.find(PackPair(work->symbol[left], work->symbol[work->next[left]]));
  if (it == pair_rank.end()) return;
  work->heap.emplace_back(it->second, left);
  std::push_heap(work->heap.begin(), work->heap.end(), std::greater<>());
}

absl::Status Gpt2Tokenizer::Impl::EncodePiece(std::string_view piece, BpeWork* work,
                                              std::vector<int64_t>* ids) const {
  MergePiece(piece, work);
  for (int32_t i = 0; i >= 0 && i < static_cast<int32_t>(piece.size()); i = work->next[i]) {
    const int64_t id = symbol_to_id[work->symbol[i]];
    if (id < 0) {
      return absl::FailedPreconditionError(absl::StrCat("the BPE symbol of \"", std::string(piece),
                                                        "\" at byte ", i,
                                                        " is not in the vocabulary"));
    }
    ids->push_back(id);
  }
  return absl::OkStatus();
}

absl::Status Gpt2Tokenizer::Impl::EncodePlain(std::string_view text,
                                              std::vector<int64_t>* ids) const {
  std::vector<std::string_view> pieces;
  RETURN_IF_ERROR(PreTokenRegex::Get().Split(text, &pieces));
  BpeWork work;
  // Pieces seen earlier in this call -> where their ids start in `ids` and
  // how many there are. Local to the call, so no locking; text repeats words
  // enough that this more than halves the cost of long inputs.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;
  for (std::string_view piece : pieces) {
    auto it = seen.find(piece);
    if (it != seen.end()) {
      const auto [start, count] = it->second;
      for (size_t k = 0; k < count; ++k) ids->push_back((*ids)[start + k]);
      continue;
    }
    const size_t start = ids->size();
    RETURN_IF_ERROR(EncodePiece(piece, &work, ids));
    seen.emplace(piece, std::make_pair(start, ids->size() - start));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Public API.

Gpt2Tokenizer::Gpt2Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gpt2Tokenizer::~Gpt2Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> Gpt2Tokenizer::FromText(
    std::string_view vocab_json, std::string_view merges_txt) {
  auto impl = std::make_unique<Impl>();
  RETURN_IF_ERROR(impl->ParseVocab(vocab_json));
  impl->IndexByteSymbols();
  RETURN_IF_ERROR(impl->ParseMerges(merges_txt));
  impl->symbol_index.clear();  // Only needed while loading.
  return std::unique_ptr<Gpt2Tokenizer>(new Gpt2Tokenizer(std::move(impl)));
}

namespace {
absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return contents.str();
}

absl::Status WithContext(absl::Status status, const std::string& context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}
}  // namespace

absl::StatusOr<std::unique_ptr<Gpt2Tokenizer>> Gpt2Tokenizer::FromFiles(
    const std::string& vocab_json_path, const std::string& merges_path) {
  ASSIGN_OR_RETURN(std::string vocab, ReadWholeFile(vocab_json_path));
  ASSIGN_OR_RETURN(std::string merges, ReadWholeFile(merges_path));
  auto tokenizer = FromText(vocab, merges);
  if (!tokenizer.ok()) {
    return WithContext(tokenizer.status(),
                       absl::StrCat("loading ", vocab_json_path, " and ", merges_path));
  }
  return tokenizer;
}

absl::StatusOr<std::vector<int64_t>> Gpt2Tokenizer::Encode(std::string_view text) const {
  const int64_t bad = FindInvalidUtf8(text);
  if (bad >= 0) return InvalidUtf8Error(bad);
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3 + 1);
  RETURN_IF_ERROR(impl_->EncodePlain(text, &ids));
  return ids;
}

absl::StatusOr<std::vector<int64_t>> Gpt2Tokenizer::EncodeWithSpecial(std::string_view text) const {
  if (impl_->eos_id < 0) return Encode(text);
  const int64_t bad = FindInvalidUtf8(text);
  if (bad >= 0) return InvalidUtf8Error(bad);
  std::vector<int64_t> ids;
  size_t start = 0;
  for (size_t found; (found = text.find(kEndOfText, start)) != std::string_view::npos;) {
    RETURN_IF_ERROR(impl_->EncodePlain(text.substr(start, found - start), &ids));
    ids.push_back(impl_->eos_id);
    start = found + kEndOfText.size();
  }
  RETURN_IF_ERROR(impl_->EncodePlain(text.substr(start), &ids));
  return ids;
}

absl::StatusOr<std::string> Gpt2Tokenizer::Decode(const std::vector<int64_t>& ids) const {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= vocab_size() || !impl_->has_id[id]) {
      return absl::OutOfRangeError(
          absl::StrCat("token id ", id, " at position ", i, " is not in the vocabulary"));
    }
    text += impl_->id_to_bytes[id];
  }
  return text;
}

std::string_view Gpt2Tokenizer::IdToToken(int64_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return impl_->id_to_token[id];
}

int64_t Gpt2Tokenizer::TokenToId(std::string_view token) const {
  auto it = impl_->token_to_id.find(std::string(token));
  return it == impl_->token_to_id.end() ? -1 : it->second;
}

int64_t Gpt2Tokenizer::vocab_size() const {
  return static_cast<int64_t>(impl_->id_to_token.size());
}

int64_t Gpt2Tokenizer::eos_id() const { return impl_->eos_id; }

}  // namespace romed
