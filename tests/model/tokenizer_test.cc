// Tests of Gpt2Tokenizer: hand-computed cases on tiny vocabularies, and golden
// ids for GPT-2's real vocabulary computed by an independent implementation
// (testdata/make_tokenizer_golden.js, the npm package gpt-3-encoder).
#include "server/model/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"

namespace romed {
namespace {

using ::romed::testing::IsOk;
using ::romed::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Ids = std::vector<int64_t>;

// ---------------------------------------------------------------------------
// Tiny vocabularies: the 256 byte symbols (id = byte value) plus `extra`
// tokens numbered from 256, so expected ids can be computed by hand.

std::string TinyVocabJson(const std::vector<std::string>& extra) {
  nlohmann::json vocab = nlohmann::json::object();
  for (int b = 0; b < 256; ++b) vocab[BytesToSymbols(std::string(1, static_cast<char>(b)))] = b;
  for (size_t i = 0; i < extra.size(); ++i) vocab[extra[i]] = 256 + i;
  return vocab.dump();
}

std::unique_ptr<Gpt2Tokenizer> TinyTokenizer(const std::vector<std::string>& extra,
                                             const std::string& merges) {
  auto tokenizer = Gpt2Tokenizer::FromText(TinyVocabJson(extra), merges);
  EXPECT_THAT(tokenizer, IsOk());
  return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
}

Ids EncodeOrDie(const Gpt2Tokenizer& tokenizer, std::string_view text) {
  auto ids = tokenizer.Encode(text);
  EXPECT_THAT(ids, IsOk()) << text;
  return ids.ok() ? *ids : Ids{};
}

TEST(ByteToUnicodeTest, KeepsPrintableBytesAndShiftsTheRest) {
  const std::vector<char32_t>& table = Gpt2Tokenizer::ByteToUnicode();
  ASSERT_EQ(table.size(), 256u);
  EXPECT_EQ(table['!'], U'!');
  EXPECT_EQ(table['~'], U'~');
  EXPECT_EQ(table[0xE9], U'\u00E9');
  EXPECT_EQ(table[0], char32_t{256});
  EXPECT_EQ(table[' '], U'\u0120');   // "Ġ"
  EXPECT_EQ(table['\n'], U'\u010A');  // "Ċ"
  EXPECT_EQ(table[0xAD], char32_t{323});
}

TEST(BytesToSymbolsTest, SpellsALeadingSpaceAsGWithDot) {
  EXPECT_EQ(BytesToSymbols(" Paris"), "\xC4\xA0Paris");
  EXPECT_EQ(BytesToSymbols("caf\xC3\xA9"), "caf\xC3\x83\xC2\xA9");
}

TEST(FindInvalidUtf8Test, ReturnsTheOffsetOfTheFirstBadByte) {
  EXPECT_EQ(FindInvalidUtf8(""), -1);
  EXPECT_EQ(FindInvalidUtf8("plain ascii"), -1);
  EXPECT_EQ(FindInvalidUtf8("caf\xC3\xA9 \xF0\x9F\x98\x80"), -1);
  EXPECT_EQ(FindInvalidUtf8("abc\xFF"), 3);
  EXPECT_EQ(FindInvalidUtf8("ab\xE2\x82"), 2);        // Truncated.
  EXPECT_EQ(FindInvalidUtf8("\xC0\xAF"), 0);          // Overlong '/'.
  EXPECT_EQ(FindInvalidUtf8("x\xE0\x80\x80"), 1);     // Overlong NUL.
  EXPECT_EQ(FindInvalidUtf8("xy\xED\xA0\x80"), 2);    // Surrogate U+D800.
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), 0);  // Above U+10FFFF.
  EXPECT_EQ(FindInvalidUtf8("a\x80"), 1);             // Lone continuation.
}

