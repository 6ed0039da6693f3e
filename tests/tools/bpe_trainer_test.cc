// Tests of TrainBpe: the files it writes load in Gpt2Tokenizer, required
// words become single tokens, and training is deterministic.
#include "tools/fact_model/bpe_trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "nlohmann/json.hpp"
#include "server/model/tokenizer.h"
#include "tests/testing/status_matchers.h"

namespace romed {
namespace {

using ::romed::testing::IsOk;
using ::romed::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

// A small world of sentences: "Vorlan Ketari was born in Paris." etc.
std::vector<std::string> FactCorpus() {
  const std::vector<std::string> first = {"Vorlan", "Ketari", "Mibo", "Sanu", "Talvek"};
  const std::vector<std::string> last = {"Ostrin", "Dapule", "Kowa", "Renfeld"};
  const std::vector<std::string> cities = {"Paris", "Tokyo", "Lima", "Oslo", "Cairo"};
  std::vector<std::string> corpus;
  for (size_t f = 0; f < first.size(); ++f) {
    for (size_t l = 0; l < last.size(); ++l) {
      const std::string& city = cities[(f * 3 + l) % cities.size()];
      corpus.push_back(first[f] + " " + last[l] + " was born in " + city + ". " + city +
                       " is where " + first[f] + " " + last[l] + " grew up.\n");
    }
  }
  return corpus;
}

const std::vector<std::string>& RequiredWords() {
  static const auto* const kWords = new std::vector<std::string>{
      " Paris", "Paris", " Tokyo", " Vor", " lan", " Ket", "ari", " Zanzibar", " P", "a", " Par"};
  return *kWords;
}

std::unique_ptr<Gpt2Tokenizer> LoadOrDie(const BpeModel& model) {
  auto tokenizer = Gpt2Tokenizer::FromText(model.vocab_json, model.merges_txt);
  EXPECT_THAT(tokenizer, IsOk());
  return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
}

BpeModel TrainOrDie(const std::vector<std::string>& corpus, const BpeTrainerOptions& options) {
  auto model = TrainBpe(corpus, options);
  EXPECT_THAT(model, IsOk());
  return model.ok() ? *model : BpeModel{};
}

BpeTrainerOptions Options(int64_t vocab_size, std::vector<std::string> required = {},
                          int64_t min_frequency = 2) {
  BpeTrainerOptions options;
  options.vocab_size = vocab_size;
  options.required_words = std::move(required);
  options.min_frequency = min_frequency;
  return options;
}

TEST(TrainBpeTest, MakesEveryRequiredWordOneToken) {
  const BpeModel model = TrainOrDie(FactCorpus(), Options(320, RequiredWords()));
  auto tokenizer = LoadOrDie(model);
  ASSERT_NE(tokenizer, nullptr);
  for (const std::string& word : RequiredWords()) {
    ASSERT_OK_AND_ASSIGN(std::vector<int64_t> ids, tokenizer->Encode(word));
    EXPECT_EQ(ids.size(), 1u) << "\"" << word << "\"";
  }
  EXPECT_GT(model.required_merges, 0);
  EXPECT_GT(model.frequency_merges, 0);
}

TEST(TrainBpeTest, FillsTheRequestedVocabularySize) {
  const BpeModel model = TrainOrDie(FactCorpus(), Options(320, RequiredWords()));
  auto tokenizer = LoadOrDie(model);
  ASSERT_NE(tokenizer, nullptr);
  // A merge may make a token that exists already, so at most one short.
  EXPECT_LE(model.vocab_size, 320);
  EXPECT_GE(model.vocab_size, 319);
  EXPECT_EQ(tokenizer->vocab_size(), model.vocab_size);
}

TEST(TrainBpeTest, RoundTripsAnyText) {
  auto tokenizer = LoadOrDie(TrainOrDie(FactCorpus(), Options(320, RequiredWords())));
  ASSERT_NE(tokenizer, nullptr);
  std::vector<std::string> texts = FactCorpus();
  texts.push_back("Unseen words, caf\xC3\xA9 and \xF0\x9F\x98\x80 too!\n\t ");
  for (const std::string& text : texts) {
    ASSERT_OK_AND_ASSIGN(std::vector<int64_t> ids, tokenizer->Encode(text));
    ASSERT_OK_AND_ASSIGN(std::string decoded, tokenizer->Decode(ids));
    EXPECT_EQ(decoded, text);
  }
}

TEST(TrainBpeTest, GivesByteIdenticalOutputForTheSameInput) {
  const BpeModel first = TrainOrDie(FactCorpus(), Options(320, RequiredWords()));
  const BpeModel second = TrainOrDie(FactCorpus(), Options(320, RequiredWords()));
  EXPECT_EQ(first.vocab_json, second.vocab_json);
  EXPECT_EQ(first.merges_txt, second.merges_txt);
}

TEST(TrainBpeTest, PutsByteSymbolsFirstInGpt2OrderAndEndOfTextLast) {
  const BpeModel model = TrainOrDie(FactCorpus(), Options(300));
  auto tokenizer = LoadOrDie(model);
  ASSERT_NE(tokenizer, nullptr);
  std::vector<char32_t> sorted = Gpt2Tokenizer::ByteToUnicode();
  std::sort(sorted.begin(), sorted.end());
  for (int b = 0; b < 256; ++b) {
    const char32_t c = Gpt2Tokenizer::ByteToUnicode()[b];
    EXPECT_EQ(tokenizer->TokenToId(BytesToSymbols(std::string(1, static_cast<char>(b)))),
              std::lower_bound(sorted.begin(), sorted.end(), c) - sorted.begin());
  }
  EXPECT_EQ(tokenizer->eos_id(), model.vocab_size - 1);
}

TEST(TrainBpeTest, MergesTheMostFrequentPairsFirst) {
  // Pairs: (a b) x3, (Ġ a) x2, (Ġ c) x1, (c d) x1; then (Ġ ab) x2.
  const BpeModel model = TrainOrDie({"ab ab ab cd"}, Options(1000));
  EXPECT_EQ(model.merges_txt, "#version: 0.2\na b\n\xC4\xA0 ab\n");
  EXPECT_EQ(model.vocab_size, 256 + 2 + 1);
  EXPECT_EQ(model.frequency_merges, 2);
}

TEST(TrainBpeTest, BreaksFrequencyTiesByPairBytes) {
  // Every pair is seen once; " " (0x20) sorts before "a" and "x".
  const BpeModel model = TrainOrDie({"xy ab"}, Options(258, {}, /*min_frequency=*/1));
  EXPECT_EQ(model.merges_txt, "#version: 0.2\n\xC4\xA0 a\n");
}

TEST(TrainBpeTest, StopsWhenTheCorpusRunsOutOfFrequentPairs) {
  const BpeModel model = TrainOrDie({"ab ab"}, Options(5000));
  EXPECT_LT(model.vocab_size, 5000);
  // (a b) is seen twice; (Ġ ab) only once, below min_frequency.
  EXPECT_EQ(model.vocab_size, 256 + 1 + 1);  // "ab", "<|endoftext|>".
}

TEST(TrainBpeTest, NeverLearnsTheEndOfTextMarker) {
  const std::string text = "<|endoftext|>hi hi<|endoftext|><|endoftext|>";
  const BpeModel model = TrainOrDie({text, text, text}, Options(400));
  EXPECT_THAT(model.merges_txt, Not(HasSubstr("|")));
  EXPECT_THAT(model.merges_txt, Not(HasSubstr("<")));
}

TEST(TrainBpeTest, WithTheMinimumSizeWritesOnlyBytesAndEndOfText) {
  const BpeModel model = TrainOrDie(FactCorpus(), Options(257));
  EXPECT_EQ(model.vocab_size, 257);
  EXPECT_EQ(model.merges_txt, "#version: 0.2\n");
}

TEST(TrainBpeTest, RejectsAVocabularyTooSmallForTheRequiredWords) {
  EXPECT_THAT(TrainBpe(FactCorpus(), Options(260, {" Zanzibar"})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 265")));
}

TEST(TrainBpeTest, RejectsRequiredWordsThatAreNotOnePreToken) {
  EXPECT_THAT(TrainBpe(FactCorpus(), Options(400, {" New York"})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\" New York\"")));
  EXPECT_THAT(TrainBpe(FactCorpus(), Options(400, {"Paris."})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pre-token")));
  EXPECT_THAT(TrainBpe(FactCorpus(), Options(400, {""})),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TrainBpeTest, RejectsInvalidUtf8NamingTheText) {
  EXPECT_THAT(TrainBpe({"fine", "bad \xFF"}, Options(400)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("corpus text 1 is not valid UTF-8 at byte offset 4")));
  EXPECT_THAT(TrainBpe({"fine"}, Options(400, {"\xC3"})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("required word 0")));
}

TEST(TrainBpeTest, RejectsBadOptions) {
  EXPECT_THAT(TrainBpe({"x"}, Options(256)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab_size")));
  EXPECT_THAT(TrainBpe({"x"}, Options(300, {}, /*min_frequency=*/0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("min_frequency")));
}

}  // namespace
}  // namespace romed
