// SqliteSessionStore and edit_codec: what is written is what is read back,
// across a close and reopen; a write interrupted at any step leaves nothing;
// files of another model, a newer schema or another program are refused.
#include "server/session/sqlite_session_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "server/session/edit_codec.h"
#include "server/session/session_registry.h"
#include "tests/session/session_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::ExpectSameEntry;
using ::romed::testing::MakeEntry;
using ::romed::testing::RandomDelta;
using ::romed::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

// ---------------------------------------------------------------- codec

TEST(EditCodecTest, RecordRoundTripsExactly) {
  EditEntry entry = MakeEntry({RandomDelta(3, 8, 4, 1)}, "Ünïcode \"quoted\"");
  entry.results[0].loss_curve = {1.0f / 3.0f, std::numeric_limits<float>::infinity(), 1e-30f};
  entry.results[0].p_true_after = std::nanf("");
  entry.total_time_s = 0.1 + 0.2;
  EditEntry decoded;
  ASSERT_OK(DecodeEditRecord(EncodeEditRecord(entry), decoded));
  decoded.deltas = entry.deltas;  // not part of the record
  EXPECT_TRUE(std::isnan(decoded.results[0].p_true_after));
  decoded.results[0].p_true_after = entry.results[0].p_true_after = 0;
  ExpectSameEntry(decoded, entry);
}

TEST(EditCodecTest, RecordsWithoutLaterFieldsReadAsDefaults) {
  EditEntry entry = MakeEntry({RandomDelta(3, 8, 4, 1)}, "old");
  nlohmann::json record = nlohmann::json::parse(EncodeEditRecord(entry));
  for (const char* field :
       {"target_already_predicted", "converged", "covariance_source", "covariance_time_s"}) {
    ASSERT_EQ(record["results"][0].erase(field), 1u) << field;
  }
  EditEntry decoded;
  ASSERT_OK(DecodeEditRecord(record.dump(), decoded));
  EXPECT_FALSE(decoded.results[0].target_already_predicted);
  EXPECT_FALSE(decoded.results[0].converged);
  EXPECT_EQ(decoded.results[0].covariance_source, "");
  EXPECT_EQ(decoded.results[0].covariance_time_s, 0.0);
  EXPECT_EQ(decoded.results[0].layer, entry.results[0].layer);
}

TEST(EditCodecTest, MalformedRecordIsDataLoss) {
  EditEntry entry;
  EXPECT_THAT(DecodeEditRecord("{", entry), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(DecodeEditRecord(R"({"request": {}})", entry),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("malformed")));
}

TEST(EditCodecTest, VectorsRoundTripInTheirDtype) {
  for (torch::Dtype dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kFloat64}) {
    const torch::Tensor v = torch::randn({7}).to(dtype);
    auto encoded = EncodeVector(v, "u");
    ASSERT_OK(encoded.status());
    auto decoded = DecodeVector(encoded->dtype, encoded->size, encoded->bytes, "u");
    ASSERT_OK(decoded.status());
    EXPECT_EQ(decoded->scalar_type(), dtype);
    EXPECT_TRUE(torch::equal(*decoded, v));
  }
  // Non-contiguous input is stored in logical order.
  const torch::Tensor strided = torch::arange(10, torch::kFloat32).slice(0, 0, 10, 2);
  auto encoded = EncodeVector(strided, "u");
  ASSERT_OK(encoded.status());
  auto decoded = DecodeVector(encoded->dtype, encoded->size, encoded->bytes, "u");
  ASSERT_OK(decoded.status());
  EXPECT_TRUE(torch::equal(*decoded, strided));
}

