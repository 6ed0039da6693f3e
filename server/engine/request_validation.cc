#include "server/engine/request_validation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/core/status_macros.h"
#include "server/model/tokenizer.h"

namespace romed {

absl::Status ValidateText(std::string_view field_view, std::string_view text, bool allow_empty) {
  // Debian's abseil has its own absl::string_view: StrCat takes a std::string.
  const std::string field(field_view);
  if (text.empty()) {
    if (allow_empty) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  }
  const int64_t bad = FindInvalidUtf8(text);
  if (bad >= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not valid UTF-8 (first bad byte at offset ", bad, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckPromptLength(int64_t prompt_tokens, const EngineLimits& limits,
                               int64_t context_length, bool needs_new_token) {
  if (prompt_tokens > limits.max_prompt_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt is ", prompt_tokens, " tokens; the limit is ",
                     limits.max_prompt_tokens, " (--max_prompt_tokens)"));
  }
  const int64_t room = needs_new_token ? context_length - 1 : context_length;
  if (prompt_tokens > room) {
    return absl::InvalidArgumentError(absl::StrCat(
        "prompt is ", prompt_tokens, " tokens; the model's context is ", context_length,
        " tokens (n_positions)",
        needs_new_token ? ", and generation needs room for at least one new token" : ""));
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ResolveMaxNewTokens(int64_t requested, int64_t prompt_tokens,
                                            int64_t context_length,
                                            const EngineOptions& options) {
  const int64_t limit = options.limits.max_new_tokens;
  const int64_t room = context_length - prompt_tokens;
  if (requested < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens is ", requested, "; it must be 1..", limit,
                     " (--max_new_tokens), or 0 for the default"));
  }
  if (requested > limit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_new_tokens is ", requested, "; the limit is ", limit, " (--max_new_tokens)"));
  }
  if (requested == 0) {
    return std::max<int64_t>(1, std::min({options.default_new_tokens, limit, room}));
  }
  if (requested > room) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "prompt (%d tokens) + max_new_tokens (%d) exceeds the model's context of %d "
        "tokens; ask for at most %d new tokens or shorten the prompt",
        prompt_tokens, requested, context_length, room));
  }
  return requested;
}

absl::Status ValidateStopSequences(const std::vector<std::string>& stop,
                                   const EngineLimits& limits) {
  if (static_cast<int64_t>(stop.size()) > limits.max_stop_sequences) {
    return absl::InvalidArgumentError(
        absl::StrCat(stop.size(), " stop sequences; at most ", limits.max_stop_sequences,
                     " are allowed (--max_stop_sequences)"));
  }
  for (size_t i = 0; i < stop.size(); ++i) {
    RETURN_IF_ERROR(ValidateText(absl::StrCat("stop[", i, "]"), stop[i], false));
  }
  return absl::OkStatus();
}

absl::Status ValidateContinuations(const std::vector<std::string>& continuations,
                                   const EngineLimits& limits) {
  if (continuations.empty()) {
    return absl::InvalidArgumentError("continuations is empty; give at least one to score");
  }
  if (static_cast<int64_t>(continuations.size()) > limits.max_continuations) {
    return absl::InvalidArgumentError(absl::StrCat(
        continuations.size(), " continuations; at most ", limits.max_continuations,
        " are allowed (--max_continuations)"));
  }
  for (size_t i = 0; i < continuations.size(); ++i) {
    RETURN_IF_ERROR(
        ValidateText(absl::StrCat("continuations[", i, "]"), continuations[i], false));
  }
  return absl::OkStatus();
}

}  // namespace romed
