// The session export file: a session's edit stack as one safetensors file
// that another session (on this romed or another with the same base model)
// can import with its deltas and records intact.
//
// Layout (safetensors, server/model/safetensors.h):
//   tensors    "edits.{i}.deltas.{j}.u"       [M]  key direction of delta j of entry i
//              "edits.{i}.deltas.{j}.lambda"  [C]  its value change
//              (i = position on the stack from the bottom, j = order within
//              the entry; stored dtype kept, so an import is bit-exact)
//   __metadata__ (every value a string)
//     "format"          kSessionExportFormat
//     "model_checksum"  Checkpoint::checksum of the base model the deltas
//                       were computed on (an import checks it)
//     "model_shape"     JSON {"n_layer": L, "n_embd": C, "mlp_width": M}
//     "session"         JSON {"id", "name", "labels"} of the exported session
//     "edits"           JSON array, one object per entry, bottom first:
//                       {"edit_id", "created_unix_us", "record": the
//                       EncodeEditRecord object (request, results, total
//                       time), "deltas": [{"layer", "u", "lambda"}] with the
//                       tensor names}
//
// Notation: M = MLP width (4 * n_embd), C = n_embd, L = n_layer.
// Pure functions, thread-safe.
#ifndef ROMED_SERVER_SESSION_SESSION_EXPORT_H_
#define ROMED_SERVER_SESSION_SESSION_EXPORT_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/session/session_types.h"

namespace romed {

inline constexpr char kSessionExportFormat[] = "romed.session_export.v1";

// The shape every delta of an export must have.
struct ExportModelShape {
  int64_t n_layer = 0;    // L: delta layers are 0..L-1
  int64_t n_embd = 0;     // C: lambda's length
  int64_t mlp_width = 0;  // M: u's length
};

// What an export file holds.
struct SessionExport {
  std::string model_checksum;
  ExportModelShape shape;
  std::string session_id;  // the exported session's id, name and labels
  std::string session_name;
  std::map<std::string, std::string> session_labels;
  // The stack, bottom first: ids, creation times, records and deltas as
  // they were in the exported session (deltas as CPU tensors when decoded).
  std::vector<EditEntry> edits;
};

// The file's bytes. InvalidArgumentError if a delta is not a 1-D floating
// tensor (edit_codec.h's dtypes).
absl::StatusOr<std::string> EncodeSessionExport(const SessionExport& data);

// Parses and checks a file: the safetensors structure, the format name, the
// metadata's JSON, every named tensor present, 1-D, floating and of the
// shape model_shape states, every layer in range, every value finite, and
// no tensor the metadata does not name. InvalidArgumentError naming what is
// wrong (a truncated or corrupt file, a file of another kind) otherwise.
// It does not compare the checksum: the caller knows its model.
absl::StatusOr<SessionExport> DecodeSessionExport(std::string bytes);

}  // namespace romed

#endif  // ROMED_SERVER_SESSION_SESSION_EXPORT_H_