TEST(EditCodecTest, BadVectorsAreRejected) {
  EXPECT_THAT(EncodeVector(torch::zeros({2, 2}), "delta 0 u"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("delta 0 u must be a 1-D")));
  EXPECT_THAT(EncodeVector(torch::zeros({2}, torch::kInt64), "u"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dtype")));
  EXPECT_THAT(DecodeVector("F32", 3, std::string(8, '\0'), "u"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("8 bytes do not hold 3")));
  EXPECT_THAT(DecodeVector("I8", 1, "x", "u"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("unknown dtype")));
}

// ---------------------------------------------------------------- store

class SqliteSessionStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = romed::testing::MakeTempDir("romed-store");
    ASSERT_FALSE(dir_.empty());
    path_ = dir_ + "/sessions.db";
  }

  std::unique_ptr<SqliteSessionStore> OpenStore(SqliteSessionStoreOptions options = {}) {
    auto store = SqliteSessionStore::Open(path_, std::move(options));
    EXPECT_OK(store.status());
    return store.ok() ? *std::move(store) : nullptr;
  }

  absl::StatusOr<std::unique_ptr<SessionRegistry>> OpenRegistry(
      std::shared_ptr<SessionStore> store, const std::string& checksum = "model-a") {
    SessionRegistryOptions options;
    options.model_checksum = checksum;
    return SessionRegistry::Open(std::move(store), options);
  }

  // Runs `sql` on the database file directly (as another program would).
  int64_t QueryInt(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sql;
    int64_t value = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
  }
  void ExecRaw(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sql;
    sqlite3_close(db);
  }

  std::string dir_;
  std::string path_;
};

TEST_F(SqliteSessionStoreTest, NewDatabaseUsesWalAndSchemaVersion1) {
  ASSERT_NE(OpenStore(), nullptr);
  EXPECT_EQ(QueryInt("PRAGMA user_version"), SqliteSessionStore::kSchemaVersion);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(SqliteSessionStoreTest, OpenInStateDirCreatesTheDirectory) {
  const std::string state_dir = dir_ + "/a/b";
  auto store = SqliteSessionStore::OpenInStateDir(state_dir);
  ASSERT_OK(store.status());
  EXPECT_EQ((*store)->path(), state_dir + "/sessions.db");
}

TEST_F(SqliteSessionStoreTest, ReopenedRegistryHasIdenticalSessionsStacksAndDeltas) {
  std::vector<std::shared_ptr<const SessionState>> before;
  {
    auto registry = OpenRegistry(std::shared_ptr<SessionStore>(OpenStore()));
    ASSERT_OK(registry.status());
    auto a = (*registry)->Create("alpha", {{"team", "kb"}, {"ü", "ß"}}, "alice");
    auto b = (*registry)->Create("", {}, "");
    auto gone = (*registry)->Create("deleted", {}, "");
    ASSERT_OK(a.status());
    ASSERT_OK(b.status());
    ASSERT_OK(gone.status());
    const std::string id = (*a)->info.id;
    auto push = [&](std::vector<RankOneDelta> deltas) {
      ASSERT_OK((*registry)->PushEdit(
          id, [&](const SessionState&) -> absl::StatusOr<EditEntry> { return MakeEntry(deltas); }));
    };
    push({RandomDelta(0, 8, 4, 1), RandomDelta(1, 8, 4, 2)});
    push({RandomDelta(1, 8, 4, 3, 1.0, torch::kFloat16)});
    push({RandomDelta(0, 8, 4, 4)});
    ASSERT_OK((*registry)->Revert(id, RevertTarget::Pop(1)).status());
    push({RandomDelta(0, 8, 4, 5, 1e-3, torch::kFloat64)});
    ASSERT_OK((*registry)->Delete((*gone)->info.id));
    auto page = (*registry)->List(0, "");
    ASSERT_OK(page.status());
    before = page->sessions;
  }
  auto registry = OpenRegistry(std::shared_ptr<SessionStore>(OpenStore()));
  ASSERT_OK(registry.status());
  auto page = (*registry)->List(0, "");
  ASSERT_OK(page.status());
  ASSERT_EQ(page->sessions.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    const SessionState& x = *before[i];
    const SessionState& y = *page->sessions[i];
    EXPECT_EQ(x.info.id, y.info.id);
    EXPECT_EQ(x.info.name, y.info.name);
    EXPECT_EQ(x.info.labels, y.info.labels);
    EXPECT_EQ(x.info.owner, y.info.owner);
    EXPECT_EQ(x.info.model_checksum, y.info.model_checksum);
    EXPECT_EQ(x.info.created, y.info.created);
    EXPECT_EQ(x.info.updated, y.info.updated);
    EXPECT_EQ(x.info.next_edit_id, y.info.next_edit_id);
    ASSERT_EQ(x.edits.size(), y.edits.size());
    for (size_t e = 0; e < x.edits.size(); ++e) ExpectSameEntry(x.edits[e], y.edits[e]);
    ASSERT_EQ(x.view->deltas().size(), y.view->deltas().size());
    for (int64_t layer : {0, 1}) {
      EXPECT_EQ(x.view->rank(layer), y.view->rank(layer));
      if (!x.view->HasLayer(layer)) continue;
      const torch::Tensor key = torch::randn({3, 8});
      EXPECT_TRUE(torch::equal(x.view->Contribution(layer, key), y.view->Contribution(layer, key)));
    }
  }
  ASSERT_EQ(before.size(), 2u);
  EXPECT_EQ(before[0]->num_edits(), 3);
}

TEST_F(SqliteSessionStoreTest, SessionsOfAnotherModelAreRefusedNamingBothChecksums) {
  {
    auto registry = OpenRegistry(std::shared_ptr<SessionStore>(OpenStore()), "aaaa1111");
    ASSERT_OK(registry.status());
    ASSERT_OK((*registry)->Create("x", {}, "").status());
  }
  EXPECT_THAT(
      OpenRegistry(std::shared_ptr<SessionStore>(OpenStore()), "bbbb2222"),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               AllOf(HasSubstr("aaaa1111"), HasSubstr("bbbb2222"), HasSubstr("--state_dir"))));
  EXPECT_OK(OpenRegistry(std::shared_ptr<SessionStore>(OpenStore()), "aaaa1111").status());
}

