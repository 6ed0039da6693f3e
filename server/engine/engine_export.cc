// Engine: ExportSession, ImportSession and ExportModel (issue #6). The
// contracts are in engine.h; the file format is server/session/
// session_export.h, the merge server/model/merge_deltas.h.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/engine/engine.h"
#include "server/engine/request_validation.h"
#include "server/model/merge_deltas.h"
#include "server/session/edit_codec.h"
#include "server/session/session_export.h"

namespace romed {
namespace {

namespace fs = std::filesystem;

// Written next to the checkpoint: where the merged weights came from.
constexpr char kProvenanceFile[] = "romed_export.json";

absl::Status RequireSessionId(std::string_view id) {
  if (id.empty()) {
    return absl::InvalidArgumentError(
        "session_id is required: the session to export (romectl session list shows them)");
  }
  return ValidateText("session_id", id, /*allow_empty=*/false);
}

std::vector<RankOneDelta> AllDeltas(const SessionState& session) {
  std::vector<RankOneDelta> deltas;
  for (const EditEntry& entry : session.edits) {
    deltas.insert(deltas.end(), entry.deltas.begin(), entry.deltas.end());
  }
  return deltas;
}

absl::Status RequireEdits(const SessionState& session, const char* verb) {
  if (session.num_edits() > 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("session \"", session.info.id,
                                                    "\" has no edits: nothing to ", verb,
                                                    "; make one with Edit (romectl edit)"));
}

// Checks out_dir per ExportModel's contract and creates it if absent.
absl::StatusOr<fs::path> PrepareOutDir(const ExportModelRequest& request) {
  if (request.out_dir.empty()) {
    return absl::InvalidArgumentError("out_dir is required: the directory to write");
  }
  RETURN_IF_ERROR(ValidateText("out_dir", request.out_dir, /*allow_empty=*/false));
  std::error_code error;
  fs::path dir = fs::absolute(request.out_dir, error).lexically_normal();
  if (error) return absl::InvalidArgumentError(absl::StrCat("out_dir: ", error.message()));
  if (dir.filename().empty()) dir = dir.parent_path();  // "out/" -> "out"
  if (fs::exists(dir, error)) {
    if (!request.overwrite) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir.string(), " already exists; pass overwrite (romectl export-model --overwrite) "
                        "to replace its checkpoint files, or choose a new directory"));
    }
    if (!fs::is_directory(dir, error)) {
      return absl::FailedPreconditionError(
          absl::StrCat(dir.string(), " exists and is not a directory; choose another out_dir"));
    }
    return dir;
  }
  const fs::path parent = dir.parent_path();
  if (!fs::is_directory(parent, error)) {
    return absl::NotFoundError(absl::StrCat("the parent directory ", parent.string(),
                                            " of out_dir does not exist on the server; "
                                            "create it first"));
  }
  if (!fs::create_directory(dir, error) && error) {
    return absl::UnavailableError(absl::StrCat("cannot create ", dir.string(), ": ",
                                               error.message()));
  }
  return dir;
}

// romed_export.json: the base model and the records of the merged edits.
std::string ProvenanceJson(const SessionState& session, const std::string& checksum,
                           int64_t num_deltas) {
  nlohmann::json edits = nlohmann::json::array();
  for (const EditEntry& entry : session.edits) {
    nlohmann::json record = nlohmann::json::parse(EncodeEditRecord(entry));
    record["edit_id"] = entry.edit_id;
    edits.push_back(std::move(record));
  }
  return nlohmann::json{{"base_model_checksum", checksum},
                        {"session_id", session.info.id},
                        {"num_deltas", num_deltas},
                        {"merge", "h.{layer}.mlp.c_proj.weight += u lambda^T per delta"},
                        {"edits", std::move(edits)}}
      .dump(2);
}

}  // namespace

absl::StatusOr<ExportedSession> Engine::ExportSession(std::string_view session_id) const {
  RETURN_IF_ERROR(RequireSessionId(session_id));
  ASSIGN_OR_RETURN(std::shared_ptr<const SessionState> session,
                   sessions_->Get(std::string(session_id)));
  RETURN_IF_ERROR(RequireEdits(*session, "export"));
  SessionExport data;
  data.model_checksum = checksum_;
  const Gpt2Config& config = model_->config();
  data.shape = {config.n_layer, config.n_embd, config.mlp_width()};
  data.session_id = session->info.id;
  data.session_name = session->info.name;
  data.session_labels = session->info.labels;
  data.edits = session->edits;
  ExportedSession out;
  ASSIGN_OR_RETURN(out.file, EncodeSessionExport(data));
  out.session_id = session->info.id;
  out.num_edits = session->num_edits();
  out.num_deltas = static_cast<int64_t>(AllDeltas(*session).size());
  out.model_checksum = checksum_;
  return out;
}

