// Writing a directory all at once: the tool fills a staging directory next to
// the destination and renames it into place, so a failed or interrupted run
// leaves no partial output behind.
//
//   ASSIGN_OR_RETURN(StagingDir staging, StagingDir::Create(out, force));
//   RETURN_IF_ERROR(WriteTextFile(staging.path() + "/README.md", text));
//   RETURN_IF_ERROR(staging.Commit());   // `out` now holds the files
//
// A StagingDir that is destroyed without Commit() removes its directory.
#ifndef ROMED_TOOLS_FACT_MODEL_OUTPUT_DIR_H_
#define ROMED_TOOLS_FACT_MODEL_OUTPUT_DIR_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace romed::fact_model {

class StagingDir {
 public:
  // Checks `destination` and creates "<destination>.tmp-XXXXXX" beside it.
  // Errors: InvalidArgumentError for an empty path; AlreadyExistsError if
  // `destination` exists and is not an empty directory (unless `force`);
  // FailedPreconditionError if it is a file; PermissionDeniedError if the
  // parent cannot be created (missing parents are made, like mkdir -p) or
  // is not writable.
  static absl::StatusOr<StagingDir> Create(const std::string& destination, bool force);

  StagingDir(StagingDir&& other) noexcept;
  StagingDir& operator=(StagingDir&&) = delete;
  StagingDir(const StagingDir&) = delete;
  ~StagingDir();

  const std::string& path() const { return path_; }

  // Replaces `destination` (removing what was there, which Create allowed)
  // with the staging directory. After success the destructor does nothing.
  absl::Status Commit();

 private:
  StagingDir(std::string path, std::string destination, bool force)
      : path_(std::move(path)), destination_(std::move(destination)), force_(force) {}

  std::string path_;
  std::string destination_;
  bool force_ = false;
  bool committed_ = false;
};

// Writes `contents` to `path` (truncating). InternalError naming the path
// on failure.
absl::Status WriteTextFile(const std::string& path, std::string_view contents);

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_OUTPUT_DIR_H_
