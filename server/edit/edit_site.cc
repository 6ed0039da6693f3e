#include "server/edit/edit_site.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"

namespace romed {
namespace {

constexpr std::string_view kPlaceholder = "{}";

int64_t CountPlaceholders(std::string_view text) {
  int64_t count = 0;
  for (size_t pos = text.find(kPlaceholder); pos != std::string_view::npos;
       pos = text.find(kPlaceholder, pos + kPlaceholder.size())) {
    ++count;
  }
  return count;
}

}  // namespace

std::string_view FactTokenName(FactToken token) {
  switch (token) {
    case FactToken::kSubjectFirst:
      return "subject_first";
    case FactToken::kSubjectLast:
      return "subject_last";
    case FactToken::kLast:
      return "last";
  }
  return "unknown";
}

absl::StatusOr<FactToken> ParseFactToken(std::string_view name) {
  for (FactToken token : {FactToken::kSubjectFirst, FactToken::kSubjectLast, FactToken::kLast}) {
    if (name == FactTokenName(token)) return token;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown fact_token \"", std::string(name),
                   "\" (expected subject_first, subject_last or last)"));
}

absl::Status ValidatePromptTemplate(std::string_view prompt_template, std::string_view subject) {
  if (subject.empty()) return absl::InvalidArgumentError("subject is empty");
  const int64_t placeholders = CountPlaceholders(prompt_template);
  const std::string shown(prompt_template);
  if (placeholders == 0) {
    if (prompt_template.find(subject) != std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt \"", shown, "\" has no \"{}\": write \"{}\" where the subject \"",
          std::string(subject), "\" goes instead of the subject itself"));
    }
    return absl::InvalidArgumentError(absl::StrCat("subject \"", std::string(subject),
                                                   "\" is not in the prompt \"", shown,
                                                   "\" (which has no \"{}\" placeholder)"));
  }
  if (placeholders > 1) {
    return absl::InvalidArgumentError(absl::StrCat("prompt \"", shown, "\" has ", placeholders,
                                                   " \"{}\" placeholders; exactly one is allowed"));
  }
  return absl::OkStatus();
}

std::string NestTemplate(std::string_view outer, std::string_view inner) {
  std::string result(outer);
  const size_t pos = result.find(kPlaceholder);
  if (pos != std::string::npos) result.replace(pos, kPlaceholder.size(), inner);
  return result;
}

absl::StatusOr<FilledPrompt> FillPrompt(const Gpt2Tokenizer& tokenizer,
                                        std::string_view prompt_template,
                                        std::string_view subject, FactToken fact_token) {
  RETURN_IF_ERROR(ValidatePromptTemplate(prompt_template, subject));
  FilledPrompt filled;
  const size_t subject_byte = prompt_template.find(kPlaceholder);
  filled.text = NestTemplate(prompt_template, subject);
  ASSIGN_OR_RETURN(filled.tokens, tokenizer.Encode(filled.text));
  if (filled.tokens.empty()) return absl::InvalidArgumentError("prompt encodes to no tokens");

  // Byte range of each token; the subject is bytes [subject_byte, end_byte).
  const size_t end_byte = subject_byte + subject.size();
  size_t offset = 0;
  int64_t begin = -1, end = -1;
  for (size_t i = 0; i < filled.tokens.size(); ++i) {
    ASSIGN_OR_RETURN(std::string bytes, tokenizer.Decode({filled.tokens[i]}));
    const size_t next = offset + bytes.size();
    if (next > subject_byte && offset < end_byte) {
      if (begin < 0) begin = static_cast<int64_t>(i);
      end = static_cast<int64_t>(i) + 1;
    }
    offset = next;
  }
  if (begin < 0) {
    return absl::InternalError(absl::StrCat("subject \"", std::string(subject),
                                            "\" not found in the tokens of \"", filled.text, "\""));
  }
  filled.subject_begin = begin;
  filled.subject_end = end;
  switch (fact_token) {
    case FactToken::kSubjectFirst:
      filled.fact_position = begin;
      break;
    case FactToken::kSubjectLast:
      filled.fact_position = end - 1;
      break;
    case FactToken::kLast:
      filled.fact_position = static_cast<int64_t>(filled.tokens.size()) - 1;
      break;
  }
  return filled;
}

}  // namespace romed
