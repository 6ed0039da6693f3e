#include "client/romectl_session_args.h"

#include <cstdint>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"

// Shared with generate/score (declared in romectl_args.cc).
ABSL_DECLARE_FLAG(std::string, session);
ABSL_DECLARE_FLAG(std::string, prompt);
ABSL_DECLARE_FLAG(std::string, subject);

ABSL_FLAG(std::string, name, "", "session create: a name for people (<= 128 bytes)");
ABSL_FLAG(std::vector<std::string>, label, {},
          "session create: a label KEY=VALUE; repeat the flag for several");
ABSL_FLAG(int32_t, page_size, 0, "session list: sessions per page (0 = 100)");
ABSL_FLAG(std::string, page_token, "", "session list: next_page_token of an earlier page");
ABSL_FLAG(std::string, target, "", "edit: the new object (target_new), e.g. Paris");
ABSL_FLAG(std::string, target_true, "", "edit: the current object, for reporting");
ABSL_FLAG(int32_t, layer, -1,
          "edit: the layer to edit (unset = the model's recommended site); stats: the layer");
ABSL_FLAG(std::string, fact_token, "",
          "edit: where the key is read: subject_last, subject_first or last (unset = the "
          "recommended site)");
ABSL_FLAG(int32_t, v_num_grad_steps, 20, "edit: value-optimisation steps");
ABSL_FLAG(float, v_lr, 0.5, "edit: value-optimisation learning rate");
ABSL_FLAG(float, v_weight_decay, 0.5, "edit: weight decay of the value delta");
ABSL_FLAG(float, kl_factor, 0.0625, "edit: weight of the essence KL term");
ABSL_FLAG(float, clamp_norm_factor, 4, "edit: clamp of ||delta|| relative to ||v_init||");
ABSL_FLAG(bool, original_key_form, false,
          "edit: the released code's key in the update instead of r-ROME's consistent key");
ABSL_FLAG(bool, identity_covariance, false, "edit: C = I instead of covariance statistics");
ABSL_FLAG(int64_t, n, 1,
          "revert: how many edits to pop off the top; trace --facts: facts to trace; eval: "
          "evaluate the first N good records (unset = all)");
ABSL_FLAG(int64_t, to, 0, "revert: keep edits up to this id, remove the later ones (0 = all)");
ABSL_FLAG(std::string, corpus, "",
          "stats: text file or directory on the server (empty = the model's stats corpus)");
ABSL_FLAG(int64_t, max_tokens, 0, "stats: use the corpus's first N tokens (0 = all)");
ABSL_FLAG(bool, recompute, false, "stats: ignore cached statistics");
ABSL_FLAG(bool, progress, true,
          "stats, edit: draw a progress bar on stderr while statistics are computed "
          "(--noprogress to hide)");

