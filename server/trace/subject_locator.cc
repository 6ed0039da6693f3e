#include "server/trace/subject_locator.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"

namespace romed {

std::pair<int64_t, int64_t> TokenRangeOfBytes(const std::vector<std::string>& token_texts,
                                              int64_t char_begin, int64_t char_end) {
  int64_t begin = -1, end = -1, offset = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(token_texts.size()); ++i) {
    offset += static_cast<int64_t>(token_texts[i].size());  // end of token i
    if (begin < 0 && offset > char_begin) begin = i;
    if (offset >= char_end) {
      end = i + 1;
      break;
    }
  }
  return {begin, end};
}

absl::StatusOr<LocatedPrompt> LocateSubject(const Gpt2Tokenizer& tokenizer,
                                            std::string_view prompt, std::string_view subject) {
  if (prompt.empty()) return absl::InvalidArgumentError("trace: the prompt is empty");
  if (subject.empty()) return absl::InvalidArgumentError("trace: the subject is empty");
  const size_t at = prompt.find(subject);
  if (at == std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("trace: the subject \"", std::string(subject),
                                                   "\" does not occur in the prompt \"",
                                                   std::string(prompt), "\""));
  }
  LocatedPrompt located;
  ASSIGN_OR_RETURN(located.tokens, tokenizer.Encode(prompt));
  located.token_texts.reserve(located.tokens.size());
  for (int64_t id : located.tokens) {
    ASSIGN_OR_RETURN(std::string text, tokenizer.Decode({id}));
    located.token_texts.push_back(std::move(text));
  }
  auto [begin, end] = TokenRangeOfBytes(located.token_texts, static_cast<int64_t>(at),
                                        static_cast<int64_t>(at + subject.size()));
  if (begin < 0 || end < 0) {
    return absl::InternalError("trace: the prompt's tokens do not decode back to the prompt");
  }
  if (begin == 0 && end == static_cast<int64_t>(located.tokens.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("trace: the subject \"", std::string(subject),
                     "\" covers the whole prompt; the prompt must continue after (or start "
                     "before) the subject"));
  }
  located.subject_begin = begin;
  located.subject_end = end;
  return located;
}

}  // namespace romed