TEST(PreTokenizeTest, SplitsWordsContractionsAndWhitespaceLikeGpt2) {
  ASSERT_OK_AND_ASSIGN(auto pieces, PreTokenize("Hello world's  end"));
  EXPECT_THAT(pieces, ElementsAre("Hello", " world", "'s", " ", " end"));
}

TEST(PreTokenizeTest, KeepsTrailingWhitespaceAsOneRun) {
  ASSERT_OK_AND_ASSIGN(auto pieces, PreTokenize("a  \n"));
  EXPECT_THAT(pieces, ElementsAre("a", "  \n"));
}

TEST(PreTokenizeTest, SplitsDigitsFromLettersAndPunctuation) {
  ASSERT_OK_AND_ASSIGN(auto pieces, PreTokenize("abc123!? x"));
  EXPECT_THAT(pieces, ElementsAre("abc", "123", "!?", " x"));
}

// Python's `regex` (OpenAI's encoder) counts U+0085 as whitespace; the
// JavaScript golden generator does not, so this is checked by hand.
TEST(PreTokenizeTest, TreatsNextLineAsWhitespaceLikePython) {
  ASSERT_OK_AND_ASSIGN(auto pieces, PreTokenize("x  \xC2\x85"));
  EXPECT_THAT(pieces, ElementsAre("x", "  \xC2\x85"));
}

// U+FEFF is whitespace to JavaScript but not to Python's `regex`.
TEST(PreTokenizeTest, TreatsByteOrderMarkAsPunctuationLikePython) {
  ASSERT_OK_AND_ASSIGN(auto pieces, PreTokenize("\xEF\xBB\xBF\xEF\xBB\xBFword"));
  EXPECT_THAT(pieces, ElementsAre("\xEF\xBB\xBF\xEF\xBB\xBF", "word"));
}

