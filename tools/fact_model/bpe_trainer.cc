// Byte-level BPE training. See bpe_trainer.h for the algorithm and contract.
//
// Tokens are interned byte strings (TokenTable); the first 256 are the single
// bytes, indexed by byte value. A merge rule joins two tokens into a third.
#include "tools/fact_model/bpe_trainer.h"

#include <algorithm>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/core/status_macros.h"
#include "server/model/tokenizer.h"

namespace romed {
namespace {

constexpr std::string_view kEndOfText = "<|endoftext|>";

struct MergeRule {
  int32_t left;
  int32_t right;
  int32_t result;
};

uint64_t PackPair(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// Interned byte strings; ids 0..255 are the single bytes.
class TokenTable {
 public:
  TokenTable() {
    for (int b = 0; b < 256; ++b) Intern(std::string(1, static_cast<char>(b)));
  }
  int32_t Intern(const std::string& bytes) {
    auto [it, inserted] = ids_.emplace(bytes, static_cast<int32_t>(bytes_.size()));
    if (inserted) bytes_.push_back(bytes);
    return it->second;
  }
  const std::string& bytes(int32_t id) const { return bytes_[id]; }
  int32_t size() const { return static_cast<int32_t>(bytes_.size()); }

 private:
  std::vector<std::string> bytes_;
  std::unordered_map<std::string, int32_t> ids_;
};

// A distinct pre-token of the corpus as its current symbols.
struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

bool ContainsPair(const std::vector<int32_t>& symbols, const MergeRule& rule) {
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (symbols[i] == rule.left && symbols[i + 1] == rule.right) return true;
  }
  return false;
}

// Merges every occurrence of (left, right) in `symbols`, left to right.
// Returns whether anything changed.
bool MergeInPlace(const MergeRule& rule, std::vector<int32_t>* symbols) {
  std::vector<int32_t>& s = *symbols;
  size_t out = 0;
  bool changed = false;
  for (size_t i = 0; i < s.size(); ++out) {
    if (i + 1 < s.size() && s[i] == rule.left && s[i + 1] == rule.right) {
      s[out] = rule.result;
      i += 2;
      changed = true;
    } else {
      s[out] = s[i++];
    }
  }
  s.resize(out);
  return changed;
}

// ---------------------------------------------------------------------------
// Phase 1: count pre-tokens.

absl::Status CountPreTokens(std::string_view text, std::map<std::string, int64_t>* counts) {
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find(kEndOfText, start);
    if (end == std::string_view::npos) end = text.size();
    ASSIGN_OR_RETURN(std::vector<std::string_view> pieces,
                     PreTokenize(text.substr(start, end - start)));
    for (std::string_view piece : pieces) ++(*counts)[std::string(piece)];
    start = end + kEndOfText.size();
  }
  return absl::OkStatus();
}

// Distinct pre-tokens as byte symbols, in byte order (so training does not
// depend on hash order).
absl::StatusOr<std::vector<Word>> CountWords(const std::vector<std::string>& corpus_texts) {
  std::map<std::string, int64_t> counts;
  for (size_t i = 0; i < corpus_texts.size(); ++i) {
    const int64_t bad = FindInvalidUtf8(corpus_texts[i]);
    if (bad >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("corpus text ", i, " is not valid UTF-8 at byte offset ", bad));
    }
    RETURN_IF_ERROR(CountPreTokens(corpus_texts[i], &counts));
  }
  std::vector<Word> words;
  words.reserve(counts.size());
  for (const auto& [text, count] : counts) {
    Word word;
    for (char c : text) word.symbols.push_back(static_cast<unsigned char>(c));
    word.count = count;
    words.push_back(std::move(word));
  }
  return words;
}

// ---------------------------------------------------------------------------
// Phase 2: frequency merges.

class PairCounter {
 public:
  explicit PairCounter(const TokenTable* tokens) : tokens_(tokens) {}

  // Adds (sign +1) or removes (sign -1) the pairs of one word.
  void Add(const Word& word, int64_t sign) {
    for (size_t i = 0; i + 1 < word.symbols.size(); ++i) {
      auto it = counts_.emplace(PackPair(word.symbols[i], word.symbols[i + 1]), 0).first;
      it->second += sign * word.count;
      if (it->second == 0) counts_.erase(it);
    }
  }

  // The most frequent pair (ties: smaller left bytes, then right bytes) and
  // its count; count 0 if there are no pairs.
  std::pair<uint64_t, int64_t> Best() const {
    uint64_t best = 0;
    int64_t best_count = 0;
    for (const auto& [pair, count] : counts_) {
      if (count > best_count || (count == best_count && count > 0 && Precedes(pair, best))) {
        best = pair;
        best_count = count;
      }
    }
    return {best, best_count};
  }

