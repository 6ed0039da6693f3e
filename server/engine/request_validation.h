// Input checks of the Engine's requests, as pure functions so each rule is
// tested on its own. Every error is INVALID_ARGUMENT (or NOT_FOUND for a
// session id) with a message that names the field, the value's problem and,
// for a limit, the number and the flag that sets it:
//
//   prompt is empty
//   prompt is not valid UTF-8 (first bad byte at offset 3)
//   prompt is 80 tokens; the limit is 64 (--max_prompt_tokens)
//   max_new_tokens is 600; the limit is 512 (--max_new_tokens)
//   prompt (60 tokens) + max_new_tokens (10) exceeds the model's context of 64 tokens; ...
//   3 stop sequences; at most 2 are allowed (--max_stop_sequences)
//   continuations[1] is empty
#ifndef ROMED_SERVER_ENGINE_REQUEST_VALIDATION_H_
#define ROMED_SERVER_ENGINE_REQUEST_VALIDATION_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/engine/engine_options.h"

namespace romed {

// `text` (the value of `field`) must be valid UTF-8 and, unless
// `allow_empty`, non-empty.
absl::Status ValidateText(std::string_view field, std::string_view text, bool allow_empty);

// A prompt of `prompt_tokens` tokens against --max_prompt_tokens and the
// model's context `context_length`; it must leave room for one new token
// when `needs_new_token` (Generate), not for Score.
absl::Status CheckPromptLength(int64_t prompt_tokens, const EngineLimits& limits,
                               int64_t context_length, bool needs_new_token);

// The max_new_tokens a Generate request runs with: `requested` if in
// 1..limit and it fits the context after the prompt; 0 means the default,
// capped by the limit and by the room left. Negative values, values over
// the limit or over the room left are INVALID_ARGUMENT.
absl::StatusOr<int64_t> ResolveMaxNewTokens(int64_t requested, int64_t prompt_tokens,
                                            int64_t context_length,
                                            const EngineOptions& options);

// At most --max_stop_sequences, each non-empty valid UTF-8.
absl::Status ValidateStopSequences(const std::vector<std::string>& stop,
                                   const EngineLimits& limits);

// 1..--max_continuations, each non-empty valid UTF-8.
absl::Status ValidateContinuations(const std::vector<std::string>& continuations,
                                   const EngineLimits& limits);

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_REQUEST_VALIDATION_H_
