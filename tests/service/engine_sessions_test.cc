// Engine: sessions, Edit, Revert, ListEdits and ComputeStats on a tiny
// random checkpoint (no gRPC): lifecycle, exact revert, restart durability,
// isolation, snapshots during an edit, and every bad input with its code and
// no state change.
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/synchronization/notification.h"
#include "server/engine/engine.h"
#include "tests/service/edit_test_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::EditTestConfig;
using ::romed::testing::EditTestOptions;
using ::romed::testing::MakeEditEngine;
using ::romed::testing::Outputs;
using ::romed::testing::OutputsOf;
using ::romed::testing::QuickEdit;
using ::romed::testing::StatusIs;
using ::romed::testing::TestRewrite;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

class EngineSessionsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::WriteEditTestCheckpoint());
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override {
    engine_ = MakeEditEngine(*dir_, EditTestOptions());
    ASSERT_NE(engine_, nullptr);
  }

  std::string NewSession(const std::string& name = "") {
    CreateSessionRequest request;
    request.name = name;
    absl::StatusOr<std::shared_ptr<const SessionState>> session = engine_->CreateSession(request);
    EXPECT_OK(session.status());
    return session.ok() ? (*session)->info.id : "";
  }

  int64_t Depth(const std::string& id) {
    absl::StatusOr<std::shared_ptr<const SessionState>> session = engine_->GetSession(id);
    EXPECT_OK(session.status());
    return session.ok() ? (*session)->num_edits() : -1;
  }

  // Expects `request` to fail with `code` and a message containing
  // `message`, leaving the session as it was.
  void ExpectEditRejected(const TextEditRequest& request, absl::StatusCode code,
                          const std::string& message, const std::string& session_id) {
    const int64_t depth_before = Depth(session_id);
    const Outputs before = OutputsOf(*engine_, session_id);
    EXPECT_THAT(engine_->Edit(request), StatusIs(code, HasSubstr(message)));
    EXPECT_EQ(Depth(session_id), depth_before);
    EXPECT_TRUE(OutputsOf(*engine_, session_id) == before);
  }

  static std::string* dir_;
  std::unique_ptr<Engine> engine_;
};
std::string* EngineSessionsTest::dir_ = nullptr;

// ---------------------------------------------------------------- lifecycle

