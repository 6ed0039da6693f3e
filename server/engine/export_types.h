// The requests and results of the Engine's ExportSession, ImportSession and
// ExportModel verbs (engine.h, implemented in engine_export.cc): plain data,
// no gRPC. The export file's layout is server/session/session_export.h.
#ifndef ROMED_SERVER_ENGINE_EXPORT_TYPES_H_
#define ROMED_SERVER_ENGINE_EXPORT_TYPES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/session/session_types.h"

namespace romed {

struct ExportedSession {
  std::string file;            // the safetensors bytes (session_export.h)
  std::string session_id;
  int64_t num_edits = 0;       // stack entries in the file
  int64_t num_deltas = 0;      // rank-one deltas over all entries
  std::string model_checksum;  // the base model's, as written in the file
};

struct ImportSessionRequest {
  std::string file;        // the bytes ExportSession produced
  // "" = create a new session (named `name`, else the exported session's
  // name; labels from the file); else an existing session with an empty stack.
  std::string session_id;
  std::string name;        // only for a new session; <= 128 bytes
  std::string owner;       // the caller, if known (a new session's owner)
};

struct ImportSessionResult {
  std::shared_ptr<const SessionState> session;  // after the import
  bool created = false;                         // a new session was made
  std::vector<EditEntry> edits;                 // as stored, with their new ids
  // The exported session's id and its ids of the imported entries (same order).
  std::string source_session_id;
  std::vector<int64_t> source_edit_ids;
};

struct ExportModelRequest {
  std::string session_id;  // required
  // Directory on the server to write; its parent must exist. Relative paths
  // are resolved against the server's working directory.
  std::string out_dir;
  bool overwrite = false;  // replace the checkpoint files of an existing directory
};

struct ExportModelResult {
  std::string out_dir;             // absolute
  std::vector<std::string> files;  // the files written, relative to out_dir
  int64_t num_edits = 0;
  int64_t num_deltas = 0;          // merged into the weights
  std::string base_model_checksum;
  int64_t bytes_written = 0;
  double elapsed_s = 0;
};

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_EXPORT_TYPES_H_
