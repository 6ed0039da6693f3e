// `romectl trace`: its flags and how they become a TraceInvocation
// (romectl_args.h walks argv and calls these).
//
//   romectl trace --prompt="Dora Zope is originally from" --subject="Dora Zope"
//                 [--kinds=state,mlp,attn] [--window=W] [--noise=X | --noise_sigma=S]
//                 [--samples=N] [--seed=N] [--answer=" Vienna"] [--session=ID]
//                 [--sever=none|mlp|attn] [--svg=PATH] [--color=auto|always|never]
//   romectl trace --facts=FILE|model [--n=N] [--store_site] [same trace options]
#ifndef ROMED_CLIENT_ROMECTL_TRACE_ARGS_H_
#define ROMED_CLIENT_ROMECTL_TRACE_ARGS_H_

#include <set>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/romectl_args.h"
#include "client/romectl_trace_types.h"

namespace romed::client {

// The flags only `trace` takes (appended to romectl's flag table). It also
// reads --prompt, --subject, --seed, --session, --n and --progress.
const std::vector<FlagSpec>& TraceFlagSpecs();

// Reads the parsed flags (absl flags already set; `seen` names those given)
// into the invocation. INVALID_ARGUMENT for: neither --facts nor both
// --prompt and --subject; --facts with --prompt, --subject, --answer or
// --svg; --n or --store_site without --facts; an unknown kind or sever
// mode; --noise with --noise_sigma; an unknown --color.
absl::StatusOr<TraceInvocation> BuildTraceInvocation(const std::set<absl::string_view>& seen);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_TRACE_ARGS_H_
