#include "server/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"

namespace romed {
namespace {

using Json = nlohmann::json;

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; romed copies it as is");

// The reference implementation refuses headers above 100 MB; so do we, so a
// corrupt length cannot make us parse gigabytes.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr char kMetadataKey[] = "__metadata__";

struct DtypeInfo {
  const char* name;
  torch::Dtype dtype;
  size_t element_size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* FindDtype(const std::string& name) {
  for (const DtypeInfo& info : kDtypes) {
    if (name == info.name) return &info;
  }
  return nullptr;
}

const DtypeInfo* FindDtype(torch::Dtype dtype) {
  for (const DtypeInfo& info : kDtypes) {
    if (dtype == info.dtype) return &info;
  }
  return nullptr;
}

std::string KnownDtypes() {
  std::vector<std::string> names;
  for (const DtypeInfo& info : kDtypes) names.push_back(info.name);
  return absl::StrJoin(names, ", ");
}

absl::Status Corrupt(const std::string& path, const std::string& what) {
  return absl::DataLossError(absl::StrCat(path, ": ", what));
}

absl::Status ErrnoStatus(const std::string& path, const char* action) {
  const int err = errno;
  const std::string message = absl::StrCat(path, ": cannot ", action, ": ", std::strerror(err));
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  return absl::UnavailableError(message);
}

// Reads a JSON array of non-negative integers; nullopt if it is anything else.
std::optional<std::vector<uint64_t>> UnsignedArray(const Json& json) {
  if (!json.is_array()) return std::nullopt;
  std::vector<uint64_t> values;
  for (const Json& v : json) {
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
      return std::nullopt;
    }
    values.push_back(v.get<uint64_t>());
  }
  return values;
}

// Parses one tensor's header entry; checks its own fields, not overlaps.
absl::StatusOr<SafetensorsEntry> ParseEntry(const std::string& path, const std::string& name,
                                            const Json& json, uint64_t data_size) {
  const std::string where = absl::StrCat("tensor \"", name, "\": ");
  if (!json.is_object() || !json.contains("dtype") || !json["dtype"].is_string()) {
    return Corrupt(path, absl::StrCat(where, "header entry has no \"dtype\" string"));
  }
  SafetensorsEntry entry;
  entry.dtype = json["dtype"].get<std::string>();
  const DtypeInfo* dtype = FindDtype(entry.dtype);
  if (dtype == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", where, "unknown dtype \"",
                                                   entry.dtype, "\" (known: ", KnownDtypes(),
                                                   ")"));
  }
  auto shape = UnsignedArray(json.value("shape", Json()));
  if (!shape) return Corrupt(path, absl::StrCat(where, "\"shape\" is not a list of sizes"));
  auto offsets = UnsignedArray(json.value("data_offsets", Json()));
  if (!offsets || offsets->size() != 2) {
    return Corrupt(path, absl::StrCat(where, "\"data_offsets\" is not [begin, end]"));
  }
  uint64_t numel = 1;
  for (uint64_t dim : *shape) {
    if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / dim) {
      return Corrupt(path, absl::StrCat(where, "shape is too large"));
    }
    numel *= dim;
    entry.shape.push_back(static_cast<int64_t>(dim));
  }
  entry.begin = (*offsets)[0];
  entry.end = (*offsets)[1];
  if (entry.begin > entry.end || entry.end > data_size) {
    return Corrupt(path, absl::StrCat(where, "data_offsets [", entry.begin, ", ", entry.end,
                                      "] are outside the data region of ", data_size, " bytes"));
  }
  const uint64_t expected = numel * dtype->element_size;
  if (entry.end - entry.begin != expected) {
    return Corrupt(path, absl::StrCat(where, "data_offsets span ", entry.end - entry.begin,
                                      " bytes, but ", entry.dtype, " ",
                                      "[", absl::StrJoin(entry.shape, ","), "] needs ",
                                      expected));
  }
  return entry;
}

