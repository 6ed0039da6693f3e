// romectl's session, edit, revert, edits and stats commands: each sends its
// RPC through a RomedClient and prints the reply (romectl_session_format.h
// for people, one JSON object of the reply with --json). RunCommand
// (romectl_commands.h) dispatches here.
#ifndef ROMED_CLIENT_ROMECTL_SESSION_COMMANDS_H_
#define ROMED_CLIENT_ROMECTL_SESSION_COMMANDS_H_

#include <ostream>

#include "client/romectl_args.h"
#include "client/romed_client.h"

namespace romed::client {

// True for the commands RunEditingCommand runs.
bool IsEditingCommand(Command command);

// Runs one of those commands. `stats` draws its progress bar on `err`
// (unless --noprogress). Returns kExitOk or kExitRpcError.
int RunEditingCommand(const Invocation& invocation, const RomedClient& client,
                      const CallOptions& call, std::ostream& out, std::ostream& err);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_SESSION_COMMANDS_H_
