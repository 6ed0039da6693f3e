// Encodings a SessionStore uses for what SQL has no type for:
//   - an edit's record (request, per-rewrite results, total time) as JSON text;
//   - a session's labels as a JSON object;
//   - one 1-D delta vector as raw little-endian bytes plus a dtype name
//     ("F32", "F16", "BF16", "F64", as in safetensors) and a length.
// Pure functions, thread-safe.
#ifndef ROMED_SERVER_SESSION_EDIT_CODEC_H_
#define ROMED_SERVER_SESSION_EDIT_CODEC_H_

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "server/session/session_types.h"

namespace romed {

// JSON text of entry.request, entry.results and entry.total_time_s (not the
// id, the creation time or the deltas: the store keeps those in columns).
std::string EncodeEditRecord(const EditEntry& entry);

// Fills request, results and total_time_s of `entry` from EncodeEditRecord's
// text. DataLossError on malformed text.
absl::Status DecodeEditRecord(std::string_view text, EditEntry& entry);

std::string EncodeLabels(const std::map<std::string, std::string>& labels);
absl::StatusOr<std::map<std::string, std::string>> DecodeLabels(std::string_view text);

// A vector's bytes (little-endian, contiguous) and how to read them back.
struct EncodedVector {
  std::string dtype;  // "F32" | "F16" | "BF16" | "F64"
  int64_t size = 0;   // number of elements
  std::string bytes;  // size * element size bytes
};

// `vector` must be defined, 1-D and of a floating dtype above (any device).
// InvalidArgumentError naming `what` otherwise.
absl::StatusOr<EncodedVector> EncodeVector(const torch::Tensor& vector, std::string_view what);

// A new CPU tensor [size] of `dtype`. DataLossError naming `what` if the
// dtype is unknown or the byte count does not match.
absl::StatusOr<torch::Tensor> DecodeVector(std::string_view dtype, int64_t size,
                                           std::string_view bytes, std::string_view what);

}  // namespace romed

#endif  // ROMED_SERVER_SESSION_EDIT_CODEC_H_
