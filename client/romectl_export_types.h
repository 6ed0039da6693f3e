// What romectl's export, import and export-model commands were asked to do
// (parsed by romectl_export_args.h, run by romectl_export.h).
#ifndef ROMED_CLIENT_ROMECTL_EXPORT_TYPES_H_
#define ROMED_CLIENT_ROMECTL_EXPORT_TYPES_H_

#include <string>

#include "romed/v1/model_editor.pb.h"

namespace romed::client {

struct ExportInvocation {
  std::string session_id;  // export: the session to export
  std::string out;         // export: the local file to write
  bool overwrite = false;  // export, export-model: replace what exists
  std::string file;        // import: the local file to send
  romed::v1::ImportSessionRequest import;  // import: session_id and name (file read at run time)
  romed::v1::ExportModelRequest export_model;  // export-model: out_dir made absolute
};

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_EXPORT_TYPES_H_
