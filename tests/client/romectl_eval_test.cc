// `romectl eval` and the EvalRunner against a fake server with a tiny world
// of facts whose scores are known exactly: how the command line parses, the
// metrics of both modes (checked against values worked out by hand from the
// fake's rules), refused cases and bad records counted, sessions cleaned up,
// errors that end a run, and the JSON, CSV and SVG outputs.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/eval_metrics.h"
#include "client/eval_plot.h"
#include "client/eval_report.h"
#include "client/eval_runner.h"
#include "client/romectl_args.h"
#include "client/romectl_commands.h"
#include "tests/testing/status_matchers.h"

namespace romed::client {
namespace {

using ::romed::testing::StatusIs;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// The fake's world. Original model: a continuation " oldN" has p 0.5, any
// other p 0.1. A session's edit of subject S to target T: in prompts that
// contain S, " T" has p 0.9 and the others 0.05; in prompts that contain only
// S's first word (a neighbour sharing a name part) " T" has p 0.7 (a leak).
// Edit refuses (INVALID_ARGUMENT) target "refused". Generate answers
// " a b c d" on the original model and " x x x x" in a session with edits.
class FakeEvalEditor final : public romed::v1::ModelEditor::Service {
 public:
  void FailSessionScoresWith(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    fail_session_scores_ = status;
  }
  int live_sessions() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(sessions_.size());
  }
  int sessions_created() const {
    absl::MutexLock lock(&mu_);
    return created_;
  }
  std::vector<romed::v1::GenerateRequest> generate_requests() const {
    absl::MutexLock lock(&mu_);
    return generates_;
  }
  romed::v1::EditRequest last_edit() const {
    absl::MutexLock lock(&mu_);
    return last_edit_;
  }
  // Advertises max_concurrent_requests = `limit`; Generate then waits (up
  // to 2 s) for a second call to arrive until two have overlapped once, so
  // max_in_flight() shows whether the client overlaps its calls.
  void AllowConcurrentRequests(int64_t limit) {
    absl::MutexLock lock(&mu_);
    max_concurrent_requests_ = limit;
  }
  int max_in_flight() const {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }

