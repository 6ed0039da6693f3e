#include "server/session/sqlite_session_store.h"

#include <filesystem>
#include <map>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/core/status_macros.h"
#include "server/session/edit_codec.h"

namespace romed {
namespace {

constexpr const char* kCreateSchema = R"sql(
CREATE TABLE sessions (
  id             TEXT PRIMARY KEY NOT NULL,
  name           TEXT NOT NULL,
  labels         TEXT NOT NULL,
  owner          TEXT NOT NULL,
  model_checksum TEXT NOT NULL,
  created_us     INTEGER NOT NULL,
  updated_us     INTEGER NOT NULL,
  next_edit_id   INTEGER NOT NULL
);
CREATE TABLE edits (
  session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
  edit_id    INTEGER NOT NULL,
  created_us INTEGER NOT NULL,
  record     TEXT NOT NULL,
  PRIMARY KEY (session_id, edit_id)
);
CREATE TABLE deltas (
  session_id  TEXT NOT NULL,
  edit_id     INTEGER NOT NULL,
  ordinal     INTEGER NOT NULL,
  layer       INTEGER NOT NULL,
  dtype       TEXT NOT NULL,
  u_size      INTEGER NOT NULL,
  u           BLOB NOT NULL,
  lambda_size INTEGER NOT NULL,
  lambda      BLOB NOT NULL,
  PRIMARY KEY (session_id, edit_id, ordinal),
  FOREIGN KEY (session_id, edit_id) REFERENCES edits(session_id, edit_id) ON DELETE CASCADE
);
)sql";

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }
absl::Time FromMicros(int64_t us) { return absl::FromUnixMicros(us); }

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteSessionStore>> SqliteSessionStore::Open(
    const std::string& path, SqliteSessionStoreOptions options) {
  ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(path));
  std::unique_ptr<SqliteSessionStore> store(
      new SqliteSessionStore(path, std::move(db), std::move(options)));
  {
    absl::MutexLock lock(&store->mu_);
    RETURN_IF_ERROR(store->Initialize());
  }
  return store;
}

absl::StatusOr<std::unique_ptr<SqliteSessionStore>> SqliteSessionStore::OpenInStateDir(
    const std::string& state_dir, SqliteSessionStoreOptions options) {
  std::error_code error;
  std::filesystem::create_directories(state_dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create --state_dir ", state_dir, ": ", error.message()));
  }
  return Open((std::filesystem::path(state_dir) / kFileName).string(), std::move(options));
}

absl::Status SqliteSessionStore::WithContext(const absl::Status& status,
                                             std::string_view what) const {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("session store ", path_, ": ", std::string(what),
                                                  ": ", status.message()));
}

absl::Status SqliteSessionStore::Fault(std::string_view step) const {
  if (!options_.fault_hook) return absl::OkStatus();
  return options_.fault_hook(step);
}

absl::Status SqliteSessionStore::Initialize() {
  // WAL must be set outside a transaction; it persists in the file.
  absl::StatusOr<std::string> mode = db_.QueryText("PRAGMA journal_mode=WAL");
  if (!mode.ok()) return WithContext(mode.status(), "enabling WAL");
  // ":memory:" (tests, --state_dir="") has no file and keeps journal_mode=memory.
  const bool in_memory = path_ == kInMemoryPath;
  if (*mode != "wal" && !(in_memory && *mode == "memory")) {
    return absl::FailedPreconditionError(
        absl::StrCat("session store ", path_, ": cannot use WAL journal mode (got \"", *mode,
                     "\"); is the file on a filesystem without shared memory support?"));
  }
  RETURN_IF_ERROR(WithContext(
      db_.Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000"),
      "setting pragmas"));

  absl::StatusOr<SqliteTransaction> tx = SqliteTransaction::Begin(db_);
  if (!tx.ok()) return WithContext(tx.status(), "checking the schema");
  ASSIGN_OR_RETURN(int64_t version, db_.QueryInt64("PRAGMA user_version"));
  if (version == kSchemaVersion) return absl::OkStatus();  // read-only transaction
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session store ", path_, " has schema version ", version, "; this romed reads version ",
        kSchemaVersion, " (upgrade romed, or use another --state_dir)"));
  }
  ASSIGN_OR_RETURN(int64_t tables, db_.QueryInt64("SELECT count(*) FROM sqlite_master"));
  if (tables != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("session store ", path_,
                     " is not a romed session database (it has tables but no schema "
                     "version); move it away or use another --state_dir"));
  }
  RETURN_IF_ERROR(WithContext(db_.Exec(kCreateSchema), "creating the schema"));
  RETURN_IF_ERROR(WithContext(db_.Exec(absl::StrCat("PRAGMA user_version=", kSchemaVersion)),
                              "setting the schema version"));
  return WithContext(tx->Commit(), "creating the schema");
}

