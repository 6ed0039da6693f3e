#include "client/romectl_args.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "client/romectl_compare_args.h"
#include "client/romectl_eval_args.h"
#include "client/romectl_export_args.h"
#include "client/romectl_session_args.h"
#include "client/romectl_trace_args.h"
#include "server/core/status_macros.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "romed's gRPC address, HOST:PORT");
ABSL_FLAG(bool, json, false,
          "print exactly one JSON object instead of text for people; eval also takes "
          "--json=PATH: write its JSON report to PATH");
ABSL_FLAG(double, timeout_s, 60, "deadline of each RPC, in seconds");
ABSL_FLAG(std::string, text, "", "the text to tokenize (UTF-8, may be empty)");
ABSL_FLAG(std::string, prompt, "", "the prompt (non-empty UTF-8)");
ABSL_FLAG(std::string, subject, "", "the subject, written where the prompt has \"{}\"");
ABSL_FLAG(int64_t, max_new_tokens, 0, "tokens to generate; 0 = the server's default (32)");
ABSL_FLAG(float, temperature, 0, "sampling temperature; 0 = greedy");
ABSL_FLAG(int64_t, top_k, 0, "sample from the k most likely tokens; 0 = no limit");
ABSL_FLAG(float, top_p, 0, "nucleus mass in (0, 1]; 0 = 1");
ABSL_FLAG(uint64_t, seed, 0,
          "seed of the request's random generator (eval: of the sampled generations for GE)");
ABSL_FLAG(std::vector<std::string>, stop, {},
          "stop when the text contains this; repeat the flag for several (commas are literal)");
ABSL_FLAG(bool, ignore_eos, false, "keep generating past the end-of-text token");
ABSL_FLAG(bool, stream, false, "print text as it is decoded (GenerateStream)");
ABSL_FLAG(std::string, session, "", "session id; empty = the original model");
ABSL_FLAG(std::vector<std::string>, continuation, {},
          "a continuation to score; repeat the flag for several (commas are literal)");