TEST_F(SqliteSessionStoreTest, NewerSchemaIsRefused) {
  ASSERT_NE(OpenStore(), nullptr);
  ExecRaw("PRAGMA user_version=2");
  EXPECT_THAT(SqliteSessionStore::Open(path_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("schema version 2"), HasSubstr(path_))));
}

TEST_F(SqliteSessionStoreTest, ForeignDatabaseIsRefused) {
  ExecRaw("CREATE TABLE notes (x TEXT)");
  EXPECT_THAT(SqliteSessionStore::Open(path_), StatusIs(absl::StatusCode::kFailedPrecondition,
                                                        HasSubstr("not a romed session database")));
}

TEST_F(SqliteSessionStoreTest, FileThatIsNotSqliteIsAnError) {
  {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fputs("this is not a database, just some text long enough to matter............", f);
    std::fclose(f);
  }
  auto store = SqliteSessionStore::Open(path_);
  EXPECT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
}

// Fails the transaction at one named step, as a crash or a full disk would.
SqliteSessionStoreOptions FailAt(std::string step) {
  SqliteSessionStoreOptions options;
  options.fault_hook = [step](std::string_view at) {
    return at == step ? absl::UnavailableError("disk full (injected)") : absl::OkStatus();
  };
  return options;
}

TEST_F(SqliteSessionStoreTest, InterruptedEditLeavesNoPartialEntry) {
  SessionInfo info;
  info.id = "s-0123456789abcdef";
  info.model_checksum = "model-a";
  {
    auto store = OpenStore();
    ASSERT_OK(store->InsertSession(info));
    EditEntry first = MakeEntry({RandomDelta(0, 8, 4, 1)});
    first.edit_id = 1;
    info.next_edit_id = 2;
    ASSERT_OK(store->AppendEdit(info, first));
  }
  for (const char* step : {"update session", "insert edit", "insert delta 0", "insert delta 1",
                           "insert delta 2", "commit"}) {
    SCOPED_TRACE(step);
    auto store = OpenStore(FailAt(step));
    EditEntry entry =
        MakeEntry({RandomDelta(0, 8, 4, 2), RandomDelta(1, 8, 4, 3), RandomDelta(0, 8, 4, 4)});
    entry.edit_id = 2;
    SessionInfo next = info;
    next.next_edit_id = 3;
    EXPECT_THAT(store->AppendEdit(next, entry),
                StatusIs(absl::StatusCode::kUnavailable,
                         AllOf(HasSubstr("appending edit 2 to session s-0123456789abcdef"),
                               HasSubstr("injected"), HasSubstr(path_))));
    store.reset();
    EXPECT_EQ(QueryInt("SELECT count(*) FROM edits"), 1);
    EXPECT_EQ(QueryInt("SELECT count(*) FROM deltas"), 1);
    EXPECT_EQ(QueryInt("SELECT next_edit_id FROM sessions"), 2);
  }
}