// ---------------------------------------------------------------- writes

absl::Status SqliteSessionStore::InsertSession(const SessionInfo& info) {
  absl::MutexLock lock(&mu_);
  return WithContext(InsertSessionLocked(info), absl::StrCat("creating session ", info.id));
}

absl::Status SqliteSessionStore::InsertSessionLocked(const SessionInfo& info) {
  ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(db_));
  RETURN_IF_ERROR(Fault("insert session"));
  ASSIGN_OR_RETURN(SqliteStatement exists, db_.Prepare("SELECT 1 FROM sessions WHERE id = ?1"));
  exists.BindText(1, info.id);
  ASSIGN_OR_RETURN(bool found, exists.Step());
  if (found) return absl::AlreadyExistsError(absl::StrCat("session ", info.id, " exists"));
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("INSERT INTO sessions (id, name, labels, owner, model_checksum, "
                               "created_us, updated_us, next_edit_id) VALUES "
                               "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  stmt.BindText(1, info.id);
  stmt.BindText(2, info.name);
  stmt.BindText(3, EncodeLabels(info.labels));
  stmt.BindText(4, info.owner);
  stmt.BindText(5, info.model_checksum);
  stmt.BindInt64(6, ToMicros(info.created));
  stmt.BindInt64(7, ToMicros(info.updated));
  stmt.BindInt64(8, info.next_edit_id);
  RETURN_IF_ERROR(stmt.Run());
  RETURN_IF_ERROR(Fault("commit"));
  return tx.Commit();
}

absl::Status SqliteSessionStore::DeleteSession(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return WithContext(DeleteSessionLocked(id), absl::StrCat("deleting session ", id));
}

absl::Status SqliteSessionStore::DeleteSessionLocked(const std::string& id) {
  ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(db_));
  for (const char* table : {"deltas", "edits"}) {
    RETURN_IF_ERROR(Fault(absl::StrCat("delete ", table)));
    ASSIGN_OR_RETURN(SqliteStatement stmt,
                     db_.Prepare(absl::StrCat("DELETE FROM ", table, " WHERE session_id = ?1")));
    stmt.BindText(1, id);
    RETURN_IF_ERROR(stmt.Run());
  }
  RETURN_IF_ERROR(Fault("delete session"));
  ASSIGN_OR_RETURN(SqliteStatement stmt, db_.Prepare("DELETE FROM sessions WHERE id = ?1"));
  stmt.BindText(1, id);
  RETURN_IF_ERROR(stmt.Run());
  if (stmt.changes() == 0) return absl::NotFoundError(absl::StrCat("no session ", id));
  RETURN_IF_ERROR(Fault("commit"));
  return tx.Commit();
}

absl::Status SqliteSessionStore::UpdateSessionRow(const SessionInfo& info) {
  RETURN_IF_ERROR(Fault("update session"));
  ASSIGN_OR_RETURN(SqliteStatement stmt,
                   db_.Prepare("UPDATE sessions SET name = ?2, labels = ?3, owner = ?4, "
                               "updated_us = ?5, next_edit_id = ?6 WHERE id = ?1"));
  stmt.BindText(1, info.id);
  stmt.BindText(2, info.name);
  stmt.BindText(3, EncodeLabels(info.labels));
  stmt.BindText(4, info.owner);
  stmt.BindInt64(5, ToMicros(info.updated));
  stmt.BindInt64(6, info.next_edit_id);
  RETURN_IF_ERROR(stmt.Run());
  if (stmt.changes() == 0) return absl::NotFoundError(absl::StrCat("no session ", info.id));
  return absl::OkStatus();
}