  grpc::Status GetModelInfo(grpc::ServerContext*, const romed::v1::GetModelInfoRequest*,
                            romed::v1::ModelInfo* reply) override {
    reply->set_model_dir("/models/fake");
    reply->set_n_layer(2);
    reply->set_context_length(64);
    reply->mutable_limits()->set_max_new_tokens(512);
    absl::MutexLock lock(&mu_);
    reply->mutable_limits()->set_max_concurrent_requests(max_concurrent_requests_);
    return grpc::Status::OK;
  }
  grpc::Status Tokenize(grpc::ServerContext*, const romed::v1::TokenizeRequest* request,
                        romed::v1::TokenizeResponse* reply) override {
    for (char ch : request->text()) reply->add_ids(static_cast<unsigned char>(ch));
    return grpc::Status::OK;
  }
  grpc::Status CreateSession(grpc::ServerContext*, const romed::v1::CreateSessionRequest*,
                             romed::v1::Session* reply) override {
    absl::MutexLock lock(&mu_);
    const std::string id = absl::StrCat("s-", ++created_);
    sessions_[id];
    reply->set_id(id);
    return grpc::Status::OK;
  }
  grpc::Status DeleteSession(grpc::ServerContext*, const romed::v1::DeleteSessionRequest* request,
                             romed::v1::DeleteSessionResponse*) override {
    absl::MutexLock lock(&mu_);
    if (sessions_.erase(request->id()) == 0) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such session");
    }
    return grpc::Status::OK;
  }
  grpc::Status Edit(grpc::ServerContext*, const romed::v1::EditRequest* request,
                    romed::v1::EditResponse* reply) override {
    absl::MutexLock lock(&mu_);
    last_edit_ = *request;
    auto it = sessions_.find(request->session_id());
    if (it == sessions_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no session");
    const romed::v1::Rewrite& rewrite = request->rewrites(0);
    if (rewrite.target_new() == "refused") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "target refused");
    }
    it->second.push_back(rewrite);
    reply->mutable_edit()->set_total_time_s(0.25);
    reply->mutable_edit()->add_rewrites()->set_layer(1);
    (*reply->mutable_edit()->mutable_hyperparameters())["site_source"] = "request";
    return grpc::Status::OK;
  }
  grpc::Status Score(grpc::ServerContext*, const romed::v1::ScoreRequest* request,
                     romed::v1::ScoreResponse* reply) override {
    absl::MutexLock lock(&mu_);
    std::vector<romed::v1::Rewrite> edits;
    if (!request->session_id().empty()) {
      if (fail_session_scores_.has_value()) return *fail_session_scores_;
      auto it = sessions_.find(request->session_id());
      if (it == sessions_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no session");
      edits = it->second;
    }
    for (const std::string& c : request->continuations()) {
      romed::v1::ContinuationScore* score = reply->add_scores();
      score->set_continuation(c);
      score->set_mean_logprob(std::log(Probability(request->prompt(), c, edits)));
    }
    return grpc::Status::OK;
  }
  grpc::Status Generate(grpc::ServerContext*, const romed::v1::GenerateRequest* request,
                        romed::v1::GenerateResponse* reply) override {
    absl::MutexLock lock(&mu_);
    generates_.push_back(*request);
    if (max_concurrent_requests_ > 0) {
      // Until two calls have overlapped once, each waits for another.
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
      mu_.AwaitWithTimeout(
          absl::Condition(+[](int* max_in_flight) { return *max_in_flight >= 2; },
                          &max_in_flight_),
          absl::Seconds(2));
      --in_flight_;
    }
    const bool edited = !request->session_id().empty() && !sessions_[request->session_id()].empty();
    reply->set_text(edited ? " x x x x" : " a b c d");
    return grpc::Status::OK;
  }

 private:
  static double Probability(const std::string& prompt, const std::string& continuation,
                            const std::vector<romed::v1::Rewrite>& edits) {
    double p = absl::StartsWith(continuation, " old") ? 0.5 : 0.1;
    for (const romed::v1::Rewrite& edit : edits) {
      const bool target = continuation == " " + edit.target_new();
      const std::string first_word = edit.subject().substr(0, edit.subject().find(' '));
      if (absl::StrContains(prompt, edit.subject())) {
        p = target ? 0.9 : 0.05;
      } else if (absl::StrContains(prompt, first_word) && target) {
        p = 0.7;
      }
    }
    return p;
  }

  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<romed::v1::Rewrite>> sessions_ ABSL_GUARDED_BY(mu_);
  int created_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<grpc::Status> fail_session_scores_ ABSL_GUARDED_BY(mu_);
  std::vector<romed::v1::GenerateRequest> generates_ ABSL_GUARDED_BY(mu_);
  romed::v1::EditRequest last_edit_ ABSL_GUARDED_BY(mu_);
  int64_t max_concurrent_requests_ ABSL_GUARDED_BY(mu_) = 0;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

Json Record(int64_t id, const std::string& subject, const std::string& target_new,
            std::vector<std::string> paraphrases, std::vector<std::string> neighbours) {
  return {{"case_id", id},
          {"requested_rewrite",
           {{"prompt", "{} lives in"},
            {"subject", subject},
            {"target_new", {{"str", target_new}}},
            {"target_true", {{"str", absl::StrCat("old", id)}}}}},
          {"paraphrase_prompts", paraphrases},
          {"neighborhood_prompts", neighbours},
          {"generation_prompts", {absl::StrCat("G", id)}}};
}

// Case 10: Ann Lee, one neighbour shares her first name (Ann Kim: a leak).
// Case 11: Cid Moe, no leak. Case 12: refused by Edit. Record 3: bad.
Json Dataset() {
  Json bad = Record(13, "Bad Record", "new13", {}, {});
  bad["requested_rewrite"]["target_true"] = 5;
  return Json::array({Record(10, "Ann Lee", "new10", {"Ann Lee resides in", "Home of Ann Lee:"},
                             {"Bob Ray lives in", "Ann Kim lives in"}),
                      Record(11, "Cid Moe", "new11", {"Cid Moe resides in"}, {"Dee Fox lives in"}),
                      Record(12, "Eve Orr", "refused", {}, {}), bad});
}

class RomectlEvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&editor_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    target_ = absl::StrCat("127.0.0.1:", port);
    client_ = std::make_unique<RomedClient>(server_->InProcessChannel({}), absl::Seconds(10));
    dir_ = ::testing::TempDir();
    dataset_ = dir_ + "/eval_test_counterfact.json";
    std::ofstream(dataset_, std::ios::trunc) << Dataset().dump();
  }
  void TearDown() override { server_->Shutdown(); }

  std::vector<CounterFactCase> Cases() {
    absl::StatusOr<CounterFactDataset> data = ReadCounterFact(dataset_);
    EXPECT_TRUE(data.ok());
    return data->cases;
  }

  EvalReport RunOk(EvalOptions options) {
    absl::StatusOr<EvalReport> report = EvalRunner(*client_, options).Run(Cases(), nullptr);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *std::move(report) : EvalReport{};
  }

  int Romectl(std::vector<std::string> args, std::string* out, std::string* err) {
    args.insert(args.begin(), {"romectl", "--server=" + target_});
    std::ostringstream o, e;
    const int rc = RomectlMain(args, o, e);
    *out = o.str();
    *err = e.str();
    return rc;
  }

  FakeEvalEditor editor_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<RomedClient> client_;
  std::string target_, dir_, dataset_;
};