absl::StatusOr<std::map<std::string, std::string>> ParseMetadata(const std::string& path,
                                                                 const Json& json) {
  std::map<std::string, std::string> metadata;
  if (!json.is_object()) return Corrupt(path, "\"__metadata__\" is not an object");
  for (const auto& [key, value] : json.items()) {
    if (!value.is_string()) {
      return Corrupt(path, absl::StrCat("\"__metadata__\" value of \"", key,
                                        "\" is not a string"));
    }
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

absl::Status CheckNoOverlap(const std::string& path,
                            const std::map<std::string, SafetensorsEntry>& entries) {
  std::vector<std::pair<const std::string*, const SafetensorsEntry*>> sorted;
  for (const auto& [name, entry] : entries) sorted.emplace_back(&name, &entry);
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return std::make_pair(a.second->begin, a.second->end) <
           std::make_pair(b.second->begin, b.second->end);
  });
  for (size_t i = 1; i < sorted.size(); ++i) {
    const auto& [prev_name, prev] = sorted[i - 1];
    const auto& [name, entry] = sorted[i];
    if (entry->begin < prev->end) {
      return Corrupt(path, absl::StrCat("tensors \"", *prev_name, "\" [", prev->begin, ", ",
                                        prev->end, "] and \"", *name, "\" [", entry->begin,
                                        ", ", entry->end, "] overlap"));
    }
  }
  return absl::OkStatus();
}

