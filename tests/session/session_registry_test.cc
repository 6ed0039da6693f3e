// SessionRegistry: sessions, paging, limits, edit ids, revert, snapshots,
// per-session serialisation and failures of the store. The store is a real
// SqliteSessionStore in a temporary directory, wrapped to inject faults.
#include "server/session/session_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "server/session/sqlite_session_store.h"
#include "tests/session/session_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::FaultInjectingStore;
using ::romed::testing::IsOk;
using ::romed::testing::MakeEntry;
using ::romed::testing::RandomDelta;
using ::romed::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kM = 8;  // MLP width of the fabricated deltas
constexpr int64_t kC = 4;  // model width

class SessionRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = romed::testing::MakeTempDir("romed-session");
    ASSERT_FALSE(dir_.empty());
    Reopen();
  }

  // (Re)opens the store and a registry over it, as a restarted romed would.
  void Reopen() {
    registry_.reset();
    store_.reset();
    auto sqlite = SqliteSessionStore::OpenInStateDir(dir_);
    ASSERT_OK(sqlite.status());
    store_ =
        std::make_shared<FaultInjectingStore>(std::shared_ptr<SessionStore>(*std::move(sqlite)));
    SessionRegistryOptions options;
    options.limits = limits_;
    options.model_checksum = "base-checksum";
    options.clock = [this] { return absl::FromUnixSeconds(1700000000) + absl::Seconds(++ticks_); };
    auto registry = SessionRegistry::Open(store_, options);
    ASSERT_OK(registry.status());
    registry_ = *std::move(registry);
  }

  std::string NewSession(const std::string& name = "s") {
    auto session = registry_->Create(name, {}, "alice");
    EXPECT_OK(session.status());
    return session.ok() ? (*session)->info.id : "";
  }

  // Pushes an edit with one delta at `layer` drawn from `seed`.
  absl::StatusOr<EditEntry> Push(const std::string& id, uint64_t seed, int64_t layer = 0) {
    return registry_->PushEdit(id, [&](const SessionState&) -> absl::StatusOr<EditEntry> {
      return MakeEntry({RandomDelta(layer, kM, kC, seed)});
    });
  }

  std::vector<int64_t> StackIds(const std::string& id) {
    std::vector<int64_t> ids;
    auto edits = registry_->ListEdits(id);
    EXPECT_OK(edits.status());
    if (edits.ok()) {
      for (const EditEntry& e : *edits) ids.push_back(e.edit_id);
    }
    return ids;
  }

  std::string dir_;
  SessionLimits limits_;
  std::atomic<int64_t> ticks_{0};
  std::shared_ptr<FaultInjectingStore> store_;
  std::unique_ptr<SessionRegistry> registry_;
};

// ---------------------------------------------------------------- sessions

TEST_F(SessionRegistryTest, CreateThenGetReturnsTheSession) {
  auto created = registry_->Create("demo", {{"team", "kb"}}, "alice");
  ASSERT_OK(created.status());
  const SessionInfo& info = (*created)->info;
  EXPECT_THAT(info.id, ::testing::MatchesRegex("s-[0-9a-f]{16}"));
  EXPECT_EQ(info.name, "demo");
  EXPECT_EQ(info.labels.at("team"), "kb");
  EXPECT_EQ(info.owner, "alice");
  EXPECT_EQ(info.model_checksum, "base-checksum");
  EXPECT_EQ(info.created, info.updated);
  EXPECT_EQ((*created)->num_edits(), 0);
  EXPECT_EQ((*created)->last_edit_id(), 0);
  ASSERT_NE((*created)->view, nullptr);
  EXPECT_TRUE((*created)->view->empty());

  auto got = registry_->Get(info.id);
  ASSERT_OK(got.status());
  EXPECT_EQ(got->get(), created->get());
}

TEST_F(SessionRegistryTest, IdsAreUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 50; ++i) ids.insert(NewSession());
  EXPECT_EQ(ids.size(), 50u);
}

TEST_F(SessionRegistryTest, GetOfUnknownIdIsNotFound) {
  EXPECT_THAT(registry_->Get("s-0000000000000000"),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("session \"s-0000000000000000\" not found; create one with "
                                 "CreateSession")));
}

