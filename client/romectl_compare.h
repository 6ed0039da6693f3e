// `romectl compare`: one Compare call, printed for people as two columns
// (variant a, variant b) per prompt: the generations, each target's
// probability, the top-k next tokens and KL(a || b). Rows where the variants
// differ are marked with '*'; with colour (a terminal, or --color=always) the
// differing parts are also coloured (a red, b green). --json prints the
// response as one JSON object (field names as in the proto).
#ifndef ROMED_CLIENT_ROMECTL_COMPARE_H_
#define ROMED_CLIENT_ROMECTL_COMPARE_H_

#include <ostream>
#include <string>

#include "client/romectl_args.h"
#include "client/romed_client.h"
#include "romed/v1/model_editor.pb.h"

namespace romed::client {

// Runs inv.compare against `client`; returns romectl's exit status.
int RunCompare(const Invocation& inv, const RomedClient& client, const CallOptions& call,
               std::ostream& out, std::ostream& err);

// The two-column text for people (pure: tests compare it with expected
// text); `show_kl` when the request asked for KL.
std::string FormatCompare(const romed::v1::CompareResponse& response, bool show_kl, bool color);

// A GPT-2 byte-level vocabulary string as the text it stands for ("ĠParis"
// -> " Paris"); characters outside the byte alphabet are kept as they are.
std::string VocabTokenText(const std::string& token);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_COMPARE_H_
