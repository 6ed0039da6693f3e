// SessionRegistry: every session of a replica, their edit stacks, and the
// rules for changing them (ARCHITECTURE.md section 4).
//
//   ASSIGN_OR_RETURN(auto store, SqliteSessionStore::OpenInStateDir(state_dir));
//   SessionRegistryOptions options;
//   options.model_checksum = checkpoint.checksum;
//   ASSIGN_OR_RETURN(auto registry, SessionRegistry::Open(std::move(store), options));
//   ASSIGN_OR_RETURN(auto session, registry->Create("demo", {}, "alice"));
//   ASSIGN_OR_RETURN(EditEntry edit, registry->PushEdit(session->info.id,
//       [&](const SessionState& current) { return rome.Edit(current.view, request); }));
//   ASSIGN_OR_RETURN(auto state, registry->Get(session->info.id));  // for Generate
//
// Snapshots. Readers take std::shared_ptr<const SessionState>: immutable
// metadata, stack and prebuilt EditView. A reader keeps its snapshot for as
// long as it likes (a Generate that started before an Edit finishes on the
// old stack); writers publish a new snapshot and never touch an old one.
//
// Writers. PushEdit, Revert and Delete on one session are serialised by that
// session's writer lock, held for the whole operation (PushEdit holds it
// during its `compute`, so the next edit is computed on the state after the
// previous one). Writers on different sessions run concurrently. Reads (Get,
// List, ListEdits) never wait for a writer's computation.
//
// Durability. Every write is committed to the SessionStore before memory
// changes and before it returns OK. If the store fails, the call returns the
// store's error (Unavailable/Internal with context) and memory is unchanged.
//
// Errors (messages are meant for the person at romectl):
//   NOT_FOUND           unknown session id; unknown edit id (Revert keep_up_to)
//   INVALID_ARGUMENT    name/labels too long; bad page_size / page_token;
//                       Revert of N < 1 or more entries than the stack holds
//   RESOURCE_EXHAUSTED  past --max_sessions or --max_edits_per_session
//   FAILED_PRECONDITION (Open) a stored session made on another base model
//   whatever the store or `compute` returned, unchanged
//
// Thread safety: every method is thread-safe.
#ifndef ROMED_SERVER_SESSION_SESSION_REGISTRY_H_
#define ROMED_SERVER_SESSION_SESSION_REGISTRY_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/session/session_store.h"
#include "server/session/session_types.h"

namespace romed {

struct SessionLimits {
  // Sessions that may exist at once (--max_sessions). Create past it:
  // RESOURCE_EXHAUSTED.
  int64_t max_sessions = 1000;
  // Entries one session's stack may hold (--max_edits_per_session). PushEdit
  // on a full stack: RESOURCE_EXHAUSTED, before any computation.
  int64_t max_edits_per_session = 1000;
};

struct SessionRegistryOptions {
  SessionLimits limits;
  // Checksum of the loaded base model (Checkpoint::checksum). New sessions
  // record it; Open refuses stored sessions that recorded another.
  std::string model_checksum;
  // Where and in what dtype snapshots' EditViews live (the model's).
  torch::Device device = torch::kCPU;
  torch::Dtype dtype = torch::kFloat32;
  // The clock for created/updated times; null = absl::Now. Times are kept at
  // microsecond precision (as stored).
  std::function<absl::Time()> clock;
};

// Which entries Revert removes.
struct RevertTarget {
  // Remove the top `n` entries (n >= 1, at most the stack's depth).
  static RevertTarget Pop(int64_t n) { return RevertTarget{Kind::kPop, n}; }
  // Remove every entry with an id above `edit_id`, which must be on the
  // stack; 0 removes every entry.
  static RevertTarget KeepUpTo(int64_t edit_id) { return RevertTarget{Kind::kKeepUpTo, edit_id}; }

  enum class Kind { kPop, kKeepUpTo };
  Kind kind = Kind::kPop;
  int64_t value = 1;
};

// One page of List.
struct SessionPage {
  std::vector<std::shared_ptr<const SessionState>> sessions;  // creation order
  std::string next_page_token;                                // empty on the last page
};

class SessionRegistry {
 public:
  using SnapshotPtr = std::shared_ptr<const SessionState>;
  // Computes one edit on the session's `current` state (use current.view as
  // the edited model). Its edit_id and created are overwritten by PushEdit.
  using EditComputation = std::function<absl::StatusOr<EditEntry>(const SessionState& current)>;

  static constexpr int64_t kDefaultPageSize = 100;
  static constexpr int64_t kMaxPageSize = 1000;

  // Restores every session in `store` with its stack, building each
  // snapshot's EditView on options.device in options.dtype.
  // FailedPreconditionError if a stored session was made on another model
  // (the message names both checksums); the store's errors otherwise.
  // Limits are not applied to restored state: after lowering --max_sessions
  // every stored session is still loaded, and Create fails until enough are
  // deleted (likewise for stacks and --max_edits_per_session).
  static absl::StatusOr<std::unique_ptr<SessionRegistry>> Open(std::shared_ptr<SessionStore> store,
                                                               SessionRegistryOptions options);