// ---------------------------------------------------------------- parsing

absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "romectl");
  return ParseInvocation(args);
}

TEST(EvalParseTest, ReadsModesOutputsAndEditFlags) {
  ASSERT_OK_AND_ASSIGN(
      Invocation inv,
      Parse({"eval", "--dataset=cf.json", "--n=5", "--sequential", "--every=2", "--json=r.json",
             "--csv=r.csv", "--svg=r.svg", "--layer=3", "--fact_token=last",
             "--clamp_norm_factor=1.5", "--gen_length=0", "--seed=4", "--noprogress"}));
  EXPECT_EQ(inv.command, Command::kEval);
  EXPECT_FALSE(inv.json);
  const EvalInvocation& e = inv.eval;
  EXPECT_EQ(e.dataset, "cf.json");
  EXPECT_EQ(e.n, 5);
  EXPECT_EQ(e.options.mode, EvalMode::kSequential);
  EXPECT_EQ(e.options.every, 2);
  EXPECT_EQ(e.json_path, "r.json");
  EXPECT_EQ(e.csv_path, "r.csv");
  EXPECT_EQ(e.svg_path, "r.svg");
  EXPECT_EQ(e.options.hparams.layer(), 3);
  EXPECT_EQ(e.options.hparams.fact_token(), romed::v1::FACT_TOKEN_LAST);
  EXPECT_FLOAT_EQ(e.options.hparams.clamp_norm_factor(), 1.5f);
  EXPECT_FALSE(e.options.hparams.has_v_lr());  // not given: the server's default
  EXPECT_EQ(e.options.gen_length, 0);
  EXPECT_EQ(e.options.seed, 4u);
  EXPECT_FALSE(e.progress);
}

TEST(EvalParseTest, DefaultsToSessionPerCaseOverAllRecords) {
  ASSERT_OK_AND_ASSIGN(Invocation inv, Parse({"--json", "eval", "--dataset=cf.json"}));
  EXPECT_TRUE(inv.json);
  EXPECT_EQ(inv.eval.n, 0);
  EXPECT_EQ(inv.eval.options.mode, EvalMode::kSessionPerCase);
  EXPECT_EQ(inv.eval.options.gen_length, 100);
  EXPECT_FALSE(inv.eval.options.hparams.has_layer());
  ASSERT_OK_AND_ASSIGN(inv, Parse({"eval", "--dataset=cf.json", "--session-per-case"}));
  EXPECT_EQ(inv.eval.options.mode, EvalMode::kSessionPerCase);
}