 private:
  bool Precedes(uint64_t a, uint64_t b) const {
    const auto spell = [&](uint64_t pair) {
      return std::make_pair(tokens_->bytes(static_cast<int32_t>(pair >> 32)),
                            tokens_->bytes(static_cast<int32_t>(pair & 0xFFFFFFFFu)));
    };
    return spell(a) < spell(b);
  }

  const TokenTable* tokens_;
  std::unordered_map<uint64_t, int64_t> counts_;
};

// Learns up to `max_new_tokens` new tokens by pair frequency. Rules whose
// result already exists add no token and do not count.
std::vector<MergeRule> LearnFrequencyMerges(std::vector<Word> words, int64_t max_new_tokens,
                                            int64_t min_frequency, TokenTable* tokens) {
  PairCounter pairs(tokens);
  for (const Word& word : words) pairs.Add(word, +1);
  std::vector<MergeRule> rules;
  std::set<int32_t> known;  // Token ids made so far.
  while (static_cast<int64_t>(known.size()) < max_new_tokens) {
    const auto [pair, count] = pairs.Best();
    if (count < min_frequency || count == 0) break;
    MergeRule rule{static_cast<int32_t>(pair >> 32), static_cast<int32_t>(pair & 0xFFFFFFFFu), 0};
    rule.result = tokens->Intern(tokens->bytes(rule.left) + tokens->bytes(rule.right));
    if (rule.result >= 256) known.insert(rule.result);
    for (Word& word : words) {
      if (!ContainsPair(word.symbols, rule)) continue;
      pairs.Add(word, -1);
      MergeInPlace(rule, &word.symbols);
      pairs.Add(word, +1);
    }
    rules.push_back(rule);
  }
  return rules;
}

// ---------------------------------------------------------------------------
// Phase 3: merges for required words, and how many frequency merges fit.

// The merges in rank order, with the encoding of OpenAI's bpe(): repeatedly
// apply the lowest-ranked pair present (all its occurrences) until none is.
class MergeList {
 public:
  explicit MergeList(std::vector<MergeRule> rules) : rules_(std::move(rules)) {
    for (size_t rank = 0; rank < rules_.size(); ++rank) Index(rank);
  }
  void Append(const MergeRule& rule) {
    rules_.push_back(rule);
    Index(rules_.size() - 1);
  }
  std::vector<int32_t> Encode(const std::string& bytes) const {
    std::vector<int32_t> symbols(bytes.begin(), bytes.end());
    for (int32_t& s : symbols) s = static_cast<unsigned char>(s);
    while (symbols.size() > 1) {
      size_t best = rules_.size();
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        auto it = rank_.find(PackPair(symbols[i], symbols[i + 1]));
        if (it != rank_.end()) best = std::min(best, it->second);
      }
      if (best == rules_.size()) break;
      MergeInPlace(rules_[best], &symbols);
    }
    return symbols;
  }
  const std::vector<MergeRule>& rules() const { return rules_; }

 private:
  void Index(size_t rank) { rank_[PackPair(rules_[rank].left, rules_[rank].right)] = rank; }
  std::vector<MergeRule> rules_;
  std::unordered_map<uint64_t, size_t> rank_;
};

// The first `kept` frequency rules followed by the rules that make every
// required word one token; `new_tokens` counts the distinct tokens made.
struct MergePlan {
  std::vector<MergeRule> rules;
  int64_t frequency_merges = 0;
  int64_t new_tokens = 0;
};

MergePlan PlanMerges(const std::vector<MergeRule>& frequency_rules, size_t kept,
                     const std::vector<std::string>& required_words, TokenTable* tokens) {
  MergeList list({frequency_rules.begin(), frequency_rules.begin() + kept});
  for (const std::string& word : required_words) {
    const std::vector<int32_t> pieces = list.Encode(word);
    int32_t joined = pieces[0];
    for (size_t i = 1; i < pieces.size(); ++i) {
      const MergeRule rule{joined, pieces[i],
                           tokens->Intern(tokens->bytes(joined) + tokens->bytes(pieces[i]))};
      list.Append(rule);
      joined = rule.result;
    }
  }
  MergePlan plan;
  plan.rules = list.rules();
  plan.frequency_merges = static_cast<int64_t>(kept);
  std::set<int32_t> made;
  for (const MergeRule& rule : plan.rules) made.insert(rule.result);
  plan.new_tokens = static_cast<int64_t>(made.size());
  return plan;
}