TEST_F(EngineSessionsTest, SessionsAreCreatedListedAndDeleted) {
  CreateSessionRequest request;
  request.name = "demo";
  request.labels = {{"team", "nlp"}};
  ASSERT_OK_AND_ASSIGN(auto created, engine_->CreateSession(request));
  EXPECT_EQ(created->info.name, "demo");
  EXPECT_EQ(created->info.labels.at("team"), "nlp");
  EXPECT_EQ(created->num_edits(), 0);
  const std::string second = NewSession("second");

  ASSERT_OK_AND_ASSIGN(auto got, engine_->GetSession(created->info.id));
  EXPECT_EQ(got->info.name, "demo");
  ASSERT_OK_AND_ASSIGN(SessionListPage page, engine_->ListSessions(1, ""));
  ASSERT_EQ(page.sessions.size(), 1u);
  EXPECT_EQ(page.sessions[0]->info.id, created->info.id);
  ASSERT_OK_AND_ASSIGN(SessionListPage rest, engine_->ListSessions(0, page.next_page_token));
  ASSERT_EQ(rest.sessions.size(), 1u);
  EXPECT_EQ(rest.sessions[0]->info.id, second);
  EXPECT_EQ(rest.next_page_token, "");

  ASSERT_OK(engine_->DeleteSession(created->info.id));
  EXPECT_THAT(engine_->GetSession(created->info.id), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(engine_->DeleteSession(created->info.id), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(EngineSessionsTest, EditPushesOneEntryWithWhatItDid) {
  const std::string id = NewSession();
  const Outputs before = OutputsOf(*engine_, id);
  ASSERT_OK_AND_ASSIGN(EditResult result, engine_->Edit(QuickEdit(id)));
  EXPECT_EQ(result.entry.edit_id, 1);
  EXPECT_EQ(result.session->num_edits(), 1);
  ASSERT_EQ(result.entry.results.size(), 1u);
  const RewriteResultRecord& r = result.entry.results[0];
  EXPECT_EQ(r.rewrite.subject, "Anna Berg");
  EXPECT_EQ(r.layer, 0);
  EXPECT_EQ(r.fact_token, "last");
  EXPECT_TRUE(r.identity_covariance);
  EXPECT_EQ(r.covariance_source, "identity");
  EXPECT_GT(r.delta_lambda_norm, 0);
  EXPECT_EQ(r.loss_curve.size(), 4u);
  EXPECT_GT(r.p_new_after, r.p_new_before);
  EXPECT_EQ(result.entry.request.hyperparameters.at("site_source"), "request");
  EXPECT_EQ(result.entry.request.hyperparameters.at("clamp_norm_factor"), "100");
  EXPECT_EQ(result.entry.request.hyperparameters.at("covariance"), "identity");
  EXPECT_EQ(result.entry.request.hyperparameters.at("v_num_grad_steps"), "4");
  EXPECT_EQ(result.entry.request.hyperparameters.at("key_form"), "consistent");
  EXPECT_FALSE(OutputsOf(*engine_, id) == before);
  EXPECT_TRUE(OutputsOf(*engine_, "") == OutputsOf(*engine_, NewSession()));

  ASSERT_OK_AND_ASSIGN(std::vector<EditEntry> stack, engine_->ListEdits(id));
  ASSERT_EQ(stack.size(), 1u);
  EXPECT_EQ(stack[0].edit_id, 1);
  EXPECT_EQ(stack[0].results[0].p_new_after, r.p_new_after);
}

TEST_F(EngineSessionsTest, SeveralRewritesAreOneStackEntry) {
  const std::string id = NewSession();
  ASSERT_OK_AND_ASSIGN(
      EditResult result,
      engine_->Edit(QuickEdit(id, {TestRewrite("Anna Berg", "Oslo"), TestRewrite("Bo Lund", "Rome")})));
  EXPECT_EQ(result.entry.results.size(), 2u);
  EXPECT_EQ(result.entry.deltas.size(), 2u);
  EXPECT_EQ(result.session->num_edits(), 1);
}

TEST_F(EngineSessionsTest, SiteComesFromTheDefaultThenTracingThenTheRequest) {
  const std::string id = NewSession();
  const TextEditRequest unsited = QuickEdit(id, {TestRewrite()}, true, /*site=*/false);
  ASSERT_OK_AND_ASSIGN(EditResult by_default, engine_->Edit(unsited));
  EXPECT_EQ(by_default.entry.results[0].layer, 1);  // round(17/48 * 2 layers)
  EXPECT_EQ(by_default.entry.results[0].fact_token, "subject_last");
  EXPECT_EQ(by_default.entry.request.hyperparameters.at("site_source"), "default");

  SiteRecommendation site;
  site.fact_token = "last";
  site.layer = 0;
  ASSERT_OK(engine_->edit_sites().Put(site));
  ASSERT_OK_AND_ASSIGN(EditResult traced, engine_->Edit(unsited));
  EXPECT_EQ(traced.entry.results[0].layer, 0);
  EXPECT_EQ(traced.entry.results[0].fact_token, "last");
  EXPECT_EQ(traced.entry.request.hyperparameters.at("site_source"), "tracing");

  TextEditRequest request = unsited;
  request.overrides.layer = 1;
  ASSERT_OK_AND_ASSIGN(EditResult overridden, engine_->Edit(request));
  EXPECT_EQ(overridden.entry.results[0].layer, 1);
  EXPECT_EQ(overridden.entry.results[0].fact_token, "last");
  EXPECT_EQ(overridden.entry.request.hyperparameters.at("site_source"),
            "layer: request, fact_token: tracing");
}

TEST_F(EngineSessionsTest, EditWithStatisticsComputesThemOnceAndSaysSo) {
  const std::string corpus_dir = testing::MakeTempDir("romed-stats-corpus");
  EngineOptions options = EditTestOptions();
  options.stats_corpus =
      testing::WriteTextFile(corpus_dir + "/corpus.txt", testing::StatsCorpusText());
  engine_ = MakeEditEngine(*dir_, options);
  ASSERT_NE(engine_, nullptr);
  const std::string id = NewSession();
  ASSERT_OK_AND_ASSIGN(EditResult first, engine_->Edit(QuickEdit(id, {TestRewrite()}, false)));
  const RewriteResultRecord& r = first.entry.results[0];
  EXPECT_FALSE(r.identity_covariance);
  EXPECT_THAT(r.covariance_source, AllOf(HasSubstr("corpus.txt"), HasSubstr("tokens")));
  EXPECT_EQ(first.entry.request.hyperparameters.at("covariance"), "corpus");

  ASSERT_OK_AND_ASSIGN(ComputeStatsResult stats, engine_->ComputeStats({r.layer, "", 0, false}));
  EXPECT_TRUE(stats.cached);  // the edit computed them
  EXPECT_EQ(stats.corpus_path, options.stats_corpus);
  EXPECT_GT(stats.token_count, 10000);
  std::filesystem::remove_all(corpus_dir);
}

// ---------------------------------------------------------------- exactness

TEST_F(EngineSessionsTest, RevertRestoresOutputsBitForBit) {
  const std::string id = NewSession();
  const Outputs empty = OutputsOf(*engine_, id);
  ASSERT_OK(engine_->Edit(QuickEdit(id, {TestRewrite("Anna Berg", "Oslo")})).status());
  const Outputs after_one = OutputsOf(*engine_, id);
  ASSERT_OK(engine_->Edit(QuickEdit(id, {TestRewrite("Anna Berg", "Rome")})).status());
  ASSERT_OK(engine_->Edit(QuickEdit(id, {TestRewrite("Bo Lund", "Paris")})).status());
  EXPECT_FALSE(OutputsOf(*engine_, id) == after_one);

  ASSERT_OK_AND_ASSIGN(RevertResult to_one, engine_->Revert(id, RevertTarget::KeepUpTo(1)));
  EXPECT_THAT(to_one.reverted_edit_ids, ElementsAre(3, 2));
  EXPECT_EQ(to_one.session->num_edits(), 1);
  EXPECT_TRUE(OutputsOf(*engine_, id) == after_one);

  ASSERT_OK_AND_ASSIGN(RevertResult popped, engine_->Revert(id, RevertTarget::Pop(1)));
  EXPECT_THAT(popped.reverted_edit_ids, ElementsAre(1));
  EXPECT_TRUE(OutputsOf(*engine_, id) == empty);
  EXPECT_TRUE(OutputsOf(*engine_, "") == empty);

  // Ids are never reused after a revert.
  ASSERT_OK_AND_ASSIGN(EditResult next, engine_->Edit(QuickEdit(id)));
  EXPECT_EQ(next.entry.edit_id, 4);
}

TEST_F(EngineSessionsTest, RestartedEngineRestoresSessionsWithIdenticalOutputs) {
  const std::string state_dir = testing::MakeTempDir("romed-state");
  std::string id;
  Outputs edited;
  std::vector<EditEntry> stack;
  {
    std::unique_ptr<Engine> first = MakeEditEngine(*dir_, EditTestOptions(state_dir));
    ASSERT_NE(first, nullptr);
    CreateSessionRequest request;
    request.name = "durable";
    ASSERT_OK_AND_ASSIGN(auto session, first->CreateSession(request));
    id = session->info.id;
    ASSERT_OK(first->Edit(QuickEdit(id, {TestRewrite("Anna Berg", "Oslo")})).status());
    ASSERT_OK(first->Edit(QuickEdit(id, {TestRewrite("Bo Lund", "Rome")})).status());
    edited = OutputsOf(*first, id);
    ASSERT_OK_AND_ASSIGN(stack, first->ListEdits(id));
  }
  std::unique_ptr<Engine> second = MakeEditEngine(*dir_, EditTestOptions(state_dir));
  ASSERT_NE(second, nullptr);
  ASSERT_OK_AND_ASSIGN(auto restored, second->GetSession(id));
  EXPECT_EQ(restored->info.name, "durable");
  EXPECT_EQ(restored->num_edits(), 2);
  EXPECT_TRUE(OutputsOf(*second, id) == edited);
  ASSERT_OK_AND_ASSIGN(std::vector<EditEntry> restored_stack, second->ListEdits(id));
  ASSERT_EQ(restored_stack.size(), stack.size());
  EXPECT_EQ(restored_stack[1].results[0].p_new_after, stack[1].results[0].p_new_after);
  EXPECT_EQ(restored_stack[1].request.hyperparameters, stack[1].request.hyperparameters);
  // A revert after the restart is as exact as before it.
  ASSERT_OK(second->Revert(id, RevertTarget::Pop(2)).status());
  EXPECT_TRUE(OutputsOf(*second, id) == OutputsOf(*second, ""));
  std::filesystem::remove_all(state_dir);
}

TEST_F(EngineSessionsTest, TwoSessionsNeverSeeEachOthersEdits) {
  const std::string a = NewSession("a"), b = NewSession("b");
  const Outputs base = OutputsOf(*engine_, "");
  ASSERT_OK(engine_->Edit(QuickEdit(a, {TestRewrite("Anna Berg", "Oslo")})).status());
  const Outputs a_edited = OutputsOf(*engine_, a);
  EXPECT_TRUE(OutputsOf(*engine_, b) == base);
  ASSERT_OK(engine_->Edit(QuickEdit(b, {TestRewrite("Anna Berg", "Rome")})).status());
  EXPECT_TRUE(OutputsOf(*engine_, a) == a_edited);
  EXPECT_FALSE(OutputsOf(*engine_, b) == a_edited);
  EXPECT_TRUE(OutputsOf(*engine_, "") == base);
}

TEST_F(EngineSessionsTest, GenerateDuringAnEditRunsOnTheSnapshotBeforeIt) {
  const std::string id = NewSession();
  const Outputs before = OutputsOf(*engine_, id);
  absl::Notification computing, release;
  std::thread editor([&] {
    // The edit's cancellation check runs inside the session's writer lock,
    // before the rewrite is computed: park the edit there.
    CancelCheck park = [&, parked = false]() mutable {
      if (!parked) {
        parked = true;
        computing.Notify();
        release.WaitForNotification();
      }
      return false;
    };
    EXPECT_OK(engine_->Edit(QuickEdit(id), park).status());
  });
  computing.WaitForNotification();
  EXPECT_TRUE(OutputsOf(*engine_, id) == before);
  EXPECT_EQ(Depth(id), 0);
  release.Notify();
  editor.join();
  EXPECT_EQ(Depth(id), 1);
  EXPECT_FALSE(OutputsOf(*engine_, id) == before);
}

TEST_F(EngineSessionsTest, CancelledEditChangesNothing) {
  const std::string id = NewSession();
  EXPECT_THAT(engine_->Edit(QuickEdit(id), [] { return true; }),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("unchanged")));
  EXPECT_EQ(Depth(id), 0);
  ASSERT_OK_AND_ASSIGN(EditResult next, engine_->Edit(QuickEdit(id)));
  EXPECT_EQ(next.entry.edit_id, 1);  // no id was consumed
}

// ---------------------------------------------------------------- bad input

TEST_F(EngineSessionsTest, EditRejectsMalformedRewritesAndChangesNothing) {
  const std::string id = NewSession();
  ASSERT_OK(engine_->Edit(QuickEdit(id)).status());  // a non-empty stack to protect
  auto with = [&](RewriteRecord r) { return QuickEdit(id, {r}); };
  ExpectEditRejected(with(TestRewrite("Anna Berg", "Oslo", "Anna Berg lives in")), kInvalid,
                     "write \"{}\" where the subject", id);
  ExpectEditRejected(with(TestRewrite("Anna Berg", "Oslo", "Bo Lund lives in")), kInvalid,
                     "is not in the prompt", id);
  ExpectEditRejected(with(TestRewrite("Anna Berg", "Oslo", "{} and {} live in")), kInvalid,
                     "2 \"{}\" placeholders", id);
  ExpectEditRejected(with(TestRewrite("Anna Berg", "")), kInvalid, "target_new is empty", id);
  ExpectEditRejected(with(TestRewrite("Anna Berg", "   ")), kInvalid, "target_new is blank", id);
  ExpectEditRejected(with(TestRewrite("", "Oslo")), kInvalid, "subject is empty", id);
  ExpectEditRejected(with(TestRewrite("Anna Berg", "Oslo\xff")), kInvalid, "UTF-8", id);
  ExpectEditRejected(with(TestRewrite("Anna Berg", std::string(130, 'x'))), kInvalid,
                     "exceed the model's context of 128", id);
  ExpectEditRejected(QuickEdit(id, {}), kInvalid, "no rewrites", id);
  ExpectEditRejected(QuickEdit(id, {TestRewrite(), TestRewrite("Bo Lund", "Rome", "{} {}")}),
                     kInvalid, "rewrites[1]: ", id);
}

TEST_F(EngineSessionsTest, EditRejectsHyperparametersOutOfRange) {
  const std::string id = NewSession();
  auto with = [&](auto set) {
    TextEditRequest request = QuickEdit(id);
    set(request.overrides);
    return request;
  };
  ExpectEditRejected(with([](RomeOverrides& o) { o.layer = 2; }), kInvalid,
                     "layer 2 is out of range: the model has 2 layers (0..1)", id);
  ExpectEditRejected(with([](RomeOverrides& o) { o.layer = -1; }), kInvalid, "layer -1", id);
  ExpectEditRejected(with([](RomeOverrides& o) { o.v_lr = -0.5; }), kInvalid, "v_lr must be > 0",
                     id);
  ExpectEditRejected(with([](RomeOverrides& o) { o.v_num_grad_steps = 0; }), kInvalid,
                     "v_num_grad_steps must be >= 1", id);
  ExpectEditRejected(with([](RomeOverrides& o) { o.v_num_grad_steps = 5000; }), kInvalid,
                     "v_num_grad_steps must be at most 1000", id);
  ExpectEditRejected(with([](RomeOverrides& o) { o.kl_factor = -1; }), kInvalid, "kl_factor", id);
  ExpectEditRejected(with([](RomeOverrides& o) { o.clamp_norm_factor = 0; }), kInvalid,
                     "clamp_norm_factor", id);
}

TEST_F(EngineSessionsTest, EditOnAMissingOrUnnamedSessionIsRejected) {
  EXPECT_THAT(engine_->Edit(QuickEdit("")),
              StatusIs(kInvalid, AllOf(HasSubstr("session_id is required"),
                                       HasSubstr("CreateSession"))));
  EXPECT_THAT(engine_->Edit(QuickEdit("s-0000000000000000")),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("s-0000000000000000"), HasSubstr("CreateSession"))));
  EXPECT_EQ(engine_->sessions().size(), 0);
}

