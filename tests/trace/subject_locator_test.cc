// Locating the subject's tokens as the reference's find_token_range does.
#include "server/trace/subject_locator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

using Range = std::pair<int64_t, int64_t>;

TEST(TokenRangeOfBytesTest, CoversTheTokensOverlappingTheBytes) {
  // "The Space Needle is" as GPT-2 splits it.
  std::vector<std::string> tokens = {"The", " Space", " Need", "le", " is"};
  EXPECT_EQ(TokenRangeOfBytes(tokens, 4, 16), Range(1, 4));   // "Space Needle"
  EXPECT_EQ(TokenRangeOfBytes(tokens, 3, 16), Range(1, 4));   // " Space Needle"
  EXPECT_EQ(TokenRangeOfBytes(tokens, 0, 3), Range(0, 1));    // "The"
}

TEST(TokenRangeOfBytesTest, ATokenStraddlingTheEndBelongsToTheSubject) {
  // A BPE merge across the boundary: subject "Ka" in "Kas" tokenised ["Kas"].
  std::vector<std::string> tokens = {"a", " Kas", " was"};
  EXPECT_EQ(TokenRangeOfBytes(tokens, 2, 4), Range(1, 2));
}

class LocateSubjectTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tokenizer = Gpt2Tokenizer::FromText(romed::testing::ByteLevelVocabJson(),
                                             romed::testing::ByteLevelMergesTxt());
    ASSERT_TRUE(tokenizer.ok());
    tokenizer_ = std::move(*tokenizer);
  }
  std::unique_ptr<Gpt2Tokenizer> tokenizer_;
};

TEST_F(LocateSubjectTest, FindsTheFirstOccurrence) {
  auto located = LocateSubject(*tokenizer_, "Bo met Bo", "Bo");
  ASSERT_TRUE(located.ok()) << located.status();
  EXPECT_EQ(located->subject_begin, 0);
  EXPECT_EQ(located->subject_end, 2);
  EXPECT_EQ(located->tokens.size(), 9u);
  EXPECT_EQ(located->token_texts[3], "m");
}

TEST_F(LocateSubjectTest, RejectsWhatCannotBeTraced) {
  EXPECT_THAT(LocateSubject(*tokenizer_, "", "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("prompt is empty")));
  EXPECT_THAT(LocateSubject(*tokenizer_, "abc", "").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subject is empty")));
  EXPECT_THAT(LocateSubject(*tokenizer_, "abc", "x").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not occur")));
  EXPECT_THAT(LocateSubject(*tokenizer_, "abc", "abc").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("whole prompt")));
}

}  // namespace
}  // namespace romed