absl::Status SqliteSessionStore::InsertEditRows(const std::string& session_id,
                                                const EditEntry& entry) {
  RETURN_IF_ERROR(Fault("insert edit"));
  ASSIGN_OR_RETURN(SqliteStatement edit,
                   db_.Prepare("INSERT INTO edits (session_id, edit_id, created_us, record) "
                               "VALUES (?1, ?2, ?3, ?4)"));
  edit.BindText(1, session_id);
  edit.BindInt64(2, entry.edit_id);
  edit.BindInt64(3, ToMicros(entry.created));
  edit.BindText(4, EncodeEditRecord(entry));
  RETURN_IF_ERROR(edit.Run());

  ASSIGN_OR_RETURN(SqliteStatement delta,
                   db_.Prepare("INSERT INTO deltas (session_id, edit_id, ordinal, layer, dtype, "
                               "u_size, u, lambda_size, lambda) VALUES "
                               "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"));
  for (size_t i = 0; i < entry.deltas.size(); ++i) {
    const RankOneDelta& d = entry.deltas[i];
    const std::string what = absl::StrCat("delta ", i);
    ASSIGN_OR_RETURN(EncodedVector u, EncodeVector(d.u, what + " u"));
    ASSIGN_OR_RETURN(EncodedVector lambda, EncodeVector(d.lambda, what + " lambda"));
    if (u.dtype != lambda.dtype) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": u is ", u.dtype, " but lambda is ", lambda.dtype));
    }
    RETURN_IF_ERROR(Fault(absl::StrCat("insert ", what)));
    delta.BindText(1, session_id);
    delta.BindInt64(2, entry.edit_id);
    delta.BindInt64(3, static_cast<int64_t>(i));
    delta.BindInt64(4, d.layer);
    delta.BindText(5, u.dtype);
    delta.BindInt64(6, u.size);
    delta.BindBlob(7, u.bytes);
    delta.BindInt64(8, lambda.size);
    delta.BindBlob(9, lambda.bytes);
    RETURN_IF_ERROR(delta.Run());  // Run() resets the statement for the next delta
  }
  return absl::OkStatus();
}

absl::Status SqliteSessionStore::DeleteEditRows(const std::string& session_id, int64_t edit_id) {
  RETURN_IF_ERROR(Fault(absl::StrCat("delete edit ", edit_id)));
  ASSIGN_OR_RETURN(SqliteStatement deltas,
                   db_.Prepare("DELETE FROM deltas WHERE session_id = ?1 AND edit_id = ?2"));
  deltas.BindText(1, session_id);
  deltas.BindInt64(2, edit_id);
  RETURN_IF_ERROR(deltas.Run());
  ASSIGN_OR_RETURN(SqliteStatement edit,
                   db_.Prepare("DELETE FROM edits WHERE session_id = ?1 AND edit_id = ?2"));
  edit.BindText(1, session_id);
  edit.BindInt64(2, edit_id);
  RETURN_IF_ERROR(edit.Run());
  if (edit.changes() == 0) {
    return absl::NotFoundError(absl::StrCat("session ", session_id, " has no edit ", edit_id));
  }
  return absl::OkStatus();
}

absl::Status SqliteSessionStore::AppendEdit(const SessionInfo& info, const EditEntry& entry) {
  absl::MutexLock lock(&mu_);
  return WithContext(AppendEditsLocked(info, {entry}),
                     absl::StrCat("appending edit ", entry.edit_id, " to session ", info.id));
}

absl::Status SqliteSessionStore::AppendEdits(const SessionInfo& info,
                                             const std::vector<EditEntry>& entries) {
  absl::MutexLock lock(&mu_);
  return WithContext(AppendEditsLocked(info, entries),
                     absl::StrCat("appending ", entries.size(), " edits to session ", info.id));
}

absl::Status SqliteSessionStore::AppendEditsLocked(const SessionInfo& info,
                                                   const std::vector<EditEntry>& entries) {
  ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(db_));
  RETURN_IF_ERROR(UpdateSessionRow(info));
  for (const EditEntry& entry : entries) RETURN_IF_ERROR(InsertEditRows(info.id, entry));
  RETURN_IF_ERROR(Fault("commit"));
  return tx.Commit();
}

absl::Status SqliteSessionStore::RemoveEdits(const SessionInfo& info,
                                             const std::vector<int64_t>& edit_ids) {
  absl::MutexLock lock(&mu_);
  return WithContext(RemoveEditsLocked(info, edit_ids),
                     absl::StrCat("reverting ", edit_ids.size(), " edit(s) of session ", info.id));
}

absl::Status SqliteSessionStore::RemoveEditsLocked(const SessionInfo& info,
                                                   const std::vector<int64_t>& edit_ids) {
  ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(db_));
  RETURN_IF_ERROR(UpdateSessionRow(info));
  for (int64_t edit_id : edit_ids) RETURN_IF_ERROR(DeleteEditRows(info.id, edit_id));
  RETURN_IF_ERROR(Fault("commit"));
  return tx.Commit();
}

// ---------------------------------------------------------------- load