namespace romed::client {
namespace {

struct CommandSpec {
  absl::string_view name;
  Command command;
  absl::string_view summary;
};

const std::vector<CommandSpec>& Commands() {
  static const auto* kCommands = new std::vector<CommandSpec>{
      {"health", Command::kHealth, "the server's grpc.health.v1 status (exit 0 only if SERVING)"},
      {"info", Command::kInfo, "the loaded model, the server's limits and available RPCs"},
      {"tokenize", Command::kTokenize, "text -> token ids and vocabulary strings"},
      {"generate", Command::kGenerate, "continue a prompt"},
      {"score", Command::kScore, "log-probabilities of continuations after a prompt"},
      {"session", Command::kSession, "session create|get|list|delete [ID]: edit stacks"},
      {"edit", Command::kEdit, "rewrite a fact in a session (ROME)"},
      {"revert", Command::kRevert, "pop edits off a session (--n=N, default 1, or --to=EDIT_ID)"},
      {"edits", Command::kEdits, "a session's edit stack"},
      {"stats", Command::kStats, "covariance statistics at a layer (progress on stderr)"},
      {"trace", Command::kTrace,
       "causal trace of one prompt (heatmaps), or averaged over facts (--facts)"},
      {"export", Command::kExport, "a session's edits as a safetensors file (--out=FILE)"},
      {"import", Command::kImport, "a file from 'export' into a new or empty session"},
      {"export-model", Command::kExportModel,
       "the server writes an HF GPT-2 checkpoint with a session's edits merged (--out=DIR)"},
      {"eval", Command::kEval,
       "CounterFact evaluation: ES/PS/NS, S, GE before and after ROME edits (progress on stderr)"},
      {"compare", Command::kCompare,
       "A/B: prompts on two variants (--a, --b: sessions; empty = original) side by side"},
      {"help", Command::kHelp, "print this text"},
  };
  return *kCommands;
}

const std::vector<FlagSpec>& Flags() {
  static auto* kFlags = new std::vector<FlagSpec>{
      {"server", "HOST:PORT", false, {}},
      {"json", "", false, {}},
      {"timeout_s", "SECONDS", false, {}},
      {"text", "TEXT", false, {Command::kTokenize}},
      {"prompt", "TEXT", false,
       {Command::kGenerate, Command::kScore, Command::kEdit, Command::kTrace}},
      {"subject", "TEXT", false, {Command::kEdit, Command::kTrace}},
      {"max_new_tokens", "N", false, {Command::kGenerate}},
      {"temperature", "T", false, {Command::kGenerate}},
      {"top_k", "K", false, {Command::kGenerate}},
      {"top_p", "P", false, {Command::kGenerate}},
      {"seed", "N", false, {Command::kGenerate, Command::kTrace}},
      {"stop", "TEXT", true, {Command::kGenerate}},
      {"ignore_eos", "", false, {Command::kGenerate}},
      {"stream", "", false, {Command::kGenerate}},
      {"session", "ID", false,
       {Command::kGenerate, Command::kScore, Command::kSession, Command::kEdit, Command::kRevert,
        Command::kEdits, Command::kTrace}},
      {"continuation", "TEXT", true, {Command::kScore}},
  };
  static const bool kWithSessionFlags = [] {
    for (const FlagSpec& spec : SessionFlagSpecs()) kFlags->push_back(spec);
    for (const FlagSpec& spec : TraceFlagSpecs()) kFlags->push_back(spec);
    for (const FlagSpec& spec : ExportFlagSpecs()) kFlags->push_back(spec);
    for (const FlagSpec& spec : EvalFlagSpecs()) kFlags->push_back(spec);
    for (const FlagSpec& spec : CompareFlagSpecs()) kFlags->push_back(spec);
    return true;
  }();
  (void)kWithSessionFlags;
  return *kFlags;
}

const FlagSpec* FindFlagSpec(absl::string_view name) {
  for (const FlagSpec& spec : Flags()) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

bool IsBoolFlag(const FlagSpec& spec) {
  return absl::FindCommandLineFlag(spec.name)->IsOfType<bool>();
}

// argv after the walk: what each flag occurrence and positional argument said.
struct ParsedArgs {
  std::vector<std::string> positional;
  std::set<absl::string_view> seen;  // flag names given at least once
  std::map<absl::string_view, std::vector<std::string>> repeated;
  bool help = false;  // --help / -h
  std::string json_path;  // --json=PATH (eval)
};

// One flag occurrence: "--name=value" -> {spec, "value"}; "--name" with no
// value leaves `value` unset (the caller takes the next argument).
struct FlagArg {
  const FlagSpec* spec = nullptr;
  std::optional<std::string> value;
};

absl::StatusOr<FlagArg> SplitFlagArg(absl::string_view arg) {
  absl::string_view body = arg.substr(absl::StartsWith(arg, "--") ? 2 : 1);
  FlagArg out;
  std::string name(body);
  if (auto eq = body.find('='); eq != absl::string_view::npos) {
    name = std::string(body.substr(0, eq));
    out.value = std::string(body.substr(eq + 1));
  }
  name = absl::StrReplaceAll(name, {{"-", "_"}});
  out.spec = FindFlagSpec(name);
  if (out.spec == nullptr && !out.value && absl::StartsWith(name, "no")) {
    const FlagSpec* negated = FindFlagSpec(absl::string_view(name).substr(2));
    if (negated != nullptr && IsBoolFlag(*negated)) {
      out.spec = negated;
      out.value = "false";
    }
  }
  if (out.spec == nullptr) return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg));
  return out;
}

// Whether `name` is repeatable for some command (for `command` only, when
// given). A flag repeatable for one command (compare's --prompt) collects
// every occurrence while argv is walked; ApplySingleValues then takes the one
// value for the commands where it is not repeatable.
bool IsRepeatable(absl::string_view name, std::optional<Command> command = std::nullopt) {
  for (const FlagSpec& spec : Flags()) {
    if (spec.name != name || !spec.repeatable) continue;
    if (!command || spec.commands.empty() || spec.commands.count(*command) > 0) return true;
  }
  return false;
}

absl::Status ApplyFlag(const FlagSpec& spec, const std::string& value, ParsedArgs* parsed) {
  const bool seen_before = !parsed->seen.insert(spec.name).second;
  if (IsRepeatable(spec.name)) {
    parsed->repeated[spec.name].push_back(value);
    return absl::OkStatus();
  }
  if (seen_before) {
    return absl::InvalidArgumentError(absl::StrCat("--", spec.name, " given more than once"));
  }
  std::string error;
  if (spec.name == "json" && !value.empty() &&
      !absl::FindCommandLineFlag(spec.name)->ParseFrom(value, &error)) {
    parsed->json_path = value;  // eval's --json=PATH
    return absl::OkStatus();
  }
  if (!absl::FindCommandLineFlag(spec.name)->ParseFrom(value, &error)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid value for --", spec.name, ": '", value, "': ", error));
  }
  return absl::OkStatus();
}

// Puts every romectl flag back to its default, so a parse depends on its
// arguments alone.
void ResetFlags() {
  for (const FlagSpec& spec : Flags()) {
    absl::CommandLineFlag& flag = *absl::FindCommandLineFlag(spec.name);
    std::string error;
    flag.ParseFrom(flag.DefaultValue(), &error);
  }
}

absl::StatusOr<ParsedArgs> WalkArgs(const std::vector<std::string>& args) {
  ParsedArgs parsed;
  bool flags_ended = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_ended || arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_ended = true;
      continue;
    }
    if (arg == "--help" || arg == "-help" || arg == "-h") {
      parsed.help = true;
      continue;
    }
    ASSIGN_OR_RETURN(FlagArg flag, SplitFlagArg(arg));
    if (!flag.value) {
      if (IsBoolFlag(*flag.spec)) {
        flag.value = "true";
      } else if (i + 1 < args.size()) {
        flag.value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("--", flag.spec->name, " needs a value"));
      }
    }
    RETURN_IF_ERROR(ApplyFlag(*flag.spec, *flag.value, &parsed));
  }
  return parsed;
}

