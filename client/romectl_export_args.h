// romectl's export, import and export-model commands: their flags and how
// they become requests (romectl_args.h walks argv and calls these).
//
//   romectl export --session=ID --out=FILE [--overwrite]
//   romectl import --file=FILE [--session=ID | --name=NAME]
//   romectl export-model --session=ID --out=DIR [--overwrite]
//
// export and import move the file between this machine and the server in
// the RPC's messages; export-model makes the server write DIR on its own file
// system (romectl sends DIR as an absolute path of this machine, which is the
// server's when both run on one host).
#ifndef ROMED_CLIENT_ROMECTL_EXPORT_ARGS_H_
#define ROMED_CLIENT_ROMECTL_EXPORT_ARGS_H_

#include <set>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/romectl_args.h"
#include "client/romectl_export_types.h"

namespace romed::client {

// The flags only these commands take (appended to romectl's flag table).
const std::vector<FlagSpec>& ExportFlagSpecs();

// True for export, import and export-model.
bool IsExportCommand(Command command);

// Reads the parsed flags (absl flags already set) into the command's
// request. INVALID_ARGUMENT for a missing required flag or --name with
// --session on import.
absl::StatusOr<ExportInvocation> BuildExportInvocation(Command command,
                                                       const std::set<absl::string_view>& seen);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_EXPORT_ARGS_H_
