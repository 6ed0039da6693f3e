// SqliteSessionStore: the SessionStore of one romed replica, an embedded
// SQLite database (by default <state_dir>/sessions.db).
//
//   ASSIGN_OR_RETURN(auto store, SqliteSessionStore::OpenInStateDir(state_dir));
//   ASSIGN_OR_RETURN(auto registry, SessionRegistry::Open(std::move(store), options));
//
// Durability. The database runs in WAL mode with synchronous=FULL: every
// commit fsyncs the write-ahead log before it returns, so an acknowledged
// write survives a power loss, not only a process crash. (synchronous=NORMAL
// with WAL survives a crash of romed but may lose the last transactions on
// power loss; the issue promises "durable before the reply", and one fsync per
// edit is nothing next to an edit's seconds of computation.) A write is one
// transaction (BEGIN IMMEDIATE ... COMMIT): an edit's record and all its
// deltas land together or not at all, so a crash mid-edit leaves no partial
// entry.
//
// Schema (version 1, in PRAGMA user_version; a newer version is refused):
//   sessions(id PK, name, labels JSON, owner, model_checksum, created_us,
//            updated_us, next_edit_id)
//   edits(session_id, edit_id, created_us, record JSON; PK(session_id, edit_id))
//   deltas(session_id, edit_id, ordinal, layer, dtype, u_size, u BLOB,
//          lambda_size, lambda BLOB; PK(session_id, edit_id, ordinal))
// Vectors are raw little-endian bytes of their dtype (edit_codec.h); records
// and labels are JSON text.
//
// Errors: UnavailableError for I/O, disk-full and locking failures;
// InternalError for other SQLite failures; DataLossError for rows that do
// not decode; FailedPreconditionError for a file that is not a romed session
// database or has a newer schema. Messages name the database path.
//
// Thread safety: thread-safe; one connection, writes serialised by a mutex
// (SQLite has one writer at a time anyway).
#ifndef ROMED_SERVER_SESSION_SQLITE_SESSION_STORE_H_
#define ROMED_SERVER_SESSION_SQLITE_SESSION_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/session/session_store.h"
#include "server/session/sqlite_db.h"

namespace romed {

struct SqliteSessionStoreOptions {
  // Fault injection for tests: called inside each write transaction before
  // every statement and before COMMIT with the step's name ("update
  // session", "insert edit", "insert delta 0", "delete edit 3", "commit",
  // ...). A non-OK return aborts the transaction (rolled back) with that
  // status, as a failing disk would. Null (default): no faults.
  std::function<absl::Status(std::string_view step)> fault_hook;
};

class SqliteSessionStore final : public SessionStore {
 public:
  static constexpr int64_t kSchemaVersion = 1;
  static constexpr const char* kFileName = "sessions.db";
  // Open(kInMemoryPath) keeps everything in memory: nothing survives the
  // process (for tests and a server run without a state dir).
  static constexpr const char* kInMemoryPath = ":memory:";

  // Opens or creates the database at `path`; creates the schema in a new
  // file; checks the schema version of an existing one.
  static absl::StatusOr<std::unique_ptr<SqliteSessionStore>> Open(
      const std::string& path, SqliteSessionStoreOptions options = {});
  // Open(state_dir + "/sessions.db"), creating `state_dir` if needed.
  static absl::StatusOr<std::unique_ptr<SqliteSessionStore>> OpenInStateDir(
      const std::string& state_dir, SqliteSessionStoreOptions options = {});

  const std::string& path() const { return path_; }

  absl::StatusOr<std::vector<StoredSession>> LoadAll() override;
  absl::Status InsertSession(const SessionInfo& info) override;
  absl::Status DeleteSession(const std::string& id) override;
  absl::Status AppendEdit(const SessionInfo& info, const EditEntry& entry) override;
  absl::Status AppendEdits(const SessionInfo& info, const std::vector<EditEntry>& entries) override;
  absl::Status RemoveEdits(const SessionInfo& info, const std::vector<int64_t>& edit_ids) override;

 private:
  SqliteSessionStore(std::string path, SqliteDb db, SqliteSessionStoreOptions options)
      : path_(std::move(path)), options_(std::move(options)), db_(std::move(db)) {}

  // Sets the pragmas and creates or checks the schema.
  absl::Status Initialize() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Fault(std::string_view step) const;
  // The public writes' transactions, without the error context.
  absl::Status InsertSessionLocked(const SessionInfo& info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeleteSessionLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AppendEditsLocked(const SessionInfo& info, const std::vector<EditEntry>& entries)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RemoveEditsLocked(const SessionInfo& info, const std::vector<int64_t>& edit_ids)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // UPDATE of the session row to `info`; NotFoundError if absent.
  absl::Status UpdateSessionRow(const SessionInfo& info) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status InsertEditRows(const std::string& session_id, const EditEntry& entry)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DeleteEditRows(const std::string& session_id, int64_t edit_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<StoredSession>> LoadAllLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds "session store <path>: <what>: " to `status`'s message, keeping its code.
  absl::Status WithContext(const absl::Status& status, std::string_view what) const;

  const std::string path_;
  const SqliteSessionStoreOptions options_;
  absl::Mutex mu_;
  SqliteDb db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace romed

#endif  // ROMED_SERVER_SESSION_SQLITE_SESSION_STORE_H_