// Writes all of `bytes` to `fd`, retrying short writes.
bool WriteAll(int fd, const void* bytes, size_t size) {
  const char* p = static_cast<const char*>(bytes);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// The header of WriteSafetensors, padded with spaces to a multiple of 8 bytes
// as the reference writer does; the data follows in input order.
absl::StatusOr<std::string> BuildHeader(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey || header.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor name \"", name, "\" is reserved or duplicated"));
    }
    const DtypeInfo* dtype = FindDtype(tensor.scalar_type());
    if (dtype == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor \"", name, "\": dtype ", c10::toString(tensor.scalar_type()),
          " cannot be stored (supported: ", KnownDtypes(), ")"));
    }
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * dtype->element_size;
    header[name] = {{"dtype", dtype->name},
                    {"shape", tensor.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

absl::Status WriteTensorsTo(int fd, const std::string& header,
                            const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  const uint64_t length = header.size();  // little-endian host (asserted above)
  if (!WriteAll(fd, &length, sizeof(length)) || !WriteAll(fd, header.data(), header.size())) {
    return absl::UnavailableError(absl::StrCat("write failed: ", std::strerror(errno)));
  }
  for (const auto& [name, tensor] : tensors) {
    RETURN_IF_ERROR(GuardTorch(absl::StrCat("writing tensor \"", name, "\""), [&] {
      torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
      if (cpu.nbytes() > 0 && !WriteAll(fd, cpu.data_ptr(), cpu.nbytes())) {
        return absl::UnavailableError(absl::StrCat("write of tensor \"", name,
                                                   "\" failed: ", std::strerror(errno)));
      }
      return absl::OkStatus();
    }));
  }
  return absl::OkStatus();
}

absl::Status WithPath(const std::string& path, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(path, ": ", status.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(path, "open");
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    absl::Status status = ErrnoStatus(path, "stat");
    ::close(fd);
    return status;
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    return Corrupt(path, absl::StrCat("file is ", size,
                                      " bytes, shorter than the 8-byte header length"));
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  absl::Status map_status = map == MAP_FAILED ? ErrnoStatus(path, "mmap") : absl::OkStatus();
  ::close(fd);  // the mapping stays valid
  if (!map_status.ok()) return map_status;
  file->map_ = static_cast<const uint8_t*>(map);
  file->map_size_ = size;
  file->mapped_ = true;
  RETURN_IF_ERROR(file->ParseHeader());
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(
    std::string bytes, const std::string& name) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = name;
  if (bytes.size() < 8) {
    return Corrupt(name, absl::StrCat("file is ", bytes.size(),
                                      " bytes, shorter than the 8-byte header length"));
  }
  file->owned_ = std::move(bytes);
  file->map_ = reinterpret_cast<const uint8_t*>(file->owned_.data());
  file->map_size_ = file->owned_.size();
  RETURN_IF_ERROR(file->ParseHeader());
  return file;
}

absl::Status SafetensorsFile::ParseHeader() {
  uint64_t header_length = 0;
  std::memcpy(&header_length, map_, sizeof(header_length));
  if (header_length > map_size_ - 8 || header_length > kMaxHeaderBytes) {
    return Corrupt(path_, absl::StrCat("header length ", header_length, " exceeds the ",
                                       map_size_ - 8, " bytes after the length field"));
  }
  data_offset_ = 8 + header_length;
  const char* text = reinterpret_cast<const char*>(map_ + 8);
  Json header = Json::parse(text, text + header_length, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return Corrupt(path_, "header is not a JSON object");
  }
  const uint64_t data_size = map_size_ - data_offset_;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      ASSIGN_OR_RETURN(metadata_, ParseMetadata(path_, value));
      continue;
    }
    ASSIGN_OR_RETURN(entries_[name], ParseEntry(path_, name, value, data_size));
  }
  return CheckNoOverlap(path_, entries_);
}

SafetensorsFile::~SafetensorsFile() {
  if (mapped_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

std::string_view SafetensorsFile::contents() const {
  return std::string_view(reinterpret_cast<const char*>(map_), map_size_);
}

absl::StatusOr<torch::Tensor> SafetensorsFile::Read(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat(path_, ": no tensor \"", name, "\""));
  }
  const SafetensorsEntry& entry = it->second;
  return GuardTorch(absl::StrCat(path_, ": reading tensor \"", name, "\""), [&] {
    torch::Tensor tensor =
        torch::empty(entry.shape, torch::TensorOptions().dtype(FindDtype(entry.dtype)->dtype));
    const size_t bytes = entry.end - entry.begin;
    if (bytes > 0) std::memcpy(tensor.data_ptr(), map_ + data_offset_ + entry.begin, bytes);
    return tensor;
  });
}

absl::Status WriteSafetensors(const std::string& path,
                              const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  auto header = BuildHeader(tensors, metadata);
  if (!header.ok()) return WithPath(path, header.status());
  std::string temp_path = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(temp_path.data());
  if (fd < 0) return ErrnoStatus(temp_path, "create");
  absl::Status status = WithPath(path, WriteTensorsTo(fd, *header, tensors));
  if (status.ok() && ::fchmod(fd, 0644) != 0) status = ErrnoStatus(temp_path, "chmod");
  if (status.ok() && ::fsync(fd) != 0) status = ErrnoStatus(temp_path, "fsync");
  if (::close(fd) != 0 && status.ok()) status = ErrnoStatus(temp_path, "close");
  if (status.ok() && ::rename(temp_path.c_str(), path.c_str()) != 0) {
    status = ErrnoStatus(path, "rename the temporary file onto");
  }
  if (!status.ok()) ::unlink(temp_path.c_str());
  return status;
}

absl::StatusOr<std::string> SerializeSafetensors(
    const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
    const std::map<std::string, std::string>& metadata) {
  ASSIGN_OR_RETURN(const std::string header, BuildHeader(tensors, metadata));
  const uint64_t length = header.size();  // little-endian host (asserted above)
  std::string out(reinterpret_cast<const char*>(&length), sizeof(length));
  out += header;
  for (const auto& [name, tensor] : tensors) {
    RETURN_IF_ERROR(GuardTorch(absl::StrCat("serializing tensor \"", name, "\""), [&] {
      torch::Tensor cpu = tensor.detach().to(torch::kCPU).contiguous();
      out.append(static_cast<const char*>(cpu.data_ptr()), cpu.nbytes());
      return absl::OkStatus();
    }));
  }
  return out;
}

}  // namespace romed