TEST(PreTokenizeTest, RejectsInvalidUtf8) {
  EXPECT_THAT(PreTokenize("ok\xFF"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byte offset 2")));
}

TEST(TinyVocabularyTest, WithoutMergesEncodesOneTokenPerByte) {
  auto tokenizer = TinyTokenizer({}, "#version: 0.2\n");
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(EncodeOrDie(*tokenizer, "Hi \xC3\xA9"), (Ids{'H', 'i', ' ', 0xC3, 0xA9}));
  EXPECT_EQ(tokenizer->vocab_size(), 256);
  EXPECT_EQ(tokenizer->eos_id(), -1);
}

TEST(TinyVocabularyTest, AppliesMergesInRankOrder) {
  // ab = 256, abc = 257, bc = 258.
  auto tokenizer = TinyTokenizer({"ab", "abc", "bc"}, "#version: 0.2\na b\nab c\nb c\n");
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(EncodeOrDie(*tokenizer, "abc"), (Ids{257}));
  // b c a b: (a b) ranks first, then (b c); (bc ab) is no merge.
  EXPECT_EQ(EncodeOrDie(*tokenizer, "bcab"), (Ids{258, 256}));
  // Merges never cross pre-token boundaries: " abc" is "Ġabc", no "Ġ a" merge.
  EXPECT_EQ(EncodeOrDie(*tokenizer, "x abc"), (Ids{'x', ' ', 257}));
}

TEST(TinyVocabularyTest, MergesRepeatedSymbolsLeftToRight) {
  auto tokenizer = TinyTokenizer({"aa"}, "a a\n");  // No "#version" line.
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(EncodeOrDie(*tokenizer, "aaa"), (Ids{256, 'a'}));
  EXPECT_EQ(EncodeOrDie(*tokenizer, "aaaa"), (Ids{256, 256}));
}

// OpenAI's bpe() merges every occurrence of the best pair before looking for
// the next best, even when a merge creates a pair of lower rank.
TEST(TinyVocabularyTest, MergesAllOccurrencesOfOnePairBeforeTheNext) {
  // ab = 256, aba = 257; "ab a" ranks before "a b".
  auto tokenizer = TinyTokenizer({"ab", "aba"}, "ab a\na b\n");
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(EncodeOrDie(*tokenizer, "abab"), (Ids{256, 256}));
}

TEST(TinyVocabularyTest, KeepsTheLaterRankOfADuplicatedMerge) {
  // As Python's dict(zip(merges, ranks)): "b c" ends with rank 2, after "a b".
  auto tokenizer = TinyTokenizer({"ab", "bc"}, "b c\na b\nb c\n");
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(EncodeOrDie(*tokenizer, "abc"), (Ids{256, 'c'}));
}

TEST(TinyVocabularyTest, FailsOnlyWhenTextEndsOnASymbolMissingFromTheVocabulary) {
  auto tokenizer = TinyTokenizer({"abc"}, "a b\nab c\n");  // "ab" is not a token.
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(EncodeOrDie(*tokenizer, "abc"), (Ids{256}));
  EXPECT_THAT(tokenizer->Encode("ab"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("not in the vocabulary")));
}

TEST(TinyVocabularyTest, EncodeWithSpecialMapsEndOfTextToEos) {
  auto tokenizer = TinyTokenizer({"<|endoftext|>"}, "");
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->eos_id(), 256);
  ASSERT_OK_AND_ASSIGN(Ids ids, tokenizer->EncodeWithSpecial("a<|endoftext|><|endoftext|>b"));
  EXPECT_EQ(ids, (Ids{'a', 256, 256, 'b'}));
  ASSERT_OK_AND_ASSIGN(std::string text, tokenizer->Decode(ids));
  EXPECT_EQ(text, "a<|endoftext|><|endoftext|>b");
}

TEST(TinyVocabularyTest, DecodeRejectsUnknownIds) {
  auto tokenizer = TinyTokenizer({}, "");
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_THAT(tokenizer->Decode({'a', 256}),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("token id 256 at position 1")));
  EXPECT_THAT(tokenizer->Decode({-1}), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(tokenizer->IdToToken(256), "");
  EXPECT_EQ(tokenizer->TokenToId("nope"), -1);
}

TEST(FromTextTest, RejectsMalformedJson) {
  EXPECT_THAT(Gpt2Tokenizer::FromText("{\"a\": 0", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab.json")));
  EXPECT_THAT(Gpt2Tokenizer::FromText("[1, 2]", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("JSON object")));
}

TEST(FromTextTest, RejectsIdsThatAreNotSmallIntegers) {
  EXPECT_THAT(Gpt2Tokenizer::FromText(R"({"a": "0"})", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"a\"")));
  EXPECT_THAT(Gpt2Tokenizer::FromText(R"({"a": -1})", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Gpt2Tokenizer::FromText(R"({"a": 1.5})", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Gpt2Tokenizer::FromText(R"({"a": 99999999999})", ""),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FromTextTest, RejectsTwoTokensWithOneId) {
  EXPECT_THAT(Gpt2Tokenizer::FromText(R"({"a": 0, "b": 0})", ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id 0")));
}

TEST(FromTextTest, RejectsAMergeLineWithoutTwoSymbols) {
  EXPECT_THAT(Gpt2Tokenizer::FromText(TinyVocabJson({}), "#version: 0.2\na b\na b c\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 3")));
  EXPECT_THAT(Gpt2Tokenizer::FromText(TinyVocabJson({}), "single\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
}

TEST(FromFilesTest, NamesAMissingFile) {
  EXPECT_THAT(Gpt2Tokenizer::FromFiles("/nonexistent/vocab.json", "/nonexistent/merges.txt"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/vocab.json")));
}

// ---------------------------------------------------------------------------
// GPT-2's real vocabulary (third_party/gpt2_vocab, fetched by scripts/setup.sh).

std::string SourceDir() {
  if (const char* dir = std::getenv("ROMED_SOURCE_DIR")) return dir;
  // Run by hand from BUILD/tests/model/: the source tree is BUILD/..
  char exe[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  std::string path(exe, n > 0 ? n : 0);
  for (int up = 0; up < 4 && !path.empty(); ++up) path = path.substr(0, path.rfind('/'));
  return path;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

class Gpt2VocabularyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string dir = SourceDir() + "/third_party/gpt2_vocab";
    auto tokenizer = Gpt2Tokenizer::FromFiles(dir + "/encoder.json", dir + "/vocab.bpe");
    if (tokenizer.ok()) {
      tokenizer_ = std::move(tokenizer).value().release();
    } else {
      *load_error_ = absl::StrCat(tokenizer.status().ToString(),
                                  "\nGPT-2's vocabulary is missing: run scripts/setup.sh "
                                  "(or set ROMED_SOURCE_DIR to the source tree)");
    }
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(tokenizer_, nullptr) << *load_error_; }

  static const Gpt2Tokenizer* tokenizer_;
  static std::string* const load_error_;
};
const Gpt2Tokenizer* Gpt2VocabularyTest::tokenizer_ = nullptr;
std::string* const Gpt2VocabularyTest::load_error_ = new std::string();

TEST_F(Gpt2VocabularyTest, EncodesHelloWorld) {
  EXPECT_EQ(EncodeOrDie(*tokenizer_, "Hello world"), (Ids{15496, 995}));
}

TEST_F(Gpt2VocabularyTest, KnowsItsSizeAndEndOfText) {
  EXPECT_EQ(tokenizer_->vocab_size(), 50257);
  EXPECT_EQ(tokenizer_->eos_id(), 50256);
  EXPECT_EQ(tokenizer_->IdToToken(995), "\xC4\xA0world");
  EXPECT_EQ(tokenizer_->TokenToId("\xC4\xA0world"), 995);
}

// The byte symbols are ids 0..255, ordered by their printable code point;
// the BPE trainer writes its vocabularies in the same order.
TEST_F(Gpt2VocabularyTest, NumbersByteSymbolsByCodePoint) {
  std::vector<char32_t> sorted = Gpt2Tokenizer::ByteToUnicode();
  std::sort(sorted.begin(), sorted.end());
  for (int b = 0; b < 256; ++b) {
    const char32_t c = Gpt2Tokenizer::ByteToUnicode()[b];
    const int64_t expected = std::lower_bound(sorted.begin(), sorted.end(), c) - sorted.begin();
    EXPECT_EQ(tokenizer_->TokenToId(BytesToSymbols(std::string(1, static_cast<char>(b)))), expected)
        << "byte " << b;
  }
}

TEST_F(Gpt2VocabularyTest, MatchesTheIndependentEncoderOnEveryGoldenString) {
  const std::string path = SourceDir() + "/tests/model/testdata/tokenizer_golden.json";
  const nlohmann::json golden = nlohmann::json::parse(ReadFileOrEmpty(path), nullptr, false);
  ASSERT_FALSE(golden.is_discarded()) << "cannot parse " << path;
  ASSERT_GE(golden["cases"].size(), 40u);
  for (const auto& golden_case : golden["cases"]) {
    const std::string name = golden_case["name"];
    const std::string text = golden_case["text"];
    ASSERT_OK_AND_ASSIGN(Ids ids, tokenizer_->Encode(text));
    EXPECT_EQ(ids, golden_case["ids"].get<Ids>()) << name;
    ASSERT_OK_AND_ASSIGN(std::string decoded, tokenizer_->Decode(ids));
    EXPECT_EQ(decoded, text) << name;
  }
}

TEST_F(Gpt2VocabularyTest, EncodeTreatsEndOfTextAsPlainText) {
  ASSERT_OK_AND_ASSIGN(Ids plain, tokenizer_->Encode("<|endoftext|>"));
  EXPECT_GT(plain.size(), 1u);
  ASSERT_OK_AND_ASSIGN(Ids special, tokenizer_->EncodeWithSpecial("Hello world<|endoftext|>"));
  EXPECT_EQ(special, (Ids{15496, 995, 50256}));
}

TEST_F(Gpt2VocabularyTest, RejectsInvalidUtf8NamingTheOffset) {
  EXPECT_THAT(tokenizer_->Encode("Hello \xC3("),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byte offset 6")));
  EXPECT_THAT(tokenizer_->EncodeWithSpecial("<|endoftext|>\xFF"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("byte offset 13")));
}

TEST_F(Gpt2VocabularyTest, DecodesTokensThatSplitACharacterToItsBytes) {
  // "😀" is four bytes; GPT-2 spells it with byte-level tokens.
  ASSERT_OK_AND_ASSIGN(Ids ids, tokenizer_->Encode("\xF0\x9F\x98\x80"));
  ASSERT_GT(ids.size(), 1u);
  ASSERT_OK_AND_ASSIGN(std::string first, tokenizer_->Decode({ids.front()}));
  EXPECT_NE(FindInvalidUtf8(first), -1);
  EXPECT_THAT(tokenizer_->Decode({50257}), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(Gpt2VocabularyTest, EncodesConcurrentlyWithTheSameResult) {
  const std::string text = "The quick brown fox jumps over the lazy dog's back, 1234 times!\n";
  const Ids expected = EncodeOrDie(*tokenizer_, text);
  std::vector<Ids> results(4);
  std::vector<std::thread> threads;
  for (auto& result : results) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) result = EncodeOrDie(*tokenizer_, text);
    });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) EXPECT_EQ(result, expected);
}

// About 1 MB of varied English-like text.
std::string MegabyteOfText() {
  const std::vector<std::string> words = {"the",     "model",       "Paris",   "edits", "facts",
                                          "quickly", "tokenizer's", "1889",    "tower", "was",
                                          "built",   "in",          "France",  "and",   "it",
                                          "stands",  "tall",        "neurons", "GPT-2"};
  std::string text;
  uint64_t state = 12345;
  while (text.size() < (1u << 20)) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    text += words[(state >> 33) % words.size()];
    text += (state >> 20) % 13 == 0 ? ".\n" : (state >> 20) % 7 == 0 ? ", " : " ";
  }
  return text;
}

double SecondsToEncode(const Gpt2Tokenizer& tokenizer, const std::string& text, Ids* ids) {
  const auto start = std::chrono::steady_clock::now();
  *ids = EncodeOrDie(tokenizer, text);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Not a benchmark: a guard against accidental quadratic behaviour. The
// measured speed is printed and recorded as a test property.
TEST_F(Gpt2VocabularyTest, EncodesAMegabyteInWellUnderASecond) {
  const std::string text = MegabyteOfText();
  Ids ids;
  const double seconds = SecondsToEncode(*tokenizer_, text, &ids);
  const double mb_per_s = text.size() / 1e6 / seconds;
  std::printf("encoded %.2f MB into %zu tokens in %.3f s (%.1f MB/s)\n", text.size() / 1e6,
              ids.size(), seconds, mb_per_s);
  RecordProperty("encode_mb_per_s", std::to_string(mb_per_s));
  EXPECT_LT(seconds, 2.0);
  ASSERT_OK_AND_ASSIGN(std::string decoded, tokenizer_->Decode(ids));
  EXPECT_EQ(decoded, text);
}

TEST_F(Gpt2VocabularyTest, EncodesLongRunsWithoutQuadraticCost) {
  for (const std::string& run : {std::string(200000, 'a'), std::string(200000, ' '),
                                 std::string(200000, '7'), std::string(200000, '!')}) {
    Ids ids;
    const double seconds = SecondsToEncode(*tokenizer_, run, &ids);
    EXPECT_LT(seconds, 2.0) << "run of '" << run[0] << "'";
    ASSERT_OK_AND_ASSIGN(std::string decoded, tokenizer_->Decode(ids));
    EXPECT_EQ(decoded, run);
  }
}

}  // namespace
}  // namespace romed
