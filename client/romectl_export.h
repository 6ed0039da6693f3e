// romectl's export, import and export-model commands (flags in
// romectl_export_args.h): each sends its RPC through a RomedClient, moves
// the file between this machine and the server where the command needs it,
// and prints a summary (one JSON object with --json). RunCommand
// (romectl_commands.h) dispatches here.
#ifndef ROMED_CLIENT_ROMECTL_EXPORT_H_
#define ROMED_CLIENT_ROMECTL_EXPORT_H_

#include <ostream>

#include "client/romectl_args.h"
#include "client/romed_client.h"

namespace romed::client {

// Runs export, import or export-model. Local file errors (export's --out
// exists without --overwrite, import's --file missing) print
// "error: CODE: message" before any RPC. Returns kExitOk or kExitRpcError.
int RunExportCommand(const Invocation& invocation, const RomedClient& client,
                     const CallOptions& call, std::ostream& out, std::ostream& err);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_EXPORT_H_
