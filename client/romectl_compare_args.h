// `romectl compare`: its flags and how they become a CompareInvocation
// (romectl_args.h walks argv and calls these).
//
//   romectl compare [--a=SESSION] [--b=SESSION] --prompt=TEXT [--prompt=TEXT ...]
//                   [--target=TEXT ...] [--max_new_tokens=N] [--top_k=K] [--kl]
//                   [--temperature=T --top_p=P --seed=N] [--stop=TEXT ...]
//                   [--ignore_eos] [--color=auto|always|never]
//
// --a / --b: a session id, empty (the default) = the original model.
// --top_k is the number of next tokens shown per variant (not a sampling
// option here). --max_new_tokens defaults to kCompareDefaultNewTokens; 0
// skips generation.
#ifndef ROMED_CLIENT_ROMECTL_COMPARE_ARGS_H_
#define ROMED_CLIENT_ROMECTL_COMPARE_ARGS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/romectl_args.h"
#include "client/romectl_compare_types.h"

namespace romed::client {

// The flag entries for `compare` (appended to romectl's flag table); the
// repeatable --prompt and --target entries make those flags collect every
// occurrence.
const std::vector<FlagSpec>& CompareFlagSpecs();

// Reads the parsed flags (absl flags already set; `seen` names those given;
// `repeated` holds every occurrence of a repeatable flag) into the
// invocation. INVALID_ARGUMENT for no --prompt or an unknown --color.
absl::StatusOr<CompareInvocation> BuildCompareInvocation(
    const std::set<absl::string_view>& seen,
    const std::map<absl::string_view, std::vector<std::string>>& repeated);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_COMPARE_ARGS_H_
