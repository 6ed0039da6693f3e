// EditSiteStore: the edit site that tracing recommended for the loaded model
// (trace_aggregate.h), kept so Edit can use it as its default site.
//
// File: <state_dir>/sites/<model checksum>.json, RecommendationToJson's
// format, written atomically (temporary file + rename) before Put returns.
// A server restarted on the same state dir and model finds it again; another
// model (another checksum) never sees it. With an empty state_dir the
// recommendation lives in memory only.
//
//   EditSiteStore store(state_dir, checkpoint.checksum);
//   RETURN_IF_ERROR(store.Load());                 // at startup
//   RETURN_IF_ERROR(store.Put(recommendation));    // after TraceFacts
//   if (auto site = store.Get()) options.layer = site->layer;
//
// Thread-safe.
#ifndef ROMED_SERVER_ENGINE_EDIT_SITE_STORE_H_
#define ROMED_SERVER_ENGINE_EDIT_SITE_STORE_H_

#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/trace/trace_aggregate.h"

namespace romed {

class EditSiteStore {
 public:
  EditSiteStore(std::string state_dir, std::string model_checksum);

  // Reads the stored recommendation, if there is one (none is OK).
  // DataLossError naming the file if it exists but cannot be parsed (the
  // store then holds nothing; a later Put overwrites the file).
  absl::Status Load();

  // The current recommendation; nullopt if tracing never stored one.
  std::optional<SiteRecommendation> Get() const;

  // Replaces the recommendation: durable on disk first (InternalError naming
  // the path if it cannot be written; then nothing changes), then in memory.
  absl::Status Put(const SiteRecommendation& site);

  // The file path ("" without a state dir).
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  mutable absl::Mutex mu_;
  std::optional<SiteRecommendation> site_ ABSL_GUARDED_BY(mu_);
};

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_EDIT_SITE_STORE_H_