TEST(EvalParseTest, BadCommandLinesAreUsageErrors) {
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(Parse({"eval"}), StatusIs(kInvalid, HasSubstr("--dataset")));
  EXPECT_THAT(Parse({"eval", "--dataset=f", "--sequential", "--session_per_case"}),
              StatusIs(kInvalid, HasSubstr("not both")));
  EXPECT_THAT(Parse({"eval", "--dataset=f", "--every=3"}),
              StatusIs(kInvalid, HasSubstr("--every is for --sequential")));
  EXPECT_THAT(Parse({"eval", "--dataset=f", "--svg=p.svg"}),
              StatusIs(kInvalid, HasSubstr("--svg is for --sequential")));
  EXPECT_THAT(Parse({"eval", "--dataset=f", "--sequential", "--every=0"}),
              StatusIs(kInvalid, HasSubstr("--every must be >= 1")));
  EXPECT_THAT(Parse({"eval", "--dataset=f", "--n=0"}), StatusIs(kInvalid, HasSubstr("--n")));
  EXPECT_THAT(Parse({"eval", "--dataset=f", "--gen_length=-1"}),
              StatusIs(kInvalid, HasSubstr("--gen_length")));
  EXPECT_THAT(Parse({"eval", "--dataset=f", "--fact_token=middle"}),
              StatusIs(kInvalid, HasSubstr("--fact_token")));
  EXPECT_THAT(Parse({"info", "--json=out.json"}), StatusIs(kInvalid, HasSubstr("only eval")));
  EXPECT_THAT(Parse({"edit", "--dataset=f"}), StatusIs(kInvalid, HasSubstr("does not take")));
}

// ---------------------------------------------------------------- the runner

TEST_F(RomectlEvalTest, SessionPerCaseScoresEachEditInItsOwnSession) {
  EvalOptions options;
  options.hparams.set_layer(1);
  const EvalReport report = RunOk(options);
  ASSERT_EQ(report.cases.size(), 3u);
  EXPECT_EQ(report.failed_cases, 1);
  EXPECT_THAT(report.cases[2].error, HasSubstr("INVALID_ARGUMENT: target refused"));
  EXPECT_EQ(editor_.sessions_created(), 3);  // one per case, the refused one too
  EXPECT_EQ(editor_.live_sessions(), 0);
  EXPECT_EQ(editor_.last_edit().hparams().layer(), 1);

  // Unedited: P(old) 0.5 > P(new) 0.1 everywhere.
  const MetricSummary before = report.Unedited();
  EXPECT_EQ(before.cases, 2);
  EXPECT_DOUBLE_EQ(*before.es, 0);
  EXPECT_DOUBLE_EQ(*before.ps, 0);
  EXPECT_DOUBLE_EQ(*before.ns, 1);
  EXPECT_NEAR(*before.em, 0.1 - 0.5, 1e-9);
  EXPECT_NEAR(*before.nm, 0.5 - 0.1, 1e-9);
  EXPECT_DOUBLE_EQ(*before.s, 0);

  // Edited: ES 1 (0.9 vs 0.05); PS 1; NS: case 10 leaks to Ann Kim (0.7 >
  // 0.5) so 1/2, case 11 keeps its neighbour: mean 0.75.
  const MetricSummary after = report.Edited();
  EXPECT_DOUBLE_EQ(*after.es, 1);
  EXPECT_NEAR(*after.em, 0.9 - 0.05, 1e-9);
  EXPECT_DOUBLE_EQ(*after.ps, 1);
  EXPECT_DOUBLE_EQ(*after.ns, 0.75);
  // NM: case 10 ((0.5 - 0.1) + (0.5 - 0.7)) / 2 = 0.1; case 11 0.4.
  EXPECT_NEAR(*after.nm, (0.1 + 0.4) / 2, 1e-9);
  EXPECT_NEAR(*after.s, 3 / (1 + 1 + 1 / 0.75), 1e-12);
  EXPECT_DOUBLE_EQ(report.cases[0].edit_server_s, 0.25);
  EXPECT_EQ(report.cases[0].layer, 1);
  EXPECT_EQ(report.cases[0].site_source, "request");
}

TEST_F(RomectlEvalTest, GenerationEntropyComesFromSampledTextsOfBothModels) {
  const EvalReport report = RunOk(EvalOptions{});
  const CaseResult& c = report.cases[0];
  ASSERT_EQ(c.before.generations.size(), 1u);
  EXPECT_EQ(c.before.generations[0], "G10 a b c d");
  EXPECT_EQ(c.after->generations[0], "G10 x x x x");
  EXPECT_DOUBLE_EQ(*report.Unedited().ge, GenerationEntropy("G10 a b c d"));
  EXPECT_DOUBLE_EQ(*report.Edited().ge, GenerationEntropy("G10 x x x x"));
  EXPECT_LT(*report.Edited().ge, *report.Unedited().ge);
  // The reference's sampling: top-k 5, temperature 1, 100 tokens with the
  // prompt, capped at the context of 64; the same seed before and after.
  const std::vector<romed::v1::GenerateRequest> requests = editor_.generate_requests();
  ASSERT_GE(requests.size(), 2u);
  EXPECT_EQ(requests[0].max_new_tokens(), 64 - 3);  // "G10" is 3 tokens here
  EXPECT_EQ(requests[0].sampling().top_k(), 5);
  EXPECT_FLOAT_EQ(requests[0].sampling().temperature(), 1.0f);
  EXPECT_TRUE(requests[0].ignore_eos());
  EXPECT_TRUE(requests[0].session_id().empty());
  const auto edited = std::find_if(requests.begin(), requests.end(), [](const auto& r) {
    return r.prompt() == "G10" && !r.session_id().empty();
  });
  ASSERT_NE(edited, requests.end());
  EXPECT_EQ(edited->sampling().seed(), requests[0].sampling().seed());
}