// The plan with the most frequency merges whose tokens fit in `budget`.
absl::StatusOr<MergePlan> FitPlan(const std::vector<MergeRule>& frequency_rules,
                                  const std::vector<std::string>& required_words, int64_t budget,
                                  TokenTable* tokens) {
  MergePlan best = PlanMerges(frequency_rules, 0, required_words, tokens);
  if (best.new_tokens > budget) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vocab_size leaves room for ", budget, " merged tokens but the required words need ",
        best.new_tokens, "; raise vocab_size to at least ", 257 + best.new_tokens));
  }
  size_t lo = 0, hi = frequency_rules.size();  // Invariant: the plan keeping lo fits.
  while (lo < hi) {
    const size_t mid = lo + (hi - lo + 1) / 2;
    MergePlan plan = PlanMerges(frequency_rules, mid, required_words, tokens);
    if (plan.new_tokens <= budget) {
      lo = mid;
      best = std::move(plan);
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------
// Phase 4: the files.

// GPT-2's byte symbols, in encoder.json order (by printable code point).
std::vector<int> BytesInGpt2Order() {
  std::vector<int> order(256);
  for (int b = 0; b < 256; ++b) order[b] = b;
  const std::vector<char32_t>& table = Gpt2Tokenizer::ByteToUnicode();
  std::sort(order.begin(), order.end(), [&](int a, int b) { return table[a] < table[b]; });
  return order;
}

BpeModel WriteModel(const MergePlan& plan, const TokenTable& tokens) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  const auto add_token = [&vocab](const std::string& spelling) {
    if (vocab.contains(spelling)) return;
    const int64_t id = static_cast<int64_t>(vocab.size());
    vocab[spelling] = id;
  };
  for (int b : BytesInGpt2Order()) add_token(BytesToSymbols(tokens.bytes(b)));
  BpeModel model;
  model.merges_txt = "#version: 0.2\n";
  for (const MergeRule& rule : plan.rules) {
    add_token(BytesToSymbols(tokens.bytes(rule.result)));
    absl::StrAppend(&model.merges_txt, BytesToSymbols(tokens.bytes(rule.left)), " ",
                    BytesToSymbols(tokens.bytes(rule.right)), "\n");
  }
  add_token(std::string(kEndOfText));
  model.vocab_size = static_cast<int64_t>(vocab.size());
  model.vocab_json = vocab.dump();
  model.frequency_merges = plan.frequency_merges;
  model.required_merges = static_cast<int64_t>(plan.rules.size()) - plan.frequency_merges;
  return model;
}

// ---------------------------------------------------------------------------

absl::Status CheckOptions(const BpeTrainerOptions& options) {
  if (options.vocab_size < 257) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vocab_size must be at least 257 (256 bytes + <|endoftext|>), got ", options.vocab_size));
  }
  if (options.min_frequency < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_frequency must be at least 1, got ", options.min_frequency));
  }
  return absl::OkStatus();
}

// The required words, checked and without duplicates (first occurrence kept).
absl::StatusOr<std::vector<std::string>> CheckRequiredWords(const std::vector<std::string>& words) {
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    const int64_t bad = FindInvalidUtf8(word);
    if (bad >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("required word ", i, " is not valid UTF-8 at byte offset ", bad));
    }
    ASSIGN_OR_RETURN(std::vector<std::string_view> pieces, PreTokenize(word));
    if (pieces.size() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("required word \"", word, "\" is not one GPT-2 pre-token (it splits into ",
                       pieces.size(), " pieces), so it can never be one token"));
    }
    if (seen.insert(word).second) unique.push_back(word);
  }
  return unique;
}

}  // namespace

absl::StatusOr<BpeModel> TrainBpe(const std::vector<std::string>& corpus_texts,
                                  const BpeTrainerOptions& options) {
  RETURN_IF_ERROR(CheckOptions(options));
  ASSIGN_OR_RETURN(std::vector<std::string> required, CheckRequiredWords(options.required_words));
  ASSIGN_OR_RETURN(std::vector<Word> words, CountWords(corpus_texts));
  const int64_t budget = options.vocab_size - 257;
  TokenTable tokens;
  const std::vector<MergeRule> frequency_rules =
      LearnFrequencyMerges(std::move(words), budget, options.min_frequency, &tokens);
  ASSIGN_OR_RETURN(MergePlan plan, FitPlan(frequency_rules, required, budget, &tokens));
  return WriteModel(plan, tokens);
}

}  // namespace romed
