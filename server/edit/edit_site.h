// Where ROME edits: a layer and a fact token (the reference implementation's
// `fact_token`), and the prompt filling that finds that token.
//
// A prompt template holds exactly one "{}" for the subject:
//   FillPrompt(tok, "The mother tongue of {} is", "Danielle Darrieux", kSubjectLast)
//     -> tokens of "The mother tongue of Danielle Darrieux is", subject tokens
//        [4, 8) (say), fact_position 7 (the subject's last token).
// The whole text is tokenised once (what the model sees); a token that
// straddles the subject's boundary counts as a subject token.
#ifndef ROMED_SERVER_EDIT_EDIT_SITE_H_
#define ROMED_SERVER_EDIT_EDIT_SITE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/model/tokenizer.h"

namespace romed {

enum class FactToken {
  kSubjectFirst,  // the subject's first token
  kSubjectLast,   // the subject's last token (the paper's default)
  kLast,          // the prompt's last token (before any target token)
};

// "subject_first" / "subject_last" / "last"; ParseFactToken returns
// InvalidArgumentError for any other name.
std::string_view FactTokenName(FactToken token);
absl::StatusOr<FactToken> ParseFactToken(std::string_view name);

struct EditSite {
  int64_t layer = 0;
  FactToken fact_token = FactToken::kSubjectLast;
};

// InvalidArgumentError unless `prompt_template` holds exactly one "{}" and
// `subject` is non-empty. The message says which rule failed (no "{}"; the
// subject written literally instead of "{}"; the subject not in the prompt;
// two or more "{}").
absl::Status ValidatePromptTemplate(std::string_view prompt_template, std::string_view subject);

// `outer` with its single "{}" replaced by `inner` ("x. {}" + "A {} is" ->
// "x. A {} is"). `outer` must hold exactly one "{}" (checked by callers).
std::string NestTemplate(std::string_view outer, std::string_view inner);

struct FilledPrompt {
  std::string text;                // the template with the subject filled in
  std::vector<int64_t> tokens;     // [T]
  int64_t subject_begin = 0;       // subject tokens [begin, end)
  int64_t subject_end = 0;
  int64_t fact_position = 0;       // the fact token's position in [0, T)
};

// Fills and tokenises `prompt_template` (validated as above) and locates the
// fact token. Errors: those of ValidatePromptTemplate, and the tokenizer's
// (invalid UTF-8 -> InvalidArgumentError).
absl::StatusOr<FilledPrompt> FillPrompt(const Gpt2Tokenizer& tokenizer,
                                        std::string_view prompt_template,
                                        std::string_view subject, FactToken fact_token);

}  // namespace romed

#endif  // ROMED_SERVER_EDIT_EDIT_SITE_H_