// Generations go out several at a time (the server batches them) when the
// server allows concurrent requests, and come back in the prompts' order.
TEST_F(RomectlEvalTest, GenerationsOverlapAndKeepThePromptsOrder) {
  Json record = Record(20, "Gus Pye", "new20", {}, {});
  record["generation_prompts"] = {"P0", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9"};
  std::ofstream(dataset_, std::ios::trunc) << Json::array({record}).dump();
  editor_.AllowConcurrentRequests(16);
  const EvalReport report = RunOk(EvalOptions{});
  ASSERT_EQ(report.cases.size(), 1u);
  const CaseResult& c = report.cases[0];
  ASSERT_EQ(c.before.generations.size(), 10u);
  ASSERT_TRUE(c.after.has_value());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(c.before.generations[i], absl::StrCat("P", i, " a b c d"));
    EXPECT_EQ(c.after->generations[i], absl::StrCat("P", i, " x x x x"));
  }
  EXPECT_GE(editor_.max_in_flight(), 2);
}

// Without a known limit (0), one generation at a time, in order.
TEST_F(RomectlEvalTest, GenerationsRunOneAtATimeWithoutAKnownLimit) {
  Json record = Record(21, "Hal Ito", "new21", {}, {});
  record["generation_prompts"] = {"Q0", "Q1", "Q2"};
  std::ofstream(dataset_, std::ios::trunc) << Json::array({record}).dump();
  const EvalReport report = RunOk(EvalOptions{});
  ASSERT_EQ(report.cases.size(), 1u);
  ASSERT_EQ(report.cases[0].before.generations.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(report.cases[0].before.generations[i], absl::StrCat("Q", i, " a b c d"));
  }
}

TEST_F(RomectlEvalTest, NoGenerationsWhenGenLengthIsZero) {
  EvalOptions options;
  options.gen_length = 0;
  const EvalReport report = RunOk(options);
  EXPECT_TRUE(editor_.generate_requests().empty());
  EXPECT_FALSE(report.Edited().ge.has_value());
}

TEST_F(RomectlEvalTest, SequentialStacksEditsAndTracksRetentionAtEachCheckpoint) {
  EvalOptions options;
  options.mode = EvalMode::kSequential;
  options.every = 1;
  const EvalReport report = RunOk(options);
  EXPECT_EQ(editor_.sessions_created(), 1);
  EXPECT_EQ(editor_.live_sessions(), 0);
  ASSERT_EQ(report.checkpoints.size(), 3u);

  // After edit 1 (Ann Lee): over case 10 ES 1, PS 1, NS 1/2. Retention:
  // cases 11 and 12 keep their own 2 + 1 prompts; neighbourhood prompts keep
  // Bob Ray and Dee Fox, lose Ann Kim: 5 of 6.
  const Checkpoint& first = report.checkpoints[0];
  EXPECT_EQ(first.edits, 1);
  EXPECT_DOUBLE_EQ(*first.edited.ns, 0.5);
  EXPECT_EQ(first.unedited_facts.held_before, 3);
  EXPECT_EQ(first.unedited_facts.kept, 3);
  EXPECT_EQ(first.neighborhood.held_before, 3);
  EXPECT_EQ(first.neighborhood.kept, 2);
  EXPECT_NEAR(*first.Retention().Share(), 5.0 / 6, 1e-12);

  // After edit 2 (Cid Moe): case 12's prompt kept; neighbours 2 of 3.
  const Checkpoint& second = report.checkpoints[1];
  EXPECT_EQ(second.edits, 2);
  EXPECT_DOUBLE_EQ(*second.edited.ns, 0.75);
  EXPECT_EQ(second.unedited_facts.held_before, 1);
  EXPECT_EQ(second.unedited_facts.kept, 1);
  EXPECT_EQ(second.neighborhood.kept, 2);

  // Case 12 is refused: still 2 edits, nothing left unedited.
  const Checkpoint& last = report.checkpoints[2];
  EXPECT_EQ(last.edits, 2);
  EXPECT_EQ(last.unedited_facts.held_before, 0);
  EXPECT_NEAR(*last.Retention().Share(), 2.0 / 3, 1e-12);
  EXPECT_EQ(RetentionFallsBelow(report, 0.95), 1);
  EXPECT_EQ(RetentionFallsBelow(report, 0.6), std::nullopt);

  EXPECT_EQ(report.failed_cases, 1);
  EXPECT_NEAR(*report.Final().s, 3 / (1 + 1 + 1 / 0.75), 1e-12);
  ASSERT_TRUE(report.cases[0].after.has_value());
  EXPECT_TRUE(report.cases[0].after->generations.empty());  // measured right after, no GE
  EXPECT_EQ(report.cases[0].final_state->generations.size(), 1u);
}

