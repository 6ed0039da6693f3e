#include "client/romectl_commands.h"

#include <memory>

#include "client/romectl_compare.h"
#include "client/romectl_eval.h"
#include "client/romectl_export.h"
#include "client/romectl_format.h"
#include "client/romectl_session_commands.h"
#include "client/romectl_trace.h"

namespace romed::client {
namespace {

int ReportError(const absl::Status& status, std::ostream& err) {
  err << FormatError(status) << "\n";
  return kExitRpcError;
}

void PrintJson(const nlohmann::json& json, std::ostream& out) { out << DumpJson(json) << "\n"; }

int RunHealth(const Invocation& inv, const RomedClient& client, const CallOptions& call,
              std::ostream& out, std::ostream& err) {
  absl::StatusOr<ServingStatus> status = client.CheckHealth("", call);
  if (!status.ok()) return ReportError(status.status(), err);
  if (inv.json) {
    PrintJson(HealthToJson(*status), out);
  } else {
    out << ServingStatusName(*status) << "\n";
  }
  return *status == ServingStatus::kServing ? kExitOk : kExitRpcError;
}

int RunInfo(const Invocation& inv, const RomedClient& client, const CallOptions& call,
            std::ostream& out, std::ostream& err) {
  absl::StatusOr<romed::v1::ModelInfo> info = client.GetModelInfo(call);
  if (!info.ok()) return ReportError(info.status(), err);
  if (inv.json) {
    PrintJson(ModelInfoToJson(*info), out);
  } else {
    out << FormatModelInfo(*info);
    if (info->has_edit_site()) out << FormatStoredEditSite(info->edit_site());
  }
  return kExitOk;
}

int RunTokenize(const Invocation& inv, const RomedClient& client, const CallOptions& call,
                std::ostream& out, std::ostream& err) {
  absl::StatusOr<romed::v1::TokenizeResponse> tokens = client.Tokenize(inv.text, call);
  if (!tokens.ok()) return ReportError(tokens.status(), err);
  if (inv.json) {
    PrintJson(TokenizeToJson(*tokens), out);
  } else {
    out << FormatTokens(*tokens);
  }
  return kExitOk;
}

// Without --json, --stream prints each piece the moment it arrives.
int RunGenerate(const Invocation& inv, const RomedClient& client, const CallOptions& call,
                std::ostream& out, std::ostream& err) {
  absl::StatusOr<romed::v1::GenerateResponse> result;
  if (inv.stream) {
    auto print_piece = [&](const romed::v1::GenerateStreamResponse& piece) {
      if (!inv.json) out << piece.text() << std::flush;
      return true;
    };
    result = client.GenerateStream(inv.generate, print_piece, call);
    if (!inv.json) out << "\n";
  } else {
    result = client.Generate(inv.generate, call);
  }
  if (!result.ok()) return ReportError(result.status(), err);
  if (inv.json) {
    PrintJson(GenerateToJson(*result), out);
  } else if (!inv.stream) {
    out << result->text() << "\n";
  }
  return kExitOk;
}

int RunScore(const Invocation& inv, const RomedClient& client, const CallOptions& call,
             std::ostream& out, std::ostream& err) {
  absl::StatusOr<romed::v1::ScoreResponse> scores = client.Score(inv.score, call);
  if (!scores.ok()) return ReportError(scores.status(), err);
  if (inv.json) {
    PrintJson(ScoreToJson(*scores), out);
  } else {
    out << FormatScores(*scores);
  }
  return kExitOk;
}

}  // namespace

int RunCommand(const Invocation& inv, const RomedClient& client, std::ostream& out,
               std::ostream& err) {
  CallOptions call;
  call.timeout = inv.timeout;
  switch (inv.command) {
    case Command::kHealth:
      return RunHealth(inv, client, call, out, err);
    case Command::kInfo:
      return RunInfo(inv, client, call, out, err);
    case Command::kTokenize:
      return RunTokenize(inv, client, call, out, err);
    case Command::kGenerate:
      return RunGenerate(inv, client, call, out, err);
    case Command::kScore:
      return RunScore(inv, client, call, out, err);
    case Command::kTrace:
      return RunTrace(inv, client, call, out, err);
    case Command::kEval:
      return RunEval(inv, client, call, out, err);
    case Command::kCompare:
      return RunCompare(inv, client, call, out, err);
    case Command::kHelp:
      break;
    case Command::kExport:
    case Command::kImport:
    case Command::kExportModel:
      return RunExportCommand(inv, client, call, out, err);
    default:
      if (IsEditingCommand(inv.command)) return RunEditingCommand(inv, client, call, out, err);
      break;
  }
  err << FormatError(absl::InternalError("RunCommand called for 'help'")) << "\n";
  return kExitUsage;
}

int RomectlMain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  absl::StatusOr<Invocation> inv = ParseInvocation(args);
  if (!inv.ok()) {
    err << FormatError(inv.status()) << "\n(run 'romectl help' for usage)\n";
    return kExitUsage;
  }
  if (inv->command == Command::kHelp) {
    (inv->missing_command ? err : out) << Usage();
    return inv->missing_command ? kExitUsage : kExitOk;
  }
  RomedClientOptions options;
  options.target = inv->server;
  options.default_timeout = inv->timeout;
  absl::StatusOr<std::unique_ptr<RomedClient>> client = RomedClient::Connect(options);
  if (!client.ok()) {
    err << FormatError(client.status()) << "\n";
    return kExitUsage;
  }
  return RunCommand(*inv, **client, out, err);
}

}  // namespace romed::client