  SessionRegistry(const SessionRegistry&) = delete;
  SessionRegistry& operator=(const SessionRegistry&) = delete;

  // Creates an empty session with a fresh id. InvalidArgumentError if `name`
  // or `labels` exceed their limits (session_types.h); ResourceExhaustedError
  // at --max_sessions.
  absl::StatusOr<SnapshotPtr> Create(const std::string& name,
                                     const std::map<std::string, std::string>& labels,
                                     const std::string& owner);

  // The session's current snapshot. NotFoundError if `id` is unknown.
  absl::StatusOr<SnapshotPtr> Get(const std::string& id) const;

  // Sessions in creation order (ties by id), `page_size` at a time (0 =
  // kDefaultPageSize, at most kMaxPageSize), from `page_token` (empty = the
  // start; otherwise a next_page_token of an earlier call). Sessions created
  // or deleted between pages do not shift the pages. InvalidArgumentError for
  // a page_size out of 0..1000 or a token List did not produce.
  absl::StatusOr<SessionPage> List(int64_t page_size, const std::string& page_token) const;

  // Deletes the session and its stack (after any write in progress on it).
  // NotFoundError if unknown. Holders of its snapshots keep them.
  absl::Status Delete(const std::string& id);

  // Under the session's writer lock: checks --max_edits_per_session, runs
  // `compute(current)`, assigns the next edit id and the creation time,
  // builds the new EditView, commits the entry to the store and publishes
  // the new snapshot. Returns the entry as stored. On any error (including
  // compute's) nothing changes and no edit id is consumed.
  absl::StatusOr<EditEntry> PushEdit(const std::string& id, const EditComputation& compute);

  // An import: under the session's writer lock, checks that the stack is
  // empty and that `entries` (1..--max_edits_per_session of them) fit, gives
  // them the next edit ids in order (their `created` times are kept), builds
  // the new EditView, commits all of them in one store transaction
  // (SessionStore::AppendEdits) and publishes the snapshot. Returns the
  // entries as stored. FailedPreconditionError if the session holds edits;
  // ResourceExhaustedError past --max_edits_per_session;
  // InvalidArgumentError for no entries or an entry without deltas. On any
  // error nothing changes.
  absl::StatusOr<std::vector<EditEntry>> ImportEdits(const std::string& id,
                                                     std::vector<EditEntry> entries);

  // Removes entries from the top of the stack (see RevertTarget) and
  // publishes a snapshot whose EditView is rebuilt from the remaining deltas
  // in order, so outputs equal those before the removed edits bit for bit.
  // Returns the removed ids, top first (empty for KeepUpTo the top entry,
  // which changes nothing). InvalidArgumentError for Pop(n) with n < 1 or
  // n > depth, or KeepUpTo(id < 0); NotFoundError for KeepUpTo an id not on
  // the stack (e.g. one already reverted).
  absl::StatusOr<std::vector<int64_t>> Revert(const std::string& id, RevertTarget target);

  // The session's stack, bottom first. NotFoundError if unknown.
  absl::StatusOr<std::vector<EditEntry>> ListEdits(const std::string& id) const;

  // Sessions that exist now.
  int64_t size() const;
  const SessionRegistryOptions& options() const { return options_; }

 private:
  // One session: its writer lock and its current snapshot.
  struct Slot {
    // Held by PushEdit/Revert/Delete for their whole run. Acquired without
    // holding mu_ (lock order: writer_mu, then mu_ or state_mu).
    absl::Mutex writer_mu;
    bool deleted ABSL_GUARDED_BY(writer_mu) = false;
    mutable absl::Mutex state_mu;  // held only to copy or replace `state`
    SnapshotPtr state ABSL_GUARDED_BY(state_mu);

    SnapshotPtr Load() const {
      absl::MutexLock lock(&state_mu);
      return state;
    }
  };
  using OrderKey = std::pair<int64_t, std::string>;  // (created us, id)

  SessionRegistry(std::shared_ptr<SessionStore> store, SessionRegistryOptions options);

  absl::Time Now() const;
  absl::StatusOr<std::shared_ptr<Slot>> FindSlot(const std::string& id) const;
  // A snapshot of `info` + `edits` with its EditView built.
  absl::StatusOr<SnapshotPtr> MakeState(SessionInfo info, std::vector<EditEntry> edits) const;
  // A fresh "s-" id not in use. Caller holds mu_.
  std::string NewSessionId() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Restore(std::vector<StoredSession> stored);

  const std::shared_ptr<SessionStore> store_;
  const SessionRegistryOptions options_;

  mutable absl::Mutex mu_;  // guards the index only; never held across store or compute calls
  std::map<std::string, std::shared_ptr<Slot>> by_id_ ABSL_GUARDED_BY(mu_);
  std::set<OrderKey> by_creation_ ABSL_GUARDED_BY(mu_);
  // Ids of Creates between their limit check and their store write; they
  // count against max_sessions.
  std::set<std::string> pending_ids_ ABSL_GUARDED_BY(mu_);
};

}  // namespace romed

#endif  // ROMED_SERVER_SESSION_SESSION_REGISTRY_H_