TEST_F(RomectlEvalTest, AServerFailureEndsTheRunAndDeletesItsSession) {
  editor_.FailSessionScoresWith(grpc::Status(grpc::StatusCode::UNAVAILABLE, "went away"));
  EvalOptions options;
  options.mode = EvalMode::kSequential;
  EXPECT_THAT(EvalRunner(*client_, options).Run(Cases(), nullptr),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("went away")));
  EXPECT_EQ(editor_.live_sessions(), 0);
  options.mode = EvalMode::kSessionPerCase;
  EXPECT_THAT(EvalRunner(*client_, options).Run(Cases(), nullptr),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(editor_.live_sessions(), 0);
}

TEST_F(RomectlEvalTest, ReportsProgressForEachPhase) {
  std::vector<std::string> phases;
  EvalOptions options;
  options.mode = EvalMode::kSequential;
  options.every = 2;
  auto on_progress = [&](const EvalProgress& p) {
    phases.push_back(absl::StrCat(p.phase, " ", p.done, "/", p.total));
  };
  ASSERT_OK(EvalRunner(*client_, options).Run(Cases(), on_progress).status());
  EXPECT_THAT(phases, ::testing::ElementsAre("unedited 1/3", "unedited 2/3", "unedited 3/3",
                                             "editing 1/3", "editing 2/3", "checkpoint 2/3",
                                             "editing 3/3", "checkpoint 3/3"));
}

// ---------------------------------------------------------------- the command

TEST_F(RomectlEvalTest, RomectlEvalPrintsTheTableAndWritesJsonAndCsv) {
  std::string out, err;
  const std::string json = dir_ + "/eval_test.json", csv = dir_ + "/eval_test.csv";
  ASSERT_EQ(Romectl({"eval", "--dataset=" + dataset_, "--json=" + json, "--csv=" + csv,
                     "--noprogress"},
                    &out, &err),
            kExitOk)
      << err;
  EXPECT_THAT(err, HasSubstr("skipped record 3 (case_id 13): requested_rewrite.target_true: "
                             "expected an object"));
  EXPECT_THAT(out, HasSubstr("3 cases of " + dataset_ + " (1 bad records skipped, 1 refused"));
  EXPECT_THAT(out, HasSubstr("unedited      0.0    0.0    0.0  100.0"));
  EXPECT_THAT(out, HasSubstr("ROME         90.0  100.0  100.0   75.0   85.0   85.0   25.0"));
  EXPECT_THAT(out, HasSubstr("error: INVALID_ARGUMENT: target refused"));

  std::ifstream json_file(json);
  const Json report = Json::parse(json_file);
  EXPECT_EQ(report["mode"], "session-per-case");
  EXPECT_EQ(report["records"]["bad"], 1);
  EXPECT_EQ(report["records"]["bad_records"][0]["field"], "requested_rewrite.target_true");
  EXPECT_DOUBLE_EQ(report["summary"]["edited"]["ns"].get<double>(), 0.75);
  EXPECT_EQ(report["cases"][2]["error"], "INVALID_ARGUMENT: target refused");
  EXPECT_EQ(report["cases"][0]["edited"]["generations"][0], "G10 x x x x");

  std::ifstream csv_file(csv);
  std::string header, row;
  std::getline(csv_file, header);
  std::getline(csv_file, row);
  EXPECT_THAT(header, HasSubstr("index,case_id,subject,target_new,target_true,error,layer"));
  EXPECT_THAT(row, HasSubstr("0,10,Ann Lee,new10,old10,,1,"));
}

