#include "client/romectl_export.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/romectl_commands.h"
#include "client/romectl_format.h"
#include "client/romectl_session_format.h"

namespace romed::client {
namespace {

namespace fs = std::filesystem;

int ReportError(const absl::Status& status, std::ostream& err) {
  err << FormatError(status) << "\n";
  return kExitRpcError;
}

absl::StatusOr<std::string> ReadLocalFile(const std::string& path) {
  std::error_code error;
  if (!fs::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file (give --file=FILE written by "
                                            "'romectl export')"));
  }
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::UnavailableError(absl::StrCat(path, ": cannot read"));
  return bytes;
}

// Writes `bytes` to `path` through a temporary file and a rename.
absl::Status WriteLocalFile(const std::string& path, const std::string& bytes) {
  const std::string temp = absl::StrCat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.good()) {
      std::remove(temp.c_str());
      return absl::UnavailableError(absl::StrCat(path, ": cannot write"));
    }
  }
  std::error_code error;
  fs::rename(temp, path, error);
  if (error) {
    std::remove(temp.c_str());
    return absl::UnavailableError(absl::StrCat(path, ": ", error.message()));
  }
  return absl::OkStatus();
}

int RunExport(const Invocation& inv, const RomedClient& client, const CallOptions& call,
              std::ostream& out, std::ostream& err) {
  const ExportInvocation& e = inv.exporting;
  std::error_code error;
  if (fs::exists(e.out, error) && !e.overwrite) {
    return ReportError(absl::FailedPreconditionError(absl::StrCat(
                           e.out, " already exists; pass --overwrite to replace it")),
                       err);
  }
  absl::StatusOr<romed::v1::ExportSessionResponse> reply = client.ExportSession(e.session_id, call);
  if (!reply.ok()) return ReportError(reply.status(), err);
  if (absl::Status written = WriteLocalFile(e.out, reply->file()); !written.ok()) {
    return ReportError(written, err);
  }
  if (inv.json) {
    out << DumpJson({{"session_id", reply->session_id()},
                     {"file", e.out},
                     {"bytes", reply->file().size()},
                     {"num_edits", reply->num_edits()},
                     {"num_deltas", reply->num_deltas()},
                     {"model_checksum", reply->model_checksum()}})
        << "\n";
  } else {
    out << "exported session " << reply->session_id() << ": " << reply->num_edits() << " edits, "
        << reply->num_deltas() << " deltas, " << reply->file().size() << " bytes -> " << e.out
        << "\nbase model " << reply->model_checksum() << "\n";
  }
  return kExitOk;
}

int RunImport(const Invocation& inv, const RomedClient& client, const CallOptions& call,
              std::ostream& out, std::ostream& err) {
  const ExportInvocation& e = inv.exporting;
  absl::StatusOr<std::string> bytes = ReadLocalFile(e.file);
  if (!bytes.ok()) return ReportError(bytes.status(), err);
  romed::v1::ImportSessionRequest request = e.import;
  request.set_file(*std::move(bytes));
  absl::StatusOr<romed::v1::ImportSessionResponse> reply = client.ImportSession(request, call);
  if (!reply.ok()) return ReportError(reply.status(), err);
  if (inv.json) {
    nlohmann::json json = ProtoToJson(*reply);
    out << DumpJson(json) << "\n";
    return kExitOk;
  }
  std::vector<std::string> ids;
  for (int i = 0; i < reply->edits_size(); ++i) {
    ids.push_back(absl::StrCat(reply->source_edit_ids(i), "->", reply->edits(i).edit_id()));
  }
  out << "imported " << reply->edits_size() << " edits of session " << reply->source_session_id()
      << " into " << (reply->created() ? "new" : "existing") << " session "
      << reply->session().id() << " (edit ids " << absl::StrJoin(ids, ", ") << ")\n"
      << FormatSession(reply->session());
  return kExitOk;
}

int RunExportModel(const Invocation& inv, const RomedClient& client, const CallOptions& call,
                   std::ostream& out, std::ostream& err) {
  absl::StatusOr<romed::v1::ExportModelResponse> reply =
      client.ExportModel(inv.exporting.export_model, call);
  if (!reply.ok()) return ReportError(reply.status(), err);
  if (inv.json) {
    out << DumpJson(ProtoToJson(*reply)) << "\n";
    return kExitOk;
  }
  out << "wrote " << reply->out_dir() << " (" << absl::StrJoin(reply->files(), ", ") << "; "
      << reply->bytes_written() << " bytes, " << reply->elapsed_s() << " s)\n"
      << reply->num_deltas() << " deltas of " << reply->num_edits()
      << " edits merged into base model " << reply->base_model_checksum()
      << "\nserve it: romed --model=" << reply->out_dir() << "\n";
  return kExitOk;
}

}  // namespace

int RunExportCommand(const Invocation& inv, const RomedClient& client, const CallOptions& call,
                     std::ostream& out, std::ostream& err) {
  switch (inv.command) {
    case Command::kExport:
      return RunExport(inv, client, call, out, err);
    case Command::kImport:
      return RunImport(inv, client, call, out, err);
    case Command::kExportModel:
      return RunExportModel(inv, client, call, out, err);
    default:
      break;
  }
  err << FormatError(absl::InternalError("not an export command")) << "\n";
  return kExitUsage;
}

}  // namespace romed::client
