// The plain data of sessions: their metadata, their edit stack entries and the
// immutable snapshot readers take (ARCHITECTURE.md section 4).
//
// No gRPC and no proto types: server/service converts these to romed.v1
// messages. Everything here is a value type; a SessionState is built once by
// SessionRegistry and never modified afterwards, so any number of threads may
// read one concurrently.
//
// Notation: M = MLP width (4 * n_embd), C = n_embd.
#ifndef ROMED_SERVER_SESSION_SESSION_TYPES_H_
#define ROMED_SERVER_SESSION_SESSION_TYPES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "server/model/rank_one.h"

namespace romed {

// One requested rewrite, as the client sent it (romed.v1.Rewrite).
struct RewriteRecord {
  std::string prompt;  // template with one "{}" for the subject
  std::string subject;
  std::string target_new;
  std::string target_true;  // may be empty
};

// The request that produced an edit: its rewrites (applied in order as one
// stack entry) and the hyperparameters actually used or overridden, as
// name -> value text (e.g. {"v_lr": "0.5", "layer": "5"}). Stored verbatim.
struct EditRequestRecord {
  std::vector<RewriteRecord> rewrites;
  std::map<std::string, std::string> hyperparameters;
};

// What one rewrite of an edit did (romed.v1.RewriteResult).
struct RewriteResultRecord {
  RewriteRecord rewrite;
  int64_t layer = 0;
  std::string fact_token;  // "subject_first" | "subject_last" | "last"
  float p_new_before = 0;  // P(target_new | prompt), mean per token
  float p_new_after = 0;
  float p_true_before = 0;  // P(target_true | prompt); 0 if none given
  float p_true_after = 0;
  float delta_u_norm = 0;         // ||u||
  float delta_lambda_norm = 0;    // ||lambda||
  std::vector<float> loss_curve;  // value-optimisation loss per step
  double key_time_s = 0;
  double value_time_s = 0;
  double update_time_s = 0;
  bool identity_covariance = false;  // C = I was used instead of statistics
  // Added after schema version 1; records written before read as the defaults.
  bool target_already_predicted = false;  // target_new was the greedy answer before
  bool converged = false;                 // value loss fell below early_stop_loss
  std::string covariance_source;          // "identity" or "corpus <path>, N tokens"
  double covariance_time_s = 0;           // statistics: load, compute or identity
};

// One entry of a session's edit stack.
struct EditEntry {
  // Assigned by SessionRegistry::PushEdit: 1, 2, 3, ... within a session,
  // never reused, even after the entry is reverted.
  int64_t edit_id = 0;
  EditRequestRecord request;
  std::vector<RewriteResultRecord> results;  // one per rewrite, in order
  absl::Time created;                        // assigned by PushEdit (microseconds)
  double total_time_s = 0;                   // wall time of the whole edit
  // The entry's deltas, applied in this order after every earlier entry's.
  // Each u is [M] and each lambda [C] (1-D; float32, float16, bfloat16 or
  // float64; any device). At least one.
  std::vector<RankOneDelta> deltas;
};

// A session's metadata (romed.v1.Session without the stack summary).
struct SessionInfo {
  std::string id;                             // "s-" + 16 lowercase hex digits, server-assigned
  std::string name;                           // <= kMaxSessionNameBytes bytes; may be empty
  std::map<std::string, std::string> labels;  // <= kMaxSessionLabels entries
  std::string owner;                          // the authenticated caller; may be empty
  // Checksum of the base model the session's edits were computed on
  // (Checkpoint::checksum). A session only loads on that model.
  std::string model_checksum;
  absl::Time created;  // microsecond precision (as stored)
  absl::Time updated;  // last Create / PushEdit / Revert
  // The id the next PushEdit assigns: 1 + the largest id ever assigned.
  int64_t next_edit_id = 1;
};

inline constexpr size_t kMaxSessionNameBytes = 128;
inline constexpr size_t kMaxSessionLabels = 32;
inline constexpr size_t kMaxSessionLabelKeyBytes = 128;
inline constexpr size_t kMaxSessionLabelValueBytes = 256;

// An immutable snapshot of one session: what a Generate, Score or Trace on
// the session runs against. Shared as std::shared_ptr<const SessionState>;
// a reader that holds one keeps seeing exactly this stack, whatever edits,
// reverts or deletes happen afterwards.
struct SessionState {
  SessionInfo info;
  // The stack, bottom first; edit ids strictly increase along it.
  std::vector<EditEntry> edits;
  // EditView::Build(every delta of `edits` in stack order, device, dtype):
  // pass it to the forward pass (RowEdits). Never null; empty() for an
  // empty stack.
  std::shared_ptr<const EditView> view;

  int64_t num_edits() const { return static_cast<int64_t>(edits.size()); }
  // The top entry's id; 0 for an empty stack.
  int64_t last_edit_id() const { return edits.empty() ? 0 : edits.back().edit_id; }
};

}  // namespace romed

#endif  // ROMED_SERVER_SESSION_SESSION_TYPES_H_