TEST_F(EngineSessionsTest, LimitsAreResourceExhaustedAndChangeNothing) {
  const std::string id = NewSession();
  for (int i = 0; i < 4; ++i) ASSERT_OK(engine_->Edit(QuickEdit(id)).status());
  ExpectEditRejected(QuickEdit(id), absl::StatusCode::kResourceExhausted,
                     "--max_edits_per_session", id);
  for (int i = 1; i < 8; ++i) NewSession();
  EXPECT_THAT(engine_->CreateSession({}),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max_sessions")));
  EXPECT_EQ(engine_->sessions().size(), 8);

  ASSERT_OK(engine_->Revert(id, RevertTarget::Pop(1)).status());
  auto first = engine_->AcquireHeavyJob();
  auto second = engine_->AcquireHeavyJob();
  ASSERT_OK(first.status());
  ASSERT_OK(second.status());
  ExpectEditRejected(QuickEdit(id), absl::StatusCode::kResourceExhausted,
                     "--max_concurrent_heavy_jobs", id);
}

TEST_F(EngineSessionsTest, RevertRejectsWhatTheStackDoesNotHold) {
  const std::string id = NewSession();
  ASSERT_OK(engine_->Edit(QuickEdit(id)).status());
  const Outputs before = OutputsOf(*engine_, id);
  EXPECT_THAT(engine_->Revert(id, RevertTarget::Pop(2)),
              StatusIs(kInvalid, HasSubstr("cannot revert 2 edits")));
  EXPECT_THAT(engine_->Revert(id, RevertTarget::Pop(0)), StatusIs(kInvalid, HasSubstr("at least 1")));
  EXPECT_THAT(engine_->Revert(id, RevertTarget::KeepUpTo(7)),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("7")));
  EXPECT_THAT(engine_->Revert("s-0000000000000000", RevertTarget::Pop(1)),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(engine_->Revert("", RevertTarget::Pop(1)), StatusIs(kInvalid));
  EXPECT_EQ(Depth(id), 1);
  EXPECT_TRUE(OutputsOf(*engine_, id) == before);
}

TEST_F(EngineSessionsTest, MissingOrEmptyStatsCorpusIsAFailedPrecondition) {
  // The tiny checkpoint ships no stats_corpus.txt.
  const std::string id = NewSession();
  ExpectEditRejected(QuickEdit(id, {TestRewrite()}, /*identity=*/false),
                     absl::StatusCode::kFailedPrecondition, "--stats_corpus", id);
  ExpectEditRejected(QuickEdit(id, {TestRewrite()}, /*identity=*/false),
                     absl::StatusCode::kFailedPrecondition, "identity_covariance", id);

  const std::string corpus_dir = testing::MakeTempDir("romed-empty-corpus");
  EngineOptions options = EditTestOptions();
  options.stats_corpus = testing::WriteTextFile(corpus_dir + "/empty.txt", "");
  engine_ = MakeEditEngine(*dir_, options);
  const std::string other = NewSession();
  ExpectEditRejected(QuickEdit(other, {TestRewrite()}, /*identity=*/false),
                     absl::StatusCode::kFailedPrecondition, "empty", other);
  std::filesystem::remove_all(corpus_dir);
}

// ---------------------------------------------------------------- ComputeStats

TEST_F(EngineSessionsTest, ComputeStatsStreamsProgressThenServesTheCache) {
  // Statistics of any corpus but the default one are cached on disk only.
  const std::string state_dir = testing::MakeTempDir("romed-stats-state");
  engine_ = MakeEditEngine(*dir_, EditTestOptions(state_dir));
  ASSERT_NE(engine_, nullptr);
  const std::string corpus_dir = testing::MakeTempDir("romed-stats");
  const std::string corpus =
      testing::WriteTextFile(corpus_dir + "/corpus.txt", testing::StatsCorpusText());
  std::vector<CovarianceProgress> progress;
  ComputeStatsRequest request{0, corpus, 0, false};
  ASSERT_OK_AND_ASSIGN(ComputeStatsResult computed,
                       engine_->ComputeStats(request, [&](const CovarianceProgress& p) {
                         progress.push_back(p);
                       }));
  EXPECT_FALSE(computed.cached);
  ASSERT_GE(progress.size(), 2u);
  EXPECT_EQ(progress.back().tokens_done, progress.back().tokens_total);
  EXPECT_EQ(computed.token_count, progress.back().tokens_total);
  EXPECT_LT(progress.front().tokens_done, progress.back().tokens_done);

  progress.clear();
  ASSERT_OK_AND_ASSIGN(ComputeStatsResult again,
                       engine_->ComputeStats(request, [&](const CovarianceProgress& p) {
                         progress.push_back(p);
                       }));
  EXPECT_TRUE(again.cached);
  EXPECT_TRUE(progress.empty());
  request.recompute = true;
  ASSERT_OK_AND_ASSIGN(ComputeStatsResult recomputed, engine_->ComputeStats(request));
  EXPECT_FALSE(recomputed.cached);
  request = {0, corpus, 1000, false};
  ASSERT_OK_AND_ASSIGN(ComputeStatsResult truncated, engine_->ComputeStats(request));
  EXPECT_EQ(truncated.token_count, 1000);
  EXPECT_THAT(truncated.cache_path, HasSubstr(state_dir + "/stats/"));
  std::filesystem::remove_all(corpus_dir);
  std::filesystem::remove_all(state_dir);
}

TEST_F(EngineSessionsTest, ComputeStatsRejectsBadRequests) {
  const std::string corpus_dir = testing::MakeTempDir("romed-stats-bad");
  EXPECT_THAT(engine_->ComputeStats({2, "", 0, false}),
              StatusIs(kInvalid, HasSubstr("layer 2 is out of range")));
  EXPECT_THAT(engine_->ComputeStats({0, "", -1, false}), StatusIs(kInvalid, HasSubstr("max_tokens")));
  EXPECT_THAT(engine_->ComputeStats({0, corpus_dir + "/nope.txt", 0, false}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("does not exist")));
  const std::string empty = testing::WriteTextFile(corpus_dir + "/empty.txt", "");
  EXPECT_THAT(engine_->ComputeStats({0, empty, 0, false}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("empty")));
  EXPECT_THAT(engine_->ComputeStats({0, corpus_dir, 0, false}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("empty")));
  const std::string corpus =
      testing::WriteTextFile(corpus_dir + "/corpus.txt", testing::StatsCorpusText());
  EXPECT_THAT(engine_->ComputeStats({0, corpus, 0, false}, nullptr, [] { return true; }),
              StatusIs(absl::StatusCode::kCancelled));
  std::filesystem::remove_all(corpus_dir);
}

}  // namespace
}  // namespace romed
