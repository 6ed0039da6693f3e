#include "tools/fact_model/output_dir.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace romed::fact_model {
namespace {

namespace fs = std::filesystem;

absl::Status CheckDestination(const fs::path& destination, bool force) {
  std::error_code error;
  const fs::file_status status = fs::status(destination, error);
  if (!fs::exists(status)) return absl::OkStatus();
  if (!fs::is_directory(status)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--out ", destination.string(), " exists and is not a directory"));
  }
  if (!force && !fs::is_empty(destination, error)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "--out ", destination.string(), " exists and is not empty (pass --force to replace it)"));
  }
  return absl::OkStatus();
}

// Creates missing parents (like mkdir -p) and checks the last is writable.
absl::Status PrepareParent(const fs::path& parent) {
  std::error_code error;
  fs::create_directories(parent, error);
  if (!fs::is_directory(parent, error)) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create the parent directory ", parent.string(), " of --out"));
  }
  if (access(parent.c_str(), W_OK | X_OK) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("parent directory ", parent.string(), " of --out is not writable"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<StagingDir> StagingDir::Create(const std::string& destination, bool force) {
  if (destination.empty()) return absl::InvalidArgumentError("--out must name a directory");
  const fs::path target = fs::absolute(fs::path(destination)).lexically_normal();
  const fs::path clean = target.has_filename() ? target : target.parent_path();
  if (absl::Status status = CheckDestination(clean, force); !status.ok()) return status;
  if (absl::Status status = PrepareParent(clean.parent_path()); !status.ok()) return status;
  std::string pattern = clean.string() + ".tmp-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create a staging directory beside ", clean.string(), ": ",
                     std::strerror(errno)));
  }
  fs::permissions(buffer.data(), fs::perms(0755));  // mkdtemp makes it 0700
  return StagingDir(buffer.data(), clean.string(), force);
}

StagingDir::StagingDir(StagingDir&& other) noexcept
    : path_(std::move(other.path_)),
      destination_(std::move(other.destination_)),
      force_(other.force_),
      committed_(other.committed_) {
  other.committed_ = true;  // the moved-from object owns nothing
}

StagingDir::~StagingDir() {
  if (committed_ || path_.empty()) return;
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

absl::Status StagingDir::Commit() {
  if (absl::Status status = CheckDestination(destination_, force_); !status.ok()) return status;
  std::error_code error;
  fs::remove_all(destination_, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot remove the old ", destination_, ": ", error.message()));
  }
  fs::rename(path_, destination_, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot rename ", path_, " to ", destination_, ": ", error.message()));
  }
  committed_ = true;
  return absl::OkStatus();
}

absl::Status WriteTextFile(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace romed::fact_model
