// Reading and writing the safetensors format
// (https://github.com/huggingface/safetensors):
//   8 bytes   little-endian u64 N = header length
//   N bytes   JSON: {"__metadata__": {str: str}?, name: {"dtype": "F32"|"F16"|"BF16"|...,
//             "shape": [..], "data_offsets": [begin, end]}, ...}
//   rest      raw little-endian tensor bytes; offsets are relative to the
//             start of this region.
//
// SafetensorsFile memory-maps the file read-only; tensors are copied out on
// Read() (so the mapping may be closed afterwards). Thread-safe for
// concurrent Read() calls once opened.
#ifndef ROMED_SERVER_MODEL_SAFETENSORS_H_
#define ROMED_SERVER_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace romed {

struct SafetensorsEntry {
  std::string dtype;           // as written: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;  // empty for a scalar
  uint64_t begin = 0;          // byte offsets into the data region
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Maps and validates `path`: header length within the file, header is JSON
  // of the form above, every entry's dtype known, offsets inside the data
  // region, (end - begin) == numel * element size, no overlapping entries.
  // Errors (all name `path`): NotFoundError (missing), DataLossError
  // (truncated, corrupt header, bad offsets), InvalidArgumentError (unknown
  // dtype).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // The same checks on a file held in memory (e.g. received over the
  // network); `name` stands for the path in messages. The file keeps its own
  // copy of `bytes`. DataLossError (truncated, corrupt header, bad offsets),
  // InvalidArgumentError (unknown dtype).
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBytes(std::string bytes,
                                                                    const std::string& name);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool Contains(const std::string& name) const { return entries_.count(name) > 0; }
  // The whole file as mapped (header and data), e.g. to checksum it without
  // reading it again. Valid while *this lives.
  std::string_view contents() const;

  // Copies tensor `name` into a new CPU tensor of its stored dtype and shape.
  // NotFoundError naming the tensor and file if absent.
  absl::StatusOr<torch::Tensor> Read(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  // Parses and validates the header of the mapped file into entries_ and
  // metadata_; sets data_offset_.
  absl::Status ParseHeader();
  std::string path_;
  const uint8_t* map_ = nullptr;   // whole file, read-only (mapped, or owned_'s bytes)
  size_t map_size_ = 0;
  bool mapped_ = false;            // map_ is an mmap to release
  std::string owned_;              // FromBytes' copy of the file
  size_t data_offset_ = 0;         // 8 + N
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes `tensors` (any CPU/GPU, contiguous or not; stored dtype kept:
// float32/float16/bfloat16/int64/int32/uint8/bool) to `path` atomically
// (temp file + rename). Names must be unique. `metadata` goes to
// "__metadata__".
absl::Status WriteSafetensors(
    const std::string& path,
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata = {});

// The bytes WriteSafetensors would write, in memory (for files sent over the
// network; SafetensorsFile::FromBytes reads them back).
absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata = {});

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_SAFETENSORS_H_