// A real crash: the process dies (_exit, no unwinding, no ROLLBACK) in the
// middle of an edit's transaction; the reopened database has no trace of it.
TEST_F(SqliteSessionStoreTest, ProcessDeathMidEditLeavesNoPartialEntry) {
  SessionInfo info;
  info.id = "s-0123456789abcdef";
  {
    auto store = OpenStore();
    ASSERT_OK(store->InsertSession(info));
  }
  for (const char* step : {"insert delta 1", "commit"}) {
    SCOPED_TRACE(step);
    EXPECT_EXIT(
        {
          SqliteSessionStoreOptions options;
          options.fault_hook = [step](std::string_view at) {
            if (at == step) std::_Exit(7);
            return absl::OkStatus();
          };
          auto store = SqliteSessionStore::Open(path_, options);
          if (!store.ok()) std::_Exit(1);
          EditEntry entry = MakeEntry({RandomDelta(0, 8, 4, 1), RandomDelta(1, 8, 4, 2)});
          entry.edit_id = 1;
          SessionInfo next = info;
          next.next_edit_id = 2;
          (void)(*store)->AppendEdit(next, entry);
          std::_Exit(0);
        },
        ::testing::ExitedWithCode(7), "");
    auto store = OpenStore();
    auto loaded = store->LoadAll();
    ASSERT_OK(loaded.status());
    ASSERT_EQ(loaded->size(), 1u);
    EXPECT_TRUE((*loaded)[0].edits.empty());
    EXPECT_EQ((*loaded)[0].info.next_edit_id, 1);
    store.reset();
    EXPECT_EQ(QueryInt("SELECT count(*) FROM deltas"), 0);
  }
}

TEST_F(SqliteSessionStoreTest, InterruptedRevertAndDeleteLeaveEverything) {
  SessionInfo info;
  info.id = "s-0123456789abcdef";
  info.model_checksum = "model-a";
  {
    auto store = OpenStore();
    ASSERT_OK(store->InsertSession(info));
    for (int64_t id = 1; id <= 2; ++id) {
      EditEntry entry = MakeEntry({RandomDelta(0, 8, 4, id)});
      entry.edit_id = id;
      info.next_edit_id = id + 1;
      ASSERT_OK(store->AppendEdit(info, entry));
    }
  }
  for (const char* step : {"update session", "delete edit 2", "delete edit 1", "commit"}) {
    SCOPED_TRACE(step);
    auto store = OpenStore(FailAt(step));
    EXPECT_THAT(store->RemoveEdits(info, {2, 1}), StatusIs(absl::StatusCode::kUnavailable));
  }
  for (const char* step : {"delete deltas", "delete edits", "delete session", "commit"}) {
    SCOPED_TRACE(step);
    auto store = OpenStore(FailAt(step));
    EXPECT_THAT(store->DeleteSession(info.id), StatusIs(absl::StatusCode::kUnavailable));
  }
  EXPECT_EQ(QueryInt("SELECT count(*) FROM sessions"), 1);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM edits"), 2);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM deltas"), 2);
}

TEST_F(SqliteSessionStoreTest, WritesToMissingSessionsOrEditsAreNotFound) {
  auto store = OpenStore();
  SessionInfo info;
  info.id = "s-none";
  EditEntry entry = MakeEntry({RandomDelta(0, 8, 4, 1)});
  entry.edit_id = 1;
  EXPECT_THAT(store->AppendEdit(info, entry), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store->DeleteSession("s-none"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(store->InsertSession(info));
  EXPECT_THAT(store->InsertSession(info), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store->RemoveEdits(info, {7}), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(store->AppendEdit(info, entry));
  EXPECT_THAT(store->RemoveEdits(info, {1, 7}), StatusIs(absl::StatusCode::kNotFound));
  auto loaded = store->LoadAll();
  ASSERT_OK(loaded.status());
  ASSERT_EQ(loaded->size(), 1u);
  EXPECT_EQ((*loaded)[0].edits.size(), 1u);  // the failed RemoveEdits removed nothing
}

TEST_F(SqliteSessionStoreTest, CorruptRowsAreDataLossNamingTheSession) {
  SessionInfo info;
  info.id = "s-0123456789abcdef";
  {
    auto store = OpenStore();
    ASSERT_OK(store->InsertSession(info));
    EditEntry entry = MakeEntry({RandomDelta(0, 8, 4, 1)});
    entry.edit_id = 1;
    info.next_edit_id = 2;
    ASSERT_OK(store->AppendEdit(info, entry));
  }
  ExecRaw("UPDATE deltas SET u_size = 9");
  auto store = OpenStore();
  EXPECT_THAT(store->LoadAll(),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("s-0123456789abcdef"), HasSubstr("edit 1 delta 0 u"))));
}

}  // namespace
}  // namespace romed