absl::StatusOr<Command> FindCommand(absl::string_view name) {
  for (const CommandSpec& spec : Commands()) {
    if (spec.name == name) return spec.command;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown command '", name, "'"));
}

absl::string_view CommandName(Command command) {
  for (const CommandSpec& spec : Commands()) {
    if (spec.command == command) return spec.name;
  }
  return "?";
}

// A flag may be listed more than once (e.g. --n by revert and by trace);
// it belongs to the union of its entries' commands.
bool FlagBelongsTo(absl::string_view name, Command command) {
  for (const FlagSpec& spec : Flags()) {
    if (spec.name == name && (spec.commands.empty() || spec.commands.count(command) > 0)) {
      return true;
    }
  }
  return false;
}

absl::Status CheckFlagsBelongTo(Command command, const ParsedArgs& parsed) {
  for (absl::string_view name : parsed.seen) {
    if (!FlagBelongsTo(name, command)) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", CommandName(command), "' does not take --", name));
    }
  }
  return absl::OkStatus();
}

// Flags collected as repeatable but single-valued for `command`: at most one
// occurrence, parsed into its absl flag.
absl::Status ApplySingleValues(Command command, const ParsedArgs& parsed) {
  for (const auto& [name, values] : parsed.repeated) {
    if (IsRepeatable(name, command)) continue;
    if (values.size() > 1) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " given more than once"));
    }
    std::string error;
    if (!absl::FindCommandLineFlag(name)->ParseFrom(values.front(), &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid value for --", name, ": '", values.front(), "': ", error));
    }
  }
  return absl::OkStatus();
}