absl::StatusOr<std::vector<StoredSession>> SqliteSessionStore::LoadAll() {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<StoredSession>> sessions = LoadAllLocked();
  if (!sessions.ok()) return WithContext(sessions.status(), "loading sessions");
  return sessions;
}

absl::StatusOr<std::vector<StoredSession>> SqliteSessionStore::LoadAllLocked() {
  // One read transaction: a consistent view of the three tables.
  ASSIGN_OR_RETURN(SqliteTransaction tx, SqliteTransaction::Begin(db_));
  std::map<std::string, StoredSession> by_id;
  ASSIGN_OR_RETURN(SqliteStatement sessions,
                   db_.Prepare("SELECT id, name, labels, owner, model_checksum, created_us, "
                               "updated_us, next_edit_id FROM sessions"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, sessions.Step());
    if (!row) break;
    StoredSession s;
    s.info.id = sessions.ColumnText(0);
    s.info.name = sessions.ColumnText(1);
    absl::StatusOr<std::map<std::string, std::string>> labels =
        DecodeLabels(sessions.ColumnText(2));
    if (!labels.ok()) {
      return absl::DataLossError(
          absl::StrCat("session ", s.info.id, ": ", labels.status().message()));
    }
    s.info.labels = *std::move(labels);
    s.info.owner = sessions.ColumnText(3);
    s.info.model_checksum = sessions.ColumnText(4);
    s.info.created = FromMicros(sessions.ColumnInt64(5));
    s.info.updated = FromMicros(sessions.ColumnInt64(6));
    s.info.next_edit_id = sessions.ColumnInt64(7);
    std::string id = s.info.id;
    by_id.emplace(std::move(id), std::move(s));
  }

  // (session id, edit id) -> entry, filled in id order.
  std::map<std::pair<std::string, int64_t>, EditEntry> edits;
  ASSIGN_OR_RETURN(SqliteStatement edit_rows,
                   db_.Prepare("SELECT session_id, edit_id, created_us, record FROM edits"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, edit_rows.Step());
    if (!row) break;
    EditEntry entry;
    const std::string session_id = edit_rows.ColumnText(0);
    entry.edit_id = edit_rows.ColumnInt64(1);
    entry.created = FromMicros(edit_rows.ColumnInt64(2));
    absl::Status decoded = DecodeEditRecord(edit_rows.ColumnText(3), entry);
    if (!decoded.ok()) {
      return absl::DataLossError(
          absl::StrCat("session ", session_id, " edit ", entry.edit_id, ": ", decoded.message()));
    }
    edits.emplace(std::make_pair(session_id, entry.edit_id), std::move(entry));
  }

  ASSIGN_OR_RETURN(SqliteStatement delta_rows,
                   db_.Prepare("SELECT session_id, edit_id, ordinal, layer, dtype, u_size, u, "
                               "lambda_size, lambda FROM deltas "
                               "ORDER BY session_id, edit_id, ordinal"));
  while (true) {
    ASSIGN_OR_RETURN(bool row, delta_rows.Step());
    if (!row) break;
    const std::string session_id = delta_rows.ColumnText(0);
    const int64_t edit_id = delta_rows.ColumnInt64(1);
    const std::string what = absl::StrCat("session ", session_id, " edit ", edit_id, " delta ",
                                          delta_rows.ColumnInt64(2));
    auto it = edits.find({session_id, edit_id});
    if (it == edits.end()) return absl::DataLossError(absl::StrCat(what, ": no such edit"));
    RankOneDelta delta;
    delta.layer = delta_rows.ColumnInt64(3);
    const std::string dtype = delta_rows.ColumnText(4);
    ASSIGN_OR_RETURN(delta.u, DecodeVector(dtype, delta_rows.ColumnInt64(5),
                                           delta_rows.ColumnBlob(6), what + " u"));
    ASSIGN_OR_RETURN(delta.lambda, DecodeVector(dtype, delta_rows.ColumnInt64(7),
                                                delta_rows.ColumnBlob(8), what + " lambda"));
    it->second.deltas.push_back(std::move(delta));
  }

  for (auto& [key, entry] : edits) {
    auto session = by_id.find(key.first);
    if (session == by_id.end()) {
      return absl::DataLossError(
          absl::StrCat("edit ", key.second, " belongs to a missing session ", key.first));
    }
    session->second.edits.push_back(std::move(entry));  // map order: increasing edit id
  }
  RETURN_IF_ERROR(tx.Commit());

  std::vector<StoredSession> out;
  out.reserve(by_id.size());
  for (auto& [id, s] : by_id) out.push_back(std::move(s));
  return out;
}

}  // namespace romed
