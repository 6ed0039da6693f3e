// romectl's commands: each sends its RPC through a RomedClient and prints the
// reply with romectl_format.h. RomectlMain is the whole program (parse,
// connect, run) so tests can drive it exactly as a shell does.
#ifndef ROMED_CLIENT_ROMECTL_COMMANDS_H_
#define ROMED_CLIENT_ROMECTL_COMMANDS_H_

#include <ostream>
#include <string>
#include <vector>

#include "client/romectl_args.h"
#include "client/romed_client.h"

namespace romed::client {

// Exit statuses of romectl.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRpcError = 1;  // the server answered an error, or is not SERVING
inline constexpr int kExitUsage = 2;     // bad command line

// Runs `invocation` (not kHelp) against `client`: the reply goes to `out`
// (one JSON object and a newline with --json), errors to `err` as
// "error: CODE: message". Returns kExitOk or kExitRpcError.
int RunCommand(const Invocation& invocation, const RomedClient& client, std::ostream& out,
               std::ostream& err);

// The romectl program: `args` is argv. Usage goes to `out` for help and to
// `err` (with kExitUsage) for a missing command or a usage error.
int RomectlMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_COMMANDS_H_
