// The requests and results of the Engine's session, Edit, Revert and
// ComputeStats verbs (engine.h, implemented in engine_sessions.cc): plain
// data, no gRPC. Session snapshots and edit entries are the session layer's
// own types (server/session/session_types.h); the service converts them.
#ifndef ROMED_SERVER_ENGINE_EDIT_TYPES_H_
#define ROMED_SERVER_ENGINE_EDIT_TYPES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "server/edit/covariance.h"
#include "server/edit/edit_site.h"
#include "server/edit/rome_options.h"
#include "server/session/session_types.h"

namespace romed {

// Most rewrites one Edit may apply as one stack entry (INVALID_ARGUMENT past it).
inline constexpr int64_t kMaxRewritesPerEdit = 64;

// Polled between the steps of a heavy job; true aborts it with CANCELLED
// (nothing changes). Empty = never cancelled.
using CancelCheck = std::function<bool()>;

struct CreateSessionRequest {
  std::string name;                           // <= 128 bytes, may be empty
  std::map<std::string, std::string> labels;  // <= 32 entries
  std::string owner;                          // the caller, if known
};

// Per-request overrides of ROME's hyperparameters. Unset = the resolved
// default: DefaultRomeOptions(model) <- the stored tracing recommendation
// (layer and fact_token) <- these.
struct RomeOverrides {
  std::optional<int64_t> layer;             // 0..L-1
  std::optional<FactToken> fact_token;
  std::optional<int64_t> v_num_grad_steps;  // >= 1
  std::optional<double> v_lr;               // > 0
  std::optional<double> v_weight_decay;     // >= 0
  std::optional<double> kl_factor;          // >= 0
  std::optional<double> clamp_norm_factor;  // > 0
  std::optional<UpdateKeyForm> key_form;    // default: consistent (r-ROME)
  // C = I instead of covariance statistics (the reply says so).
  bool identity_covariance = false;
};

struct TextEditRequest {
  std::string session_id;              // required
  std::vector<RewriteRecord> rewrites;  // 1..kMaxRewritesPerEdit, applied in order
  RomeOverrides overrides;
};

// Where an edit's layer and fact token came from (stored with the edit as
// hyperparameters["site_source"]).
inline constexpr char kSiteFromRequest[] = "request";
inline constexpr char kSiteFromTracing[] = "tracing";
inline constexpr char kSiteDefault[] = "default";

struct EditResult {
  EditEntry entry;                               // as stored (id, time, deltas)
  std::shared_ptr<const SessionState> session;  // the session after the edit
};

struct RevertResult {
  std::vector<int64_t> reverted_edit_ids;        // top first
  std::shared_ptr<const SessionState> session;  // the session after the revert
};

struct SessionListPage {
  std::vector<std::shared_ptr<const SessionState>> sessions;  // creation order
  std::string next_page_token;                                // "" on the last page
};

struct ComputeStatsRequest {
  int64_t layer = 0;        // 0..L-1
  std::string corpus_path;  // file or directory on the server; "" = the model's stats corpus
  int64_t max_tokens = 0;   // >= 0; 0 = the whole corpus
  bool recompute = false;   // ignore cached statistics
};

struct ComputeStatsResult {
  int64_t layer = 0;
  std::string corpus_path;   // the corpus used
  int64_t token_count = 0;   // tokens the statistics cover
  bool cached = false;       // read from memory or disk rather than computed now
  std::string cache_path;    // "" without a state dir
  std::string source;        // "corpus <path>, N tokens"
  double ridge = 0.0;        // added to C's diagonal to factor it
  double elapsed_s = 0.0;
};

}  // namespace romed

#endif  // ROMED_SERVER_ENGINE_EDIT_TYPES_H_