// Reads the flags (now parsed) into the requests the command sends.
absl::StatusOr<Invocation> BuildInvocation(Command command, const ParsedArgs& parsed) {
  auto repeated = [&](absl::string_view name) {
    auto it = parsed.repeated.find(name);
    return it == parsed.repeated.end() ? std::vector<std::string>() : it->second;
  };
  absl::SetFlag(&FLAGS_stop, repeated("stop"));
  absl::SetFlag(&FLAGS_continuation, repeated("continuation"));

  Invocation inv;
  inv.command = command;
  inv.server = absl::GetFlag(FLAGS_server);
  inv.json = absl::GetFlag(FLAGS_json);
  inv.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_s));
  inv.text = absl::GetFlag(FLAGS_text);
  inv.stream = absl::GetFlag(FLAGS_stream);

  romed::v1::GenerateRequest& generate = inv.generate;
  generate.set_prompt(absl::GetFlag(FLAGS_prompt));
  generate.set_max_new_tokens(absl::GetFlag(FLAGS_max_new_tokens));
  generate.mutable_sampling()->set_temperature(absl::GetFlag(FLAGS_temperature));
  generate.mutable_sampling()->set_top_k(absl::GetFlag(FLAGS_top_k));
  generate.mutable_sampling()->set_top_p(absl::GetFlag(FLAGS_top_p));
  generate.mutable_sampling()->set_seed(absl::GetFlag(FLAGS_seed));
  for (const std::string& stop : absl::GetFlag(FLAGS_stop)) generate.add_stop(stop);
  generate.set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));
  generate.set_session_id(absl::GetFlag(FLAGS_session));

  inv.score.set_prompt(absl::GetFlag(FLAGS_prompt));
  for (const std::string& c : absl::GetFlag(FLAGS_continuation)) inv.score.add_continuations(c);
  inv.score.set_session_id(absl::GetFlag(FLAGS_session));
  ASSIGN_OR_RETURN(inv.editing,
                   BuildEditInvocation(command, parsed.positional, parsed.seen, parsed.repeated));
  if (command == Command::kTrace) {
    ASSIGN_OR_RETURN(inv.trace, BuildTraceInvocation(parsed.seen));
  }
  if (IsExportCommand(command)) {
    ASSIGN_OR_RETURN(inv.exporting, BuildExportInvocation(command, parsed.seen));
  }
  if (command == Command::kCompare) {
    ASSIGN_OR_RETURN(inv.compare, BuildCompareInvocation(parsed.seen, parsed.repeated));
  }
  if (command == Command::kEval) {
    ASSIGN_OR_RETURN(inv.eval, BuildEvalInvocation(parsed.seen, parsed.json_path));
  } else if (!parsed.json_path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid value for --json: '", parsed.json_path,
        "' (--json is true or false; only eval takes --json=PATH)"));
  }
  return inv;
}

}  // namespace

absl::StatusOr<Invocation> ParseInvocation(const std::vector<std::string>& args) {
  ResetFlags();
  ASSIGN_OR_RETURN(const ParsedArgs parsed, WalkArgs(args));
  if (parsed.help || parsed.positional.empty()) {
    Invocation help;
    help.missing_command = !parsed.help;
    return help;
  }
  ASSIGN_OR_RETURN(const Command command, FindCommand(parsed.positional[0]));
  const size_t allowed = 1 + ExtraPositionalArguments(command);
  if (parsed.positional.size() > allowed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument '", parsed.positional[allowed], "' (values need --flag=)"));
  }
  RETURN_IF_ERROR(CheckFlagsBelongTo(command, parsed));
  RETURN_IF_ERROR(ApplySingleValues(command, parsed));
  if (!(absl::GetFlag(FLAGS_timeout_s) > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--timeout_s must be > 0, got ", absl::GetFlag(FLAGS_timeout_s)));
  }
  return BuildInvocation(command, parsed);
}

std::string Usage() {
  std::string out =
      "usage: romectl [--server=HOST:PORT] [--json] [--timeout_s=SECONDS] COMMAND [flags]\n\n"
      "commands:\n";
  for (const CommandSpec& command : Commands()) {
    absl::StrAppend(&out, "  ", command.name, std::string(command.name.size() < 10 ? 10 - command.name.size() : 1, ' '),
                    command.summary, "\n");
    for (const FlagSpec& flag : Flags()) {
      if (flag.commands.count(command.command) == 0) continue;
      absl::StrAppend(&out, "      --", flag.name, flag.value_hint.empty() ? "" : "=",
                      flag.value_hint, flag.repeatable ? " (repeatable)" : "", "\n");
    }
  }
  absl::StrAppend(&out, "\nflags:\n");
  std::set<absl::string_view> listed;
  for (const FlagSpec& flag : Flags()) {
    if (!listed.insert(flag.name).second) continue;  // listed by several commands
    const absl::CommandLineFlag& absl_flag = *absl::FindCommandLineFlag(flag.name);
    std::string default_value = absl_flag.DefaultValue();
    absl::StrAppend(&out, "  --", flag.name, ": ", absl_flag.Help(),
                    default_value.empty() ? "" : absl::StrCat(" (default ", default_value, ")"),
                    "\n");
  }
  absl::StrAppend(&out,
                  "\nExit status: 0 on success, 1 when the server answers an error (or is not\n"
                  "SERVING), 2 on a usage error. Errors print 'error: CODE: message' to stderr.\n");
  return out;
}

}  // namespace romed::client
