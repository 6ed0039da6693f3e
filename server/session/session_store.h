// SessionStore: the durable home of sessions and their edit stacks.
//
// SessionRegistry calls a store's write methods before it changes anything in
// memory, and only acknowledges a call once the write returned OK; so every
// method must make its whole change durable (committed) before it returns OK,
// and make none of it if it returns an error. The production implementation
// is SqliteSessionStore (sqlite_session_store.h); tests wrap it to inject
// faults, as leveldb's tests wrap its Env.
//
// Thread safety: implementations must be safe to call from many threads at
// once (the registry writes different sessions concurrently).
#ifndef ROMED_SERVER_SESSION_SESSION_STORE_H_
#define ROMED_SERVER_SESSION_SESSION_STORE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/session/session_types.h"

namespace romed {

// A session as stored: its metadata and its stack, bottom first.
struct StoredSession {
  SessionInfo info;
  std::vector<EditEntry> edits;  // increasing edit_id; deltas on the CPU
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // Every stored session with its stack (deltas as CPU tensors of their
  // stored dtype), in no particular order. DataLossError if a row cannot be
  // decoded, naming the session and edit.
  virtual absl::StatusOr<std::vector<StoredSession>> LoadAll() = 0;

  // Adds a new session with an empty stack. AlreadyExistsError if the id is
  // taken.
  virtual absl::Status InsertSession(const SessionInfo& info) = 0;

  // Removes a session and its whole stack. NotFoundError if absent.
  virtual absl::Status DeleteSession(const std::string& id) = 0;

  // In one transaction: adds `entry` (its record and every delta) on top of
  // session `info.id`'s stack and updates the session's row to `info` (its
  // updated time and next_edit_id). NotFoundError if the session is absent.
  virtual absl::Status AppendEdit(const SessionInfo& info, const EditEntry& entry) = 0;

  // In one transaction: adds `entries` in order on top of the stack and
  // updates the session's row to `info` (an import). NotFoundError if the
  // session is absent. The default calls AppendEdit per entry, which is NOT
  // atomic (for test wrappers that inject faults per call); durable stores
  // override it.
  virtual absl::Status AppendEdits(const SessionInfo& info, const std::vector<EditEntry>& entries) {
    for (const EditEntry& entry : entries) {
      absl::Status status = AppendEdit(info, entry);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  // In one transaction: removes the entries `edit_ids` of session `info.id`
  // and updates the session's row to `info`. NotFoundError if the session or
  // one of the entries is absent (then nothing is removed).
  virtual absl::Status RemoveEdits(const SessionInfo& info,
                                   const std::vector<int64_t>& edit_ids) = 0;
};

}  // namespace romed

#endif  // ROMED_SERVER_SESSION_SESSION_STORE_H_