namespace romed::client {
namespace {

bool Given(const std::set<absl::string_view>& seen, absl::string_view name) {
  return seen.count(name) > 0;
}

absl::Status Required(const std::set<absl::string_view>& seen, absl::string_view name,
                      absl::string_view command) {
  if (Given(seen, name)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("'", command, "' needs --", name));
}

absl::StatusOr<romed::v1::FactToken> ParseFactTokenFlag(const std::string& name) {
  if (name == "subject_last") return romed::v1::FACT_TOKEN_SUBJECT_LAST;
  if (name == "subject_first") return romed::v1::FACT_TOKEN_SUBJECT_FIRST;
  if (name == "last") return romed::v1::FACT_TOKEN_LAST;
  return absl::InvalidArgumentError(absl::StrCat(
      "invalid value for --fact_token: '", name, "' (expected subject_last, subject_first or last)"));
}

absl::StatusOr<EditInvocation> BuildSession(const std::vector<std::string>& positional,
                                            const std::set<absl::string_view>& seen,
                                            const std::vector<std::string>& labels) {
  EditInvocation inv;
  if (positional.size() < 2) {
    return absl::InvalidArgumentError(
        "'session' needs an action: create, get, list or delete");
  }
  const std::string& action = positional[1];
  std::string id = absl::GetFlag(FLAGS_session);
  if (positional.size() > 2) {
    if (!id.empty()) return absl::InvalidArgumentError("give the session id once (ID or --session)");
    id = positional[2];
  }
  const bool takes_id = action == "get" || action == "delete";
  if (!takes_id && !id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("'session ", action, "' takes no session id"));
  }
  const bool creates = action == "create", lists = action == "list";
  if (!creates && (Given(seen, "name") || Given(seen, "label"))) {
    return absl::InvalidArgumentError("--name and --label are for 'session create'");
  }
  if (!lists && (Given(seen, "page_size") || Given(seen, "page_token"))) {
    return absl::InvalidArgumentError("--page_size and --page_token are for 'session list'");
  }
  if (creates) {
    inv.action = SessionAction::kCreate;
    inv.create.set_name(absl::GetFlag(FLAGS_name));
    for (const std::string& label : labels) {
      const size_t eq = label.find('=');
      if (eq == std::string::npos || eq == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("invalid value for --label: '", label, "' (expected KEY=VALUE)"));
      }
      (*inv.create.mutable_labels())[label.substr(0, eq)] = label.substr(eq + 1);
    }
  } else if (lists) {
    inv.action = SessionAction::kList;
    inv.list.set_page_size(absl::GetFlag(FLAGS_page_size));
    inv.list.set_page_token(absl::GetFlag(FLAGS_page_token));
  } else if (takes_id) {
    inv.action = action == "get" ? SessionAction::kGet : SessionAction::kDelete;
    if (id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'session ", action, "' needs a session id (ID or --session=ID)"));
    }
    inv.session_id = id;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown session action '", action, "' (expected create, get, list or delete)"));
  }
  return inv;
}

absl::StatusOr<EditInvocation> BuildEdit(const std::set<absl::string_view>& seen) {
  for (absl::string_view flag : {"session", "prompt", "subject", "target"}) {
    RETURN_IF_ERROR(Required(seen, flag, "edit"));
  }
  EditInvocation inv;
  romed::v1::EditRequest& edit = inv.edit;
  edit.set_session_id(absl::GetFlag(FLAGS_session));
  romed::v1::Rewrite* rewrite = edit.add_rewrites();
  rewrite->set_prompt(absl::GetFlag(FLAGS_prompt));
  rewrite->set_subject(absl::GetFlag(FLAGS_subject));
  rewrite->set_target_new(absl::GetFlag(FLAGS_target));
  rewrite->set_target_true(absl::GetFlag(FLAGS_target_true));
  ASSIGN_OR_RETURN(*edit.mutable_hparams(), BuildRomeHyperparameters(seen));
  inv.progress = absl::GetFlag(FLAGS_progress);
  return inv;
}

absl::StatusOr<EditInvocation> BuildRevert(const std::set<absl::string_view>& seen) {
  RETURN_IF_ERROR(Required(seen, "session", "revert"));
  if (Given(seen, "n") && Given(seen, "to")) {
    return absl::InvalidArgumentError("give either --n (pop N edits) or --to (keep up to an id)");
  }
  EditInvocation inv;
  inv.revert.set_session_id(absl::GetFlag(FLAGS_session));
  if (Given(seen, "to")) {
    inv.revert.set_keep_up_to_id(absl::GetFlag(FLAGS_to));
  } else {
    inv.revert.set_pop(absl::GetFlag(FLAGS_n));
  }
  return inv;
}

}  // namespace

