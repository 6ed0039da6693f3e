// `romectl eval`: its flags and how they become an EvalInvocation
// (romectl_args.h walks argv and calls these).
//
//   romectl eval --dataset=FILE [--n=N] [--session_per_case | --sequential] [--every=N]
//                [--gen_length=TOKENS] [--seed=N] [--json=PATH] [--csv=PATH] [--svg=PATH]
//                [--layer=L] [--fact_token=last] [edit's hyperparameter flags] [--noprogress]
//
// (--session-per-case with hyphens works too: romectl reads '-' in a flag
// name as '_'.)
#ifndef ROMED_CLIENT_ROMECTL_EVAL_ARGS_H_
#define ROMED_CLIENT_ROMECTL_EVAL_ARGS_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/romectl_args.h"
#include "client/romectl_eval_types.h"

namespace romed::client {

// The flags only `eval` takes, plus the shared ones it reads (--n, --seed,
// --svg, --progress, --layer, --fact_token and edit's hyperparameters).
const std::vector<FlagSpec>& EvalFlagSpecs();

// Reads the parsed flags (absl flags already set; `seen` names those given)
// into the invocation; `json_path` is the value of --json=PATH if one was
// given. INVALID_ARGUMENT for: no --dataset; --session_per_case with
// --sequential; --every without --sequential or < 1; --svg without
// --sequential; --n < 1; --gen_length < 0; a malformed --fact_token.
absl::StatusOr<EvalInvocation> BuildEvalInvocation(const std::set<absl::string_view>& seen,
                                                   const std::string& json_path);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_EVAL_ARGS_H_