TEST_F(SessionRegistryTest, DeleteRemovesTheSessionButNotHeldSnapshots) {
  const std::string id = NewSession();
  ASSERT_OK(Push(id, 1).status());
  auto held = registry_->Get(id);
  ASSERT_OK(held.status());
  ASSERT_OK(registry_->Delete(id));
  EXPECT_THAT(registry_->Get(id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(registry_->Delete(id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Push(id, 2), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ((*held)->num_edits(), 1);  // the reader's snapshot lives on
  Reopen();
  EXPECT_THAT(registry_->Get(id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ(registry_->size(), 0);
}

TEST_F(SessionRegistryTest, NameAndLabelsAreLimited) {
  EXPECT_OK(registry_->Create(std::string(kMaxSessionNameBytes, 'n'), {}, ""));
  EXPECT_THAT(registry_->Create(std::string(kMaxSessionNameBytes + 1, 'n'), {}, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name is 129 bytes")));
  std::map<std::string, std::string> labels;
  for (size_t i = 0; i < kMaxSessionLabels; ++i) labels["k" + std::to_string(i)] = "v";
  EXPECT_OK(registry_->Create("", labels, ""));
  labels["one-more"] = "v";
  EXPECT_THAT(registry_->Create("", labels, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("33 labels")));
  EXPECT_THAT(registry_->Create("", {{"", "v"}}, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_EQ(registry_->size(), 2);
}

TEST_F(SessionRegistryTest, CreatePastMaxSessionsIsResourceExhausted) {
  limits_.max_sessions = 2;
  Reopen();
  const std::string first = NewSession();
  NewSession();
  EXPECT_THAT(registry_->Create("third", {}, ""),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max_sessions")));
  ASSERT_OK(registry_->Delete(first));
  EXPECT_OK(registry_->Create("third", {}, ""));
}

// ---------------------------------------------------------------- list

TEST_F(SessionRegistryTest, ListPagesInCreationOrder) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(NewSession("n" + std::to_string(i)));

  std::vector<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    auto page = registry_->List(2, token);
    ASSERT_OK(page.status());
    EXPECT_LE(page->sessions.size(), 2u);
    for (const auto& s : page->sessions) listed.push_back(s->info.id);
    token = page->next_page_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(listed, ids);

  auto all = registry_->List(0, "");
  ASSERT_OK(all.status());
  EXPECT_EQ(all->sessions.size(), 5u);
  EXPECT_THAT(all->next_page_token, IsEmpty());
}

TEST_F(SessionRegistryTest, ListPagesDoNotShiftWhenSessionsAreDeleted) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(NewSession());
  auto first = registry_->List(2, "");
  ASSERT_OK(first.status());
  ASSERT_OK(registry_->Delete(ids[1]));  // the last one of the first page
  ASSERT_OK(registry_->Delete(ids[0]));
  auto second = registry_->List(2, first->next_page_token);
  ASSERT_OK(second.status());
  ASSERT_EQ(second->sessions.size(), 2u);
  EXPECT_EQ(second->sessions[0]->info.id, ids[2]);
  EXPECT_EQ(second->sessions[1]->info.id, ids[3]);
  EXPECT_THAT(second->next_page_token, IsEmpty());
}

TEST_F(SessionRegistryTest, ListOrdersTiesByIdAndTokensSurviveRestart) {
  // A stopped clock: every session has the same creation time.
  registry_.reset();
  store_.reset();
  auto sqlite = SqliteSessionStore::OpenInStateDir(dir_);
  ASSERT_OK(sqlite.status());
  SessionRegistryOptions options;
  options.model_checksum = "base-checksum";
  options.clock = [] { return absl::FromUnixSeconds(1700000000); };
  auto registry = SessionRegistry::Open(std::shared_ptr<SessionStore>(*std::move(sqlite)), options);
  ASSERT_OK(registry.status());
  registry_ = *std::move(registry);
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(NewSession());
  std::sort(ids.begin(), ids.end());
  auto first = registry_->List(3, "");
  ASSERT_OK(first.status());
  Reopen();
  auto second = registry_->List(3, first->next_page_token);
  ASSERT_OK(second.status());
  std::vector<std::string> listed;
  for (const auto& s : first->sessions) listed.push_back(s->info.id);
  for (const auto& s : second->sessions) listed.push_back(s->info.id);
  EXPECT_EQ(listed, ids);
}

TEST_F(SessionRegistryTest, ListRejectsBadPageSizeAndToken) {
  EXPECT_THAT(registry_->List(-1, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_size is -1")));
  EXPECT_THAT(registry_->List(1001, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0..1000")));
  EXPECT_OK(registry_->List(1000, ""));
  EXPECT_THAT(registry_->List(10, "garbage!"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
  EXPECT_THAT(registry_->List(10, "djE6eDp5"),  // base64 of "v1:x:y"
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
}

// ---------------------------------------------------------------- edits

TEST_F(SessionRegistryTest, PushEditAssignsIncreasingIdsAndPublishesTheDelta) {
  const std::string id = NewSession();
  auto first = Push(id, 1);
  ASSERT_OK(first.status());
  EXPECT_EQ(first->edit_id, 1);
  auto second = Push(id, 2, /*layer=*/1);
  ASSERT_OK(second.status());
  EXPECT_EQ(second->edit_id, 2);
  EXPECT_GT(second->created, first->created);

  auto state = registry_->Get(id);
  ASSERT_OK(state.status());
  EXPECT_EQ((*state)->num_edits(), 2);
  EXPECT_EQ((*state)->last_edit_id(), 2);
  EXPECT_EQ((*state)->info.updated, second->created);
  EXPECT_EQ((*state)->info.next_edit_id, 3);
  EXPECT_EQ((*state)->view->rank(0), 1);
  EXPECT_EQ((*state)->view->rank(1), 1);
  ASSERT_EQ((*state)->view->deltas().size(), 2u);
  EXPECT_TRUE(torch::equal((*state)->view->deltas()[1].u, second->deltas[0].u));
}

TEST_F(SessionRegistryTest, EditIdsAreNeverReusedAfterRevertOrRestart) {
  const std::string id = NewSession();
  ASSERT_OK(Push(id, 1).status());
  ASSERT_OK(Push(id, 2).status());
  ASSERT_OK(registry_->Revert(id, RevertTarget::Pop(1)).status());
  auto third = Push(id, 3);
  ASSERT_OK(third.status());
  EXPECT_EQ(third->edit_id, 3);
  ASSERT_OK(registry_->Revert(id, RevertTarget::Pop(1)).status());
  Reopen();
  auto fourth = Push(id, 4);
  ASSERT_OK(fourth.status());
  EXPECT_EQ(fourth->edit_id, 4);
  EXPECT_THAT(StackIds(id), ElementsAre(1, 4));
}

TEST_F(SessionRegistryTest, PushEditPastTheLimitFailsBeforeComputing) {
  limits_.max_edits_per_session = 2;
  Reopen();
  const std::string id = NewSession();
  ASSERT_OK(Push(id, 1).status());
  ASSERT_OK(Push(id, 2).status());
  bool computed = false;
  auto third = registry_->PushEdit(id, [&](const SessionState&) -> absl::StatusOr<EditEntry> {
    computed = true;
    return MakeEntry({RandomDelta(0, kM, kC, 3)});
  });
  EXPECT_THAT(third,
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max_edits_per_session")));
  EXPECT_FALSE(computed);
  ASSERT_OK(registry_->Revert(id, RevertTarget::Pop(1)).status());
  EXPECT_OK(Push(id, 3).status());
}

TEST_F(SessionRegistryTest, FailedComputationChangesNothing) {
  const std::string id = NewSession();
  ASSERT_OK(Push(id, 1).status());
  auto before = registry_->Get(id);
  ASSERT_OK(before.status());
  auto failed = registry_->PushEdit(id, [](const SessionState&) -> absl::StatusOr<EditEntry> {
    return absl::InvalidArgumentError("subject \"x\" is not in the prompt");
  });
  EXPECT_THAT(failed, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subject")));
  auto empty = registry_->PushEdit(
      id, [](const SessionState&) -> absl::StatusOr<EditEntry> { return EditEntry{}; });
  EXPECT_THAT(empty, StatusIs(absl::StatusCode::kInternal, HasSubstr("no deltas")));
  auto mismatched = registry_->PushEdit(id, [](const SessionState&) -> absl::StatusOr<EditEntry> {
    return MakeEntry({RandomDelta(0, kM + 1, kC, 2)});  // u of another width at layer 0
  });
  EXPECT_THAT(mismatched, StatusIs(absl::StatusCode::kInternal, HasSubstr("edit view")));
  auto after = registry_->Get(id);
  ASSERT_OK(after.status());
  EXPECT_EQ(after->get(), before->get());
  auto next = Push(id, 2);
  ASSERT_OK(next.status());
  EXPECT_EQ(next->edit_id, 2);  // no id was consumed by the failures
}

// ---------------------------------------------------------------- revert

TEST_F(SessionRegistryTest, RevertPopRemovesTheTopEntries) {
  const std::string id = NewSession();
  for (int i = 1; i <= 4; ++i) ASSERT_OK(Push(id, i).status());
  auto reverted = registry_->Revert(id, RevertTarget::Pop(2));
  ASSERT_OK(reverted.status());
  EXPECT_THAT(*reverted, ElementsAre(4, 3));
  EXPECT_THAT(StackIds(id), ElementsAre(1, 2));
  auto state = registry_->Get(id);
  ASSERT_OK(state.status());
  EXPECT_EQ((*state)->view->deltas().size(), 2u);
  reverted = registry_->Revert(id, RevertTarget::Pop(2));
  ASSERT_OK(reverted.status());
  EXPECT_THAT(*reverted, ElementsAre(2, 1));
  EXPECT_THAT(StackIds(id), IsEmpty());
  state = registry_->Get(id);
  ASSERT_OK(state.status());
  EXPECT_TRUE((*state)->view->empty());
}

TEST_F(SessionRegistryTest, RevertKeepUpToRemovesLaterEntries) {
  const std::string id = NewSession();
  for (int i = 1; i <= 3; ++i) ASSERT_OK(Push(id, i).status());
  ASSERT_OK(registry_->Revert(id, RevertTarget::Pop(1)).status());
  ASSERT_OK(Push(id, 4).status());  // stack 1, 2, 4
  auto reverted = registry_->Revert(id, RevertTarget::KeepUpTo(4));
  ASSERT_OK(reverted.status());
  EXPECT_THAT(*reverted, IsEmpty());
  reverted = registry_->Revert(id, RevertTarget::KeepUpTo(1));
  ASSERT_OK(reverted.status());
  EXPECT_THAT(*reverted, ElementsAre(4, 2));
  EXPECT_THAT(StackIds(id), ElementsAre(1));
  reverted = registry_->Revert(id, RevertTarget::KeepUpTo(0));
  ASSERT_OK(reverted.status());
  EXPECT_THAT(*reverted, ElementsAre(1));
  EXPECT_THAT(StackIds(id), IsEmpty());
}

TEST_F(SessionRegistryTest, RevertErrorsChangeNothing) {
  const std::string id = NewSession();
  for (int i = 1; i <= 3; ++i) ASSERT_OK(Push(id, i).status());
  ASSERT_OK(registry_->Revert(id, RevertTarget::Pop(1)).status());  // stack 1, 2
  auto before = registry_->Get(id);
  ASSERT_OK(before.status());

  EXPECT_THAT(registry_->Revert(id, RevertTarget::Pop(0)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least 1")));
  EXPECT_THAT(registry_->Revert(id, RevertTarget::Pop(-2)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(registry_->Revert(id, RevertTarget::Pop(3)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot revert 3 edits")));
  EXPECT_THAT(registry_->Revert(id, RevertTarget::KeepUpTo(3)),  // reverted already
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("edits 1, 2")));
  EXPECT_THAT(registry_->Revert(id, RevertTarget::KeepUpTo(-1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keep_up_to_id is -1")));
  EXPECT_THAT(registry_->Revert(id, RevertTarget::KeepUpTo(99)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("edit 99")));
  EXPECT_THAT(registry_->Revert("s-ffffffffffffffff", RevertTarget::Pop(1)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("CreateSession")));

  auto after = registry_->Get(id);
  ASSERT_OK(after.status());
  EXPECT_EQ(after->get(), before->get());
  Reopen();
  EXPECT_THAT(StackIds(id), ElementsAre(1, 2));
}

// ---------------------------------------------------------------- snapshots

TEST_F(SessionRegistryTest, HeldSnapshotKeepsSeeingItsStack) {
  const std::string id = NewSession();
  ASSERT_OK(Push(id, 1).status());
  auto old = registry_->Get(id);
  ASSERT_OK(old.status());
  const std::shared_ptr<const EditView> old_view = (*old)->view;
  const torch::Tensor old_u = old_view->deltas()[0].u.clone();

  ASSERT_OK(Push(id, 2).status());
  ASSERT_OK(registry_->Revert(id, RevertTarget::KeepUpTo(0)).status());
  ASSERT_OK(Push(id, 3).status());

  EXPECT_EQ((*old)->num_edits(), 1);
  EXPECT_EQ((*old)->last_edit_id(), 1);
  EXPECT_EQ((*old)->view, old_view);
  ASSERT_EQ(old_view->deltas().size(), 1u);
  EXPECT_TRUE(torch::equal(old_view->deltas()[0].u, old_u));
  auto now = registry_->Get(id);
  ASSERT_OK(now.status());
  EXPECT_EQ((*now)->last_edit_id(), 3);
}

TEST_F(SessionRegistryTest, ReadsDoNotWaitForAnEditInProgress) {
  const std::string id = NewSession();
  ASSERT_OK(Push(id, 1).status());
  auto pushed =
      registry_->PushEdit(id, [&](const SessionState& current) -> absl::StatusOr<EditEntry> {
        // Called under the session's writer lock: reads must still answer, with
        // the state before this edit.
        auto during = registry_->Get(id);
        EXPECT_OK(during.status());
        if (during.ok()) {
          EXPECT_EQ((*during)->num_edits(), 1);
        }
        EXPECT_OK(registry_->List(10, "").status());
        EXPECT_OK(registry_->ListEdits(id).status());
        EXPECT_EQ(current.num_edits(), 1);
        return MakeEntry({RandomDelta(0, kM, kC, 2)});
      });
  ASSERT_OK(pushed.status());
}

// ---------------------------------------------------------------- writers

TEST_F(SessionRegistryTest, EditsToOneSessionRunOneAfterTheOther) {
  const std::string id = NewSession();
  absl::Notification first_computing, release_first, second_started;
  std::atomic<bool> second_computed_during_first{false};
  std::atomic<bool> second_computing{false};

  std::thread first([&] {
    auto entry = registry_->PushEdit(id, [&](const SessionState&) -> absl::StatusOr<EditEntry> {
      first_computing.Notify();
      release_first.WaitForNotification();
      second_computed_during_first = second_computing.load();
      return MakeEntry({RandomDelta(0, kM, kC, 1)});
    });
    EXPECT_OK(entry.status());
  });
  first_computing.WaitForNotification();

  int64_t second_saw_edits = -1;
  size_t second_saw_deltas = 0;
  std::thread second([&] {
    second_started.Notify();
    auto entry =
        registry_->PushEdit(id, [&](const SessionState& current) -> absl::StatusOr<EditEntry> {
          second_computing = true;
          second_saw_edits = current.num_edits();
          second_saw_deltas = current.view->deltas().size();
          return MakeEntry({RandomDelta(0, kM, kC, 2)});
        });
    EXPECT_OK(entry.status());
    if (entry.ok()) {
      EXPECT_EQ(entry->edit_id, 2);
    }
  });
  second_started.WaitForNotification();
  release_first.Notify();
  first.join();
  second.join();

  EXPECT_FALSE(second_computed_during_first);
  EXPECT_EQ(second_saw_edits, 1);  // computed on the state after the first edit
  EXPECT_EQ(second_saw_deltas, 1u);
  EXPECT_THAT(StackIds(id), ElementsAre(1, 2));
}

TEST_F(SessionRegistryTest, EditsToDifferentSessionsOverlap) {
  const std::string a = NewSession("a");
  const std::string b = NewSession("b");
  absl::Notification a_computing, b_computing;
  auto compute = [&](absl::Notification& mine, absl::Notification& other, uint64_t seed) {
    return [mine = &mine, other = &other, seed](const SessionState&) -> absl::StatusOr<EditEntry> {
      mine->Notify();
      // Each computation waits until the other has started: only possible if
      // both run at once. The timeout turns a serialisation bug into a failure.
      if (!other->WaitForNotificationWithTimeout(absl::Seconds(30))) {
        return absl::DeadlineExceededError("the other session's edit never started");
      }
      return MakeEntry({RandomDelta(0, kM, kC, seed)});
    };
  };
  std::thread ta([&] { EXPECT_OK(registry_->PushEdit(a, compute(a_computing, b_computing, 1))); });
  std::thread tb([&] { EXPECT_OK(registry_->PushEdit(b, compute(b_computing, a_computing, 2))); });
  ta.join();
  tb.join();
  EXPECT_THAT(StackIds(a), ElementsAre(1));
  EXPECT_THAT(StackIds(b), ElementsAre(1));
}

TEST_F(SessionRegistryTest, ManyThreadsEditingManySessionsKeepEveryStackConsistent) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(NewSession());
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      const std::string& id = ids[t % ids.size()];
      for (int i = 0; i < 5; ++i) EXPECT_OK(Push(id, t * 100 + i).status());
      EXPECT_OK(registry_->Revert(id, RevertTarget::Pop(1)).status());
    });
  }
  for (auto& thread : threads) thread.join();
  Reopen();
  for (const std::string& id : ids) {
    auto state = registry_->Get(id);
    ASSERT_OK(state.status());
    EXPECT_EQ((*state)->num_edits(), 8);  // 2 threads x (5 pushes - 1 revert)
    EXPECT_EQ((*state)->info.next_edit_id, 11);
    EXPECT_EQ((*state)->view->deltas().size(), 8u);
  }
}

// ---------------------------------------------------------------- store failures

TEST_F(SessionRegistryTest, FailedStoreWriteLeavesMemoryUnchanged) {
  const std::string id = NewSession();
  ASSERT_OK(Push(id, 1).status());
  ASSERT_OK(Push(id, 2).status());
  auto before = registry_->Get(id);
  ASSERT_OK(before.status());

  store_->FailNthWrite(1);
  EXPECT_THAT(Push(id, 3), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("injected")));
  store_->FailNthWrite(1);
  EXPECT_THAT(registry_->Revert(id, RevertTarget::Pop(1)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("injected")));
  store_->FailNthWrite(1);
  EXPECT_THAT(registry_->Delete(id), StatusIs(absl::StatusCode::kUnavailable));
  store_->FailNthWrite(1);
  EXPECT_THAT(registry_->Create("x", {}, ""), StatusIs(absl::StatusCode::kUnavailable));
  store_->FailNthWrite(0);

  auto after = registry_->Get(id);
  ASSERT_OK(after.status());
  EXPECT_EQ(after->get(), before->get());
  EXPECT_EQ(registry_->size(), 1);
  auto next = Push(id, 3);
  ASSERT_OK(next.status());
  EXPECT_EQ(next->edit_id, 3);
  Reopen();
  EXPECT_EQ(registry_->size(), 1);
  EXPECT_THAT(StackIds(id), ElementsAre(1, 2, 3));
}

TEST_F(SessionRegistryTest, FailingTheNthWriteOfASequenceKeepsEverythingBefore) {
  // Writes: create(1) push(2) push(3) revert(4) push(5); fail each in turn.
  for (int n = 1; n <= 5; ++n) {
    SCOPED_TRACE(n);
    TearDown();
    SetUp();
    store_->FailNthWrite(n);
    std::vector<absl::Status> results;
    auto created = registry_->Create("x", {}, "");
    results.push_back(created.status());
    const std::string id = created.ok() ? (*created)->info.id : "missing";
    results.push_back(Push(id, 1).status());
    results.push_back(Push(id, 2).status());
    results.push_back(registry_->Revert(id, RevertTarget::Pop(1)).status());
    results.push_back(Push(id, 3).status());
    const std::vector<int64_t> in_memory = n == 1 ? std::vector<int64_t>{} : StackIds(id);
    Reopen();
    EXPECT_FALSE(results[n - 1].ok());
    if (n == 1) {
      EXPECT_EQ(registry_->size(), 0);
      continue;
    }
    EXPECT_EQ(StackIds(id), in_memory);  // memory and disk agree after the fault
  }
}

}  // namespace
}  // namespace romed