TEST_F(RomectlEvalTest, RomectlEvalSequentialWritesCheckpointsAndAPlot) {
  std::string out, err;
  const std::string csv = dir_ + "/eval_seq.csv", svg = dir_ + "/eval_seq.svg";
  ASSERT_EQ(Romectl({"eval", "--dataset=" + dataset_, "--sequential", "--every=1",
                     "--csv=" + csv, "--svg=" + svg},
                    &out, &err),
            kExitOk)
      << err;
  EXPECT_THAT(err, HasSubstr("3/3 cases edited and scored"));
  EXPECT_THAT(out, HasSubstr("retention of the other facts first below 95% after 1 edits"));
  std::ifstream checkpoints(dir_ + "/eval_seq.checkpoints.csv");
  std::string header, first;
  std::getline(checkpoints, header);
  std::getline(checkpoints, first);
  EXPECT_THAT(header, HasSubstr("edits,es,em,ps,pm,ns,nm,s,ge,retention"));
  EXPECT_THAT(first, HasSubstr("1,1,"));
  std::ifstream plot(svg);
  std::stringstream text;
  text << plot.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("<svg"));
  EXPECT_THAT(text.str(), HasSubstr("retention, other facts"));
  EXPECT_THAT(text.str(), HasSubstr("number of sequential edits"));
}

TEST_F(RomectlEvalTest, RomectlEvalJsonPrintsOneObject) {
  std::string out, err;
  ASSERT_EQ(Romectl({"--json", "eval", "--dataset=" + dataset_, "--n=1", "--noprogress"}, &out,
                    &err),
            kExitOk);
  const Json report = Json::parse(out);
  EXPECT_EQ(report["cases"].size(), 1u);
  EXPECT_TRUE(err.empty()) << err;
}

TEST_F(RomectlEvalTest, UnreadableOrUselessDatasetsFailTheCommand) {
  std::string out, err;
  EXPECT_EQ(Romectl({"eval", "--dataset=/nonexistent.json"}, &out, &err), kExitRpcError);
  EXPECT_THAT(err, HasSubstr("NOT_FOUND: cannot open dataset /nonexistent.json"));
  const std::string path = dir_ + "/eval_bad.json";
  std::ofstream(path, std::ios::trunc) << R"([{"case_id": 1}])";
  EXPECT_EQ(Romectl({"eval", "--dataset=" + path}, &out, &err), kExitRpcError);
  EXPECT_THAT(err, HasSubstr("skipped record 0 (case_id 1): requested_rewrite: missing"));
  EXPECT_THAT(err, HasSubstr("no usable CounterFact record (1 bad of 1)"));
  EXPECT_EQ(editor_.sessions_created(), 0);
}

TEST(EvalPlotTest, DrawsAxesLegendAndOneLinePerSeries) {
  std::vector<Checkpoint> checkpoints(2);
  checkpoints[0].edits = 10;
  checkpoints[0].edited.s = 1.0;
  checkpoints[0].edited.es = 1.0;
  checkpoints[0].neighborhood = RetentionCount{100, 99};
  checkpoints[1].edits = 20;
  checkpoints[1].edited.s = 0.5;
  checkpoints[1].edited.es = 0.9;
  checkpoints[1].neighborhood = RetentionCount{100, 90};
  const std::string svg = RenderSequentialPlot(checkpoints, "a <title>");
  EXPECT_THAT(svg, HasSubstr("a &lt;title&gt;"));
  size_t lines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 3u);  // S, ES, retention (PS and NS have no values)
  EXPECT_THAT(svg, HasSubstr("retention, other facts after 20 edits: 90.0%"));
  EXPECT_THAT(RenderSequentialPlot({}, "t"), HasSubstr("no checkpoints"));
}

}  // namespace
}  // namespace romed::client
