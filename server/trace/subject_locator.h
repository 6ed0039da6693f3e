// Finds the subject's tokens in a tokenised prompt, as the ROME reference
// code's find_token_range does: the WHOLE prompt is tokenised once (so BPE
// merges across the subject's boundary are what the model sees), each token
// is decoded to its bytes, and the subject's first occurrence in the prompt
// is mapped to the tokens that overlap its byte range.
//
//   "The Space Needle is in" with subject "Space Needle"
//     -> tokens ["The", " Space", " Need", "le", " is", " in"], subject [1, 4)
//
// A token that straddles the boundary (a merge of the subject's last byte
// with the next text) counts as a subject token.
#ifndef ROMED_SERVER_TRACE_SUBJECT_LOCATOR_H_
#define ROMED_SERVER_TRACE_SUBJECT_LOCATOR_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/model/tokenizer.h"

namespace romed {

struct LocatedPrompt {
  std::vector<int64_t> tokens;           // [T]
  std::vector<std::string> token_texts;  // [T] bytes of each token
  int64_t subject_begin = 0;             // subject tokens [begin, end)
  int64_t subject_end = 0;
};

// Tokenises `prompt` and locates `subject` in it. InvalidArgumentError if the
// prompt or subject is empty, the subject does not occur in the prompt, or
// its tokens cover the whole prompt (nothing is left to trace after it);
// the tokenizer's errors (invalid UTF-8) pass through.
absl::StatusOr<LocatedPrompt> LocateSubject(const Gpt2Tokenizer& tokenizer,
                                            std::string_view prompt, std::string_view subject);

// The token range [begin, end) overlapping bytes [char_begin, char_end) of
// the concatenation of `token_texts`. Exposed for tests.
std::pair<int64_t, int64_t> TokenRangeOfBytes(const std::vector<std::string>& token_texts,
                                              int64_t char_begin, int64_t char_end);

}  // namespace romed

#endif  // ROMED_SERVER_TRACE_SUBJECT_LOCATOR_H_
