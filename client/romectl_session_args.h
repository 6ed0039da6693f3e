// romectl's session, edit, revert, edits and stats commands: their flags and
// how they become requests (romectl_args.h walks argv and calls these).
//
//   romectl session create [--name=demo] [--label=team=nlp]...
//   romectl session get|delete ID          (or --session=ID)
//   romectl session list [--page_size=N] [--page_token=T]
//   romectl edit --session=ID --prompt="{} was born in" --subject="Dora Zope"
//                --target=Paris [--target_true=Vienna] [--layer=3] [--fact_token=last]
//                [--v_num_grad_steps=N] [--v_lr=X] [--v_weight_decay=X] [--kl_factor=X]
//                [--clamp_norm_factor=X] [--original_key_form] [--identity_covariance]
//   romectl revert --session=ID [--n=N | --to=EDIT_ID]
//   romectl edits --session=ID
//   romectl stats --layer=L [--corpus=PATH] [--max_tokens=N] [--recompute] [--noprogress]
#ifndef ROMED_CLIENT_ROMECTL_SESSION_ARGS_H_
#define ROMED_CLIENT_ROMECTL_SESSION_ARGS_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/romectl_args.h"
#include "client/romectl_session_types.h"

namespace romed::client {

// The flags only these commands take (appended to romectl's flag table).
const std::vector<FlagSpec>& SessionFlagSpecs();

// Positional arguments `command` takes after its name: 2 for session (the
// action and an optional id), 0 otherwise.
size_t ExtraPositionalArguments(Command command);

// Edit's site and hyperparameter flags (--layer, --fact_token,
// --v_num_grad_steps, --v_lr, --v_weight_decay, --kl_factor,
// --clamp_norm_factor, --original_key_form, --identity_covariance) as
// Edit's `hparams`: only the flags in `seen` are set, so the server fills in
// its defaults. INVALID_ARGUMENT for a malformed --fact_token. (edit and eval.)
absl::StatusOr<romed::v1::RomeHyperparameters> BuildRomeHyperparameters(
    const std::set<absl::string_view>& seen);

// Reads the parsed flags (absl flags already set) into the command's
// request. `positional` starts with the command's name; `seen` names the
// flags given; `repeated` holds each repeatable flag's values. An empty
// EditInvocation for other commands. INVALID_ARGUMENT for a missing or
// unknown session action, a missing required flag, --n with --to, a
// malformed --label or --fact_token.
absl::StatusOr<EditInvocation> BuildEditInvocation(
    Command command, const std::vector<std::string>& positional,
    const std::set<absl::string_view>& seen,
    const std::map<absl::string_view, std::vector<std::string>>& repeated);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_SESSION_ARGS_H_
