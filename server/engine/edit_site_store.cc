#include "server/engine/edit_site_store.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"

namespace romed {
namespace {

std::string SitePath(const std::string& state_dir, const std::string& checksum) {
  if (state_dir.empty()) return "";
  return (std::filesystem::path(state_dir) / "sites" / (checksum + ".json")).string();
}

}  // namespace

EditSiteStore::EditSiteStore(std::string state_dir, std::string model_checksum)
    : path_(SitePath(state_dir, model_checksum)) {}

absl::Status EditSiteStore::Load() {
  if (path_.empty()) return absl::OkStatus();
  std::ifstream in(path_, std::ios::binary);
  if (!in) return absl::OkStatus();  // never stored
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<SiteRecommendation> site = RecommendationFromJson(text.str());
  if (!site.ok()) {
    return absl::DataLossError(absl::StrCat("edit-site recommendation ", path_,
                                            " is unreadable (", site.status().message(),
                                            "); trace the known facts again to replace it"));
  }
  absl::MutexLock lock(&mu_);
  site_ = *std::move(site);
  return absl::OkStatus();
}

std::optional<SiteRecommendation> EditSiteStore::Get() const {
  absl::MutexLock lock(&mu_);
  return site_;
}

absl::Status EditSiteStore::Put(const SiteRecommendation& site) {
  absl::MutexLock lock(&mu_);  // also orders concurrent writers of the file
  if (!path_.empty()) {
    const std::filesystem::path path(path_);
    std::error_code error;
    std::filesystem::create_directories(path.parent_path(), error);
    if (error) {
      return absl::InternalError(absl::StrCat("cannot create ", path.parent_path().string(), ": ",
                                              error.message()));
    }
    const std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out << RecommendationToJson(site) << "\n";
      out.flush();
      if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
    }
    std::filesystem::rename(tmp, path, error);
    if (error) {
      std::filesystem::remove(tmp, error);
      return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path_));
    }
  }
  site_ = site;
  return absl::OkStatus();
}

}  // namespace romed