absl::StatusOr<romed::v1::RomeHyperparameters> BuildRomeHyperparameters(
    const std::set<absl::string_view>& seen) {
  romed::v1::RomeHyperparameters h;
  if (Given(seen, "layer")) h.set_layer(absl::GetFlag(FLAGS_layer));
  if (Given(seen, "fact_token")) {
    ASSIGN_OR_RETURN(romed::v1::FactToken token, ParseFactTokenFlag(absl::GetFlag(FLAGS_fact_token)));
    h.set_fact_token(token);
  }
  // Only the flags given are sent: the server fills in the model's defaults.
  if (Given(seen, "v_num_grad_steps")) h.set_v_num_grad_steps(absl::GetFlag(FLAGS_v_num_grad_steps));
  if (Given(seen, "v_lr")) h.set_v_lr(absl::GetFlag(FLAGS_v_lr));
  if (Given(seen, "v_weight_decay")) h.set_v_weight_decay(absl::GetFlag(FLAGS_v_weight_decay));
  if (Given(seen, "kl_factor")) h.set_kl_factor(absl::GetFlag(FLAGS_kl_factor));
  if (Given(seen, "clamp_norm_factor")) {
    h.set_clamp_norm_factor(absl::GetFlag(FLAGS_clamp_norm_factor));
  }
  h.set_original_key_form(absl::GetFlag(FLAGS_original_key_form));
  h.set_identity_covariance(absl::GetFlag(FLAGS_identity_covariance));
  return h;
}

const std::vector<FlagSpec>& SessionFlagSpecs() {
  static const auto* kFlags = new std::vector<FlagSpec>{
      {"name", "NAME", false, {Command::kSession}},
      {"label", "KEY=VALUE", true, {Command::kSession}},
      {"page_size", "N", false, {Command::kSession}},
      {"page_token", "TOKEN", false, {Command::kSession}},
      {"target", "TEXT", false, {Command::kEdit}},
      {"target_true", "TEXT", false, {Command::kEdit}},
      {"layer", "L", false, {Command::kEdit, Command::kStats}},
      {"fact_token", "subject_last|subject_first|last", false, {Command::kEdit}},
      {"v_num_grad_steps", "N", false, {Command::kEdit}},
      {"v_lr", "X", false, {Command::kEdit}},
      {"v_weight_decay", "X", false, {Command::kEdit}},
      {"kl_factor", "X", false, {Command::kEdit}},
      {"clamp_norm_factor", "X", false, {Command::kEdit}},
      {"original_key_form", "", false, {Command::kEdit}},
      {"identity_covariance", "", false, {Command::kEdit}},
      {"n", "N", false, {Command::kRevert}},
      {"to", "EDIT_ID", false, {Command::kRevert}},
      {"corpus", "PATH", false, {Command::kStats}},
      {"max_tokens", "N", false, {Command::kStats}},
      {"recompute", "", false, {Command::kStats}},
      {"progress", "", false, {Command::kStats, Command::kEdit}},
  };
  return *kFlags;
}

size_t ExtraPositionalArguments(Command command) { return command == Command::kSession ? 2 : 0; }

absl::StatusOr<EditInvocation> BuildEditInvocation(
    Command command, const std::vector<std::string>& positional,
    const std::set<absl::string_view>& seen,
    const std::map<absl::string_view, std::vector<std::string>>& repeated) {
  switch (command) {
    case Command::kSession: {
      auto labels = repeated.find("label");
      return BuildSession(positional, seen,
                          labels == repeated.end() ? std::vector<std::string>() : labels->second);
    }
    case Command::kEdit:
      return BuildEdit(seen);
    case Command::kRevert:
      return BuildRevert(seen);
    case Command::kEdits: {
      RETURN_IF_ERROR(Required(seen, "session", "edits"));
      EditInvocation inv;
      inv.session_id = absl::GetFlag(FLAGS_session);
      return inv;
    }
    case Command::kStats: {
      RETURN_IF_ERROR(Required(seen, "layer", "stats"));
      EditInvocation inv;
      inv.stats.set_layer(absl::GetFlag(FLAGS_layer));
      inv.stats.set_corpus_path(absl::GetFlag(FLAGS_corpus));
      inv.stats.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
      inv.stats.set_recompute(absl::GetFlag(FLAGS_recompute));
      inv.progress = absl::GetFlag(FLAGS_progress);
      return inv;
    }
    default:
      return EditInvocation();
  }
}

}  // namespace romed::client
