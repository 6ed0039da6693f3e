#include "client/romectl_export_args.h"

#include <filesystem>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"

// Shared with other commands (declared in romectl_args.cc, romectl_session_args.cc).
ABSL_DECLARE_FLAG(std::string, session);
ABSL_DECLARE_FLAG(std::string, name);

ABSL_FLAG(std::string, out, "",
          "export: the file to write; export-model: the directory the server writes");
ABSL_FLAG(bool, overwrite, false, "export, export-model: replace a file or directory that exists");
ABSL_FLAG(std::string, file, "", "import: a file written by 'romectl export'");

namespace romed::client {
namespace {

absl::Status Require(const std::set<absl::string_view>& seen, absl::string_view flag,
                     absl::string_view command) {
  if (seen.count(flag) > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("'", command, "' needs --", flag));
}

}  // namespace

const std::vector<FlagSpec>& ExportFlagSpecs() {
  static const auto* kSpecs = new std::vector<FlagSpec>{
      {"session", "ID", false, {Command::kExport, Command::kImport, Command::kExportModel}},
      {"out", "PATH", false, {Command::kExport, Command::kExportModel}},
      {"overwrite", "", false, {Command::kExport, Command::kExportModel}},
      {"file", "FILE", false, {Command::kImport}},
      {"name", "NAME", false, {Command::kImport}},
  };
  return *kSpecs;
}

bool IsExportCommand(Command command) {
  return command == Command::kExport || command == Command::kImport ||
         command == Command::kExportModel;
}

absl::StatusOr<ExportInvocation> BuildExportInvocation(Command command,
                                                       const std::set<absl::string_view>& seen) {
  ExportInvocation inv;
  inv.session_id = absl::GetFlag(FLAGS_session);
  inv.out = absl::GetFlag(FLAGS_out);
  inv.overwrite = absl::GetFlag(FLAGS_overwrite);
  inv.file = absl::GetFlag(FLAGS_file);
  if (command == Command::kImport) {
    RETURN_IF_ERROR(Require(seen, "file", "import"));
    if (seen.count("name") > 0 && !inv.session_id.empty()) {
      return absl::InvalidArgumentError(
          "--name names a new session; leave out --session to create one");
    }
    inv.import.set_session_id(inv.session_id);
    inv.import.set_name(absl::GetFlag(FLAGS_name));
    return inv;
  }
  const char* name = command == Command::kExport ? "export" : "export-model";
  RETURN_IF_ERROR(Require(seen, "session", name));
  RETURN_IF_ERROR(Require(seen, "out", name));
  if (inv.out.empty()) return absl::InvalidArgumentError(absl::StrCat("'", name, "' needs --out"));
  if (command == Command::kExportModel) {
    inv.export_model.set_session_id(inv.session_id);
    inv.export_model.set_out_dir(std::filesystem::absolute(inv.out).lexically_normal().string());
    inv.export_model.set_overwrite(inv.overwrite);
  }
  return inv;
}

}  // namespace romed::client
