#include "client/romectl_session_commands.h"

#include <optional>

#include "client/romectl_commands.h"
#include "client/romectl_format.h"
#include "client/romectl_session_format.h"

namespace romed::client {
namespace {

int ReportError(const absl::Status& status, std::ostream& err) {
  err << FormatError(status) << "\n";
  return kExitRpcError;
}

// Prints `reply` as JSON (--json) or as `text(reply)`.
template <typename Reply, typename Text>
int Print(const Invocation& inv, const absl::StatusOr<Reply>& reply, Text text, std::ostream& out,
          std::ostream& err) {
  if (!reply.ok()) return ReportError(reply.status(), err);
  if (inv.json) {
    out << DumpJson(ProtoToJson(*reply)) << "\n";
  } else {
    out << text(*reply);
  }
  return kExitOk;
}

int RunSession(const Invocation& inv, const RomedClient& client, const CallOptions& call,
               std::ostream& out, std::ostream& err) {
  const EditInvocation& e = inv.editing;
  switch (e.action) {
    case SessionAction::kCreate:
      return Print(inv, client.CreateSession(e.create, call), FormatSession, out, err);
    case SessionAction::kGet:
      return Print(inv, client.GetSession(e.session_id, call), FormatSession, out, err);
    case SessionAction::kList:
      return Print(inv, client.ListSessions(e.list, call), FormatSessionList, out, err);
    case SessionAction::kDelete: {
      const absl::Status status = client.DeleteSession(e.session_id, call);
      if (!status.ok()) return ReportError(status, err);
      if (inv.json) {
        out << DumpJson({{"deleted", e.session_id}}) << "\n";
      } else {
        out << "deleted session " << e.session_id << "\n";
      }
      return kExitOk;
    }
    case SessionAction::kNone:
      break;
  }
  err << FormatError(absl::InternalError("no session action")) << "\n";
  return kExitUsage;
}

int RunStats(const Invocation& inv, const RomedClient& client, const CallOptions& call,
             std::ostream& out, std::ostream& err) {
  bool drew = false;
  auto on_progress = [&](const romed::v1::ComputeStatsProgress& progress) {
    if (inv.editing.progress) {
      err << "\r" << FormatProgressBar(progress) << std::flush;
      drew = true;
    }
    return true;
  };
  absl::StatusOr<romed::v1::ComputeStatsProgress> last =
      client.ComputeStats(inv.editing.stats, on_progress, call);
  if (drew) err << "\n";
  return Print(inv, last, FormatStatsResult, out, err);
}

// Edit computes missing covariance statistics inside a unary call, with no
// progress to show. When the layer is known (--layer, or the site stored
// for the model), romectl first asks for them through ComputeStats (the
// same cache Edit reads; instant when present) and draws its progress bar.
int RunEdit(const Invocation& inv, const RomedClient& client, const CallOptions& call,
            std::ostream& out, std::ostream& err) {
  const romed::v1::RomeHyperparameters& hparams = inv.editing.edit.hparams();
  if (inv.editing.progress && !hparams.identity_covariance()) {
    std::optional<int32_t> layer;
    if (hparams.has_layer()) {
      layer = hparams.layer();
    } else if (absl::StatusOr<romed::v1::ModelInfo> info = client.GetModelInfo(call);
               info.ok() && info->has_edit_site()) {
      layer = info->edit_site().layer();
    }
    if (layer.has_value()) {
      romed::v1::ComputeStatsRequest stats;
      stats.set_layer(*layer);
      bool drew = false;
      auto on_progress = [&](const romed::v1::ComputeStatsProgress& progress) {
        if (!progress.cached()) {
          err << "\r" << FormatProgressBar(progress) << std::flush;
          drew = true;
        }
        return true;
      };
      // Errors (a bad layer, a missing corpus) are left to Edit, which
      // reports them with the edit's context.
      (void)client.ComputeStats(stats, on_progress, call);
      if (drew) err << "\n";
    }
  }
  return Print(inv, client.Edit(inv.editing.edit, call), FormatEditResponse, out, err);
}

}  // namespace

bool IsEditingCommand(Command command) {
  return command == Command::kSession || command == Command::kEdit ||
         command == Command::kRevert || command == Command::kEdits || command == Command::kStats;
}

int RunEditingCommand(const Invocation& inv, const RomedClient& client, const CallOptions& call,
                      std::ostream& out, std::ostream& err) {
  switch (inv.command) {
    case Command::kSession:
      return RunSession(inv, client, call, out, err);
    case Command::kEdit:
      return RunEdit(inv, client, call, out, err);
    case Command::kRevert:
      return Print(inv, client.Revert(inv.editing.revert, call), FormatRevert, out, err);
    case Command::kEdits:
      return Print(inv, client.ListEdits(inv.editing.session_id, call), FormatEdits, out, err);
    case Command::kStats:
      return RunStats(inv, client, call, out, err);
    default:
      break;
  }
  err << FormatError(absl::InternalError("not an editing command")) << "\n";
  return kExitUsage;
}

}  // namespace romed::client
