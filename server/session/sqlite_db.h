// Small RAII wrappers over the sqlite3 C API, returning absl::Status.
//
//   ASSIGN_OR_RETURN(SqliteDb db, SqliteDb::Open(path));
//   RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
//   ASSIGN_OR_RETURN(SqliteStatement insert, db.Prepare("INSERT INTO t VALUES (?1)"));
//   insert.BindText(1, "x");
//   RETURN_IF_ERROR(insert.Run());
//
// Every error message carries SQLite's own (sqlite3_errmsg) and the SQL or
// path involved. SQLITE_BUSY / SQLITE_LOCKED / SQLITE_FULL / SQLITE_IOERR
// become UnavailableError (a retry or an operator may fix them); others
// InternalError.
//
// Thread safety: none; the owner serialises use of one SqliteDb and its
// statements.
#ifndef ROMED_SERVER_SESSION_SQLITE_DB_H_
#define ROMED_SERVER_SESSION_SQLITE_DB_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace romed {

class SqliteStatement {
 public:
  SqliteStatement() = default;
  ~SqliteStatement();
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  // Parameters are 1-based, as in SQL's ?1. Text and blobs are copied.
  void BindText(int index, std::string_view text);
  void BindBlob(int index, std::string_view bytes);
  void BindInt64(int index, int64_t value);

  // Steps once: true with a row available, false when done.
  absl::StatusOr<bool> Step();
  // Steps to completion, ignoring rows (INSERT/UPDATE/DELETE), then resets
  // the statement so it can be bound and run again.
  absl::Status Run();

  // Columns of the current row, 0-based.
  int64_t ColumnInt64(int index) const;
  std::string ColumnText(int index) const;
  std::string_view ColumnBlob(int index) const;  // valid until the next Step

  // Rows changed by the last Run() (sqlite3_changes).
  int64_t changes() const;

 private:
  friend class SqliteDb;
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt, std::string sql)
      : db_(db), stmt_(stmt), sql_(std::move(sql)) {}
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

class SqliteDb {
 public:
  // Opens (creating if absent) the database file `path`.
  static absl::StatusOr<SqliteDb> Open(const std::string& path);
  SqliteDb() = default;
  ~SqliteDb();
  SqliteDb(SqliteDb&& other) noexcept;
  SqliteDb& operator=(SqliteDb&& other) noexcept;
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  // Runs one or more statements that return no rows of interest.
  absl::Status Exec(const std::string& sql);
  absl::StatusOr<SqliteStatement> Prepare(const std::string& sql);
  // The first column of the first row of `sql` as an integer.
  absl::StatusOr<int64_t> QueryInt64(const std::string& sql);
  absl::StatusOr<std::string> QueryText(const std::string& sql);

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

// BEGIN IMMEDIATE on construction via Begin(); ROLLBACK in the destructor
// unless Commit() succeeded. One open transaction per SqliteDb at a time.
class SqliteTransaction {
 public:
  static absl::StatusOr<SqliteTransaction> Begin(SqliteDb& db);
  ~SqliteTransaction();
  SqliteTransaction(SqliteTransaction&& other) noexcept;
  SqliteTransaction& operator=(SqliteTransaction&&) = delete;
  SqliteTransaction(const SqliteTransaction&) = delete;
  SqliteTransaction& operator=(const SqliteTransaction&) = delete;

  absl::Status Commit();

 private:
  explicit SqliteTransaction(SqliteDb* db) : db_(db) {}
  SqliteDb* db_;  // null once committed or rolled back (or moved from)
};

// The Status for SQLite result code `rc` with `context` and the database's
// message.
absl::Status SqliteError(sqlite3* db, int rc, std::string_view context);

}  // namespace romed

#endif  // ROMED_SERVER_SESSION_SQLITE_DB_H_
