// Command-line parsing for romectl:
//
//   romectl [--server=HOST:PORT] [--json] [--timeout_s=S] COMMAND [flags]
//
// Flags are absl flags (declared in romectl_args.cc, named with underscores
// like romed's) but romectl walks argv itself rather than calling
// absl::ParseCommandLine, for three reasons:
//   - repeatable flags: `--stop=` and `--continuation=` (and compare's
//     `--prompt=` and `--target=`) may be given several times and each
//     occurrence is one value, verbatim. absl's
//     std::vector<std::string> flags split on commas, which would break
//     "Paris, France"; here each occurrence is appended instead.
//   - usage errors are returned, not exit(1)-ed, so romectl exits 2 for them.
//   - a flag that the command does not use (--continuation on generate) is an
//     error rather than silently ignored.
// Flags may come before or after the command; `--name=value`, `--name value`,
// `-name=value`, and for booleans `--json`, `--json=false`, `--nojson` all
// work; `--` ends the flags; '-' in a flag name reads as '_'
// (`--session-per-case`). `--json=PATH` (a value that is not a boolean) is
// eval's "also write the JSON report to PATH".
#ifndef ROMED_CLIENT_ROMECTL_ARGS_H_
#define ROMED_CLIENT_ROMECTL_ARGS_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/romectl_compare_types.h"
#include "client/romectl_eval_types.h"
#include "client/romectl_export_types.h"
#include "client/romectl_session_types.h"
#include "client/romectl_trace_types.h"
#include "romed/v1/model_editor.pb.h"

namespace romed::client {

enum class Command {
  kHelp,
  kHealth,
  kInfo,
  kTokenize,
  kGenerate,
  kScore,
  // Sessions and editing (romectl_session_args.h, romectl_session_commands.h).
  kSession,
  kEdit,
  kRevert,
  kEdits,
  kStats,
  // Causal tracing (romectl_trace_args.h, romectl_trace.h).
  kTrace,
  // Export and import (romectl_export_args.h, romectl_export.h).
  kExport,
  kImport,
  kExportModel,
  // CounterFact evaluation (romectl_eval_args.h, romectl_eval.h).
  kEval,
  // A/B comparison (romectl_compare_args.h, romectl_compare.h).
  kCompare,
};

// One flag romectl accepts: its absl flag of the same name is declared where
// the flag is read (romectl_args.cc, romectl_session_args.cc).
struct FlagSpec {
  absl::string_view name;
  absl::string_view value_hint;  // shown in usage: --name=HINT
  bool repeatable;               // each occurrence appends one value
  std::set<Command> commands;    // empty = a global flag
};

// What one romectl run was asked to do, as requests ready to send.
struct Invocation {
  Command command = Command::kHelp;
  // True when no command was given (romectl prints usage and fails) as
  // opposed to `romectl help` / --help (usage, success).
  bool missing_command = false;
  std::string server;                   // --server, host:port
  bool json = false;                    // --json
  absl::Duration timeout;               // --timeout_s, per RPC
  std::string text;                     // tokenize --text
  romed::v1::GenerateRequest generate;  // generate's flags
  bool stream = false;                  // generate --stream
  romed::v1::ScoreRequest score;        // score's flags
  EditInvocation editing;               // session, edit, revert, edits, stats
  TraceInvocation trace;                // trace's flags
  ExportInvocation exporting;           // export, import, export-model
  EvalInvocation eval;                  // eval's flags
  CompareInvocation compare;            // compare's flags
};

// Resets romectl's absl flags to their defaults, parses `args` (args[0] is
// the program name) into them and returns the invocation they describe; the
// result depends on `args` alone. INVALID_ARGUMENT, with a message
// for people, on an unknown command or flag, a malformed or missing value, a
// flag the command does not take, a non-repeatable flag given twice, a stray
// positional argument, or a non-positive --timeout_s. Values are otherwise
// passed through: the server validates prompts, limits and ranges.
//
// Not thread-safe: absl flags are process-wide.
absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& args);

// The help text: synopsis, the commands and each command's flags with their
// defaults.
std::string Usage();

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_ARGS_H_