absl::StatusOr<ImportSessionResult> Engine::ImportSession(const ImportSessionRequest& request) {
  if (!request.session_id.empty()) {
    RETURN_IF_ERROR(ValidateText("session_id", request.session_id, /*allow_empty=*/false));
    if (!request.name.empty()) {
      return absl::InvalidArgumentError(
          "name is only for a new session: leave session_id empty to create one");
    }
  }
  RETURN_IF_ERROR(ValidateText("name", request.name, /*allow_empty=*/true));
  if (request.file.empty()) {
    return absl::InvalidArgumentError("file is empty: send the bytes ExportSession returned");
  }
  ASSIGN_OR_RETURN(SessionExport data, DecodeSessionExport(request.file));
  if (data.model_checksum != checksum_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the file's edits were made on base model ", data.model_checksum,
        ", but this server serves model ", checksum_, " (", model_dir_,
        "); import it into a romed serving the model it was exported from"));
  }
  const Gpt2Config& config = model_->config();
  if (data.shape.n_layer != config.n_layer || data.shape.n_embd != config.n_embd ||
      data.shape.mlp_width != config.mlp_width()) {
    return absl::InvalidArgumentError("the file's model_shape does not match its model checksum");
  }
  if (data.edits.empty()) return absl::InvalidArgumentError("the file holds no edits");
  const int64_t limit = options_.limits.max_edits_per_session;
  if (static_cast<int64_t>(data.edits.size()) > limit) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the file holds ", data.edits.size(), " edits; a session may hold ", limit,
        " (--max_edits_per_session); raise the limit or export fewer edits"));
  }

  ImportSessionResult result;
  result.source_session_id = data.session_id;
  for (const EditEntry& entry : data.edits) result.source_edit_ids.push_back(entry.edit_id);
  std::string id = request.session_id;
  if (id.empty()) {
    const std::string name = request.name.empty() ? data.session_name : request.name;
    ASSIGN_OR_RETURN(std::shared_ptr<const SessionState> created,
                     sessions_->Create(name, data.session_labels, request.owner));
    id = created->info.id;
    result.created = true;
  }
  absl::StatusOr<std::vector<EditEntry>> stored = sessions_->ImportEdits(id, std::move(data.edits));
  if (!stored.ok()) {
    if (result.created) (void)sessions_->Delete(id);  // leave nothing behind
    return stored.status();
  }
  result.edits = *std::move(stored);
  ASSIGN_OR_RETURN(result.session, sessions_->Get(id));
  return result;
}

absl::StatusOr<ExportModelResult> Engine::ExportModel(const ExportModelRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(RequireSessionId(request.session_id));
  ASSIGN_OR_RETURN(std::shared_ptr<const SessionState> session,
                   sessions_->Get(request.session_id));
  RETURN_IF_ERROR(RequireEdits(*session, "merge"));
  ASSIGN_OR_RETURN(ConcurrencyLimiter::Slot slot, AcquireHeavyJob());
  ASSIGN_OR_RETURN(const fs::path dir, PrepareOutDir(request));

  const std::vector<RankOneDelta> deltas = AllDeltas(*session);
  ASSIGN_OR_RETURN(Gpt2Weights merged,
                   MergeDeltas(model_->config(), model_->weights(), deltas));
  RETURN_IF_ERROR(SaveCheckpoint(dir.string(), model_->config(), merged,
                                 tokenizer_files_.vocab_json, tokenizer_files_.merges_txt));
  {
    std::ofstream provenance(dir / kProvenanceFile, std::ios::binary | std::ios::trunc);
    provenance << ProvenanceJson(*session, checksum_, static_cast<int64_t>(deltas.size()));
    if (!provenance.good()) {
      return absl::UnavailableError(
          absl::StrCat("cannot write ", (dir / kProvenanceFile).string()));
    }
  }
  ExportModelResult result;
  result.out_dir = dir.string();
  result.files = {"config.json", "model.safetensors", "vocab.json", "merges.txt",
                  kProvenanceFile};
  for (const std::string& file : result.files) {
    std::error_code error;
    const auto size = fs::file_size(dir / file, error);
    if (!error) result.bytes_written += static_cast<int64_t>(size);
  }
  result.num_edits = session->num_edits();
  result.num_deltas = static_cast<int64_t>(deltas.size());
  result.base_model_checksum = checksum_;
  result.elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace romed
