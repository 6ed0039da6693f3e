// romectl's session, edit, revert, edits and stats commands: how their
// command lines parse into requests, how replies print, and whole runs of
// the program against a small fake of those RPCs on a loopback port.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/romectl_args.h"
#include "client/romectl_commands.h"
#include "client/romectl_session_format.h"
#include "tests/testing/status_matchers.h"

namespace romed::client {
namespace {

using ::romed::testing::StatusIs;
using ::testing::HasSubstr;

absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
  args.insert(args.begin(), "romectl");
  return ParseInvocation(args);
}

// ---------------------------------------------------------------- parsing

TEST(SessionParseTest, SessionCreateTakesANameAndLabels) {
  ASSERT_OK_AND_ASSIGN(Invocation inv, Parse({"session", "create", "--name=demo",
                                              "--label=team=nlp", "--label=run=a=b"}));
  EXPECT_EQ(inv.command, Command::kSession);
  EXPECT_EQ(inv.editing.action, SessionAction::kCreate);
  EXPECT_EQ(inv.editing.create.name(), "demo");
  EXPECT_EQ(inv.editing.create.labels().at("team"), "nlp");
  EXPECT_EQ(inv.editing.create.labels().at("run"), "a=b");
}

TEST(SessionParseTest, SessionGetAndDeleteTakeTheIdEitherWay) {
  ASSERT_OK_AND_ASSIGN(Invocation get, Parse({"session", "get", "s-1"}));
  EXPECT_EQ(get.editing.action, SessionAction::kGet);
  EXPECT_EQ(get.editing.session_id, "s-1");
  ASSERT_OK_AND_ASSIGN(Invocation del, Parse({"session", "delete", "--session=s-2"}));
  EXPECT_EQ(del.editing.action, SessionAction::kDelete);
  EXPECT_EQ(del.editing.session_id, "s-2");
  ASSERT_OK_AND_ASSIGN(Invocation list, Parse({"session", "list", "--page_size=5"}));
  EXPECT_EQ(list.editing.list.page_size(), 5);
}

TEST(SessionParseTest, BadSessionCommandLinesAreUsageErrors) {
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_THAT(Parse({"session"}), StatusIs(kInvalid, HasSubstr("needs an action")));
  EXPECT_THAT(Parse({"session", "rename"}), StatusIs(kInvalid, HasSubstr("unknown session action")));
  EXPECT_THAT(Parse({"session", "get"}), StatusIs(kInvalid, HasSubstr("needs a session id")));
  EXPECT_THAT(Parse({"session", "create", "s-1"}), StatusIs(kInvalid, HasSubstr("takes no")));
  EXPECT_THAT(Parse({"session", "create", "--label=novalue"}),
              StatusIs(kInvalid, HasSubstr("KEY=VALUE")));
  EXPECT_THAT(Parse({"session", "get", "s-1", "extra"}),
              StatusIs(kInvalid, HasSubstr("unexpected argument 'extra'")));
  EXPECT_THAT(Parse({"session", "list", "--name=x"}), StatusIs(kInvalid, HasSubstr("--name")));
}

TEST(SessionParseTest, EditSendsOnlyTheHyperparametersGiven) {
  ASSERT_OK_AND_ASSIGN(
      Invocation inv,
      Parse({"edit", "--session=s-1", "--prompt={} was born in", "--subject=Dora Zope",
             "--target=Paris", "--target_true=Vienna", "--layer=3", "--fact_token=last",
             "--v_lr=0.25", "--v_num_grad_steps=0", "--identity_covariance"}));
  const romed::v1::EditRequest& edit = inv.editing.edit;
  EXPECT_EQ(edit.session_id(), "s-1");
  ASSERT_EQ(edit.rewrites_size(), 1);
  EXPECT_EQ(edit.rewrites(0).prompt(), "{} was born in");
  EXPECT_EQ(edit.rewrites(0).subject(), "Dora Zope");
  EXPECT_EQ(edit.rewrites(0).target_new(), "Paris");
  EXPECT_EQ(edit.rewrites(0).target_true(), "Vienna");
  const romed::v1::RomeHyperparameters& h = edit.hparams();
  EXPECT_EQ(h.layer(), 3);
  EXPECT_EQ(h.fact_token(), romed::v1::FACT_TOKEN_LAST);
  EXPECT_FLOAT_EQ(h.v_lr(), 0.25f);
  EXPECT_TRUE(h.has_v_num_grad_steps());  // 0 is sent (the server rejects it)
  EXPECT_FALSE(h.has_kl_factor());
  EXPECT_FALSE(h.has_clamp_norm_factor());
  EXPECT_TRUE(h.identity_covariance());

  ASSERT_OK_AND_ASSIGN(Invocation plain, Parse({"edit", "--session=s", "--prompt={} x",
                                                "--subject=a", "--target=b"}));
  EXPECT_FALSE(plain.editing.edit.hparams().has_layer());
  EXPECT_EQ(plain.editing.edit.hparams().fact_token(), romed::v1::FACT_TOKEN_UNSPECIFIED);
}

TEST(SessionParseTest, EditNeedsItsRequiredFlags) {
  EXPECT_THAT(Parse({"edit", "--session=s", "--prompt={} x", "--subject=a"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'edit' needs --target")));
  EXPECT_THAT(Parse({"edit", "--session=s", "--prompt={} x", "--subject=a", "--target=b",
                     "--fact_token=middle"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subject_last")));
}

TEST(SessionParseTest, RevertPopsOneByDefaultOrKeepsUpToAnId) {
  ASSERT_OK_AND_ASSIGN(Invocation pop, Parse({"revert", "--session=s"}));
  EXPECT_EQ(pop.editing.revert.pop(), 1);
  ASSERT_OK_AND_ASSIGN(Invocation n, Parse({"revert", "--session=s", "--n=3"}));
  EXPECT_EQ(n.editing.revert.pop(), 3);
  ASSERT_OK_AND_ASSIGN(Invocation to, Parse({"revert", "--session=s", "--to=0"}));
  EXPECT_EQ(to.editing.revert.target_case(), romed::v1::RevertRequest::kKeepUpToId);
  EXPECT_EQ(to.editing.revert.keep_up_to_id(), 0);
  EXPECT_THAT(Parse({"revert", "--session=s", "--n=1", "--to=2"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("either --n")));
}

TEST(SessionParseTest, StatsAndEditsAndSessionOnGenerate) {
  ASSERT_OK_AND_ASSIGN(Invocation stats, Parse({"stats", "--layer=2", "--corpus=/data",
                                                "--max_tokens=100", "--recompute",
                                                "--noprogress"}));
  EXPECT_EQ(stats.editing.stats.layer(), 2);
  EXPECT_EQ(stats.editing.stats.corpus_path(), "/data");
  EXPECT_EQ(stats.editing.stats.max_tokens(), 100);
  EXPECT_TRUE(stats.editing.stats.recompute());
  EXPECT_FALSE(stats.editing.progress);
  EXPECT_THAT(Parse({"stats"}), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--layer")));
  ASSERT_OK_AND_ASSIGN(Invocation edits, Parse({"edits", "--session=s-9"}));
  EXPECT_EQ(edits.editing.session_id, "s-9");
  ASSERT_OK_AND_ASSIGN(Invocation generate, Parse({"generate", "--prompt=x", "--session=s-9"}));
  EXPECT_EQ(generate.generate.session_id(), "s-9");
  EXPECT_THAT(Parse({"generate", "--prompt=x", "--layer=1"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not take --layer")));
}

// ---------------------------------------------------------------- formatting

romed::v1::EditResponse SampleEdit() {
  romed::v1::EditResponse response;
  romed::v1::EditRecord* edit = response.mutable_edit();
  edit->set_edit_id(2);
  edit->set_created_unix_s(1700000000.25);
  edit->set_total_time_s(0.5);
  (*edit->mutable_hyperparameters())["site_source"] = "tracing";
  (*edit->mutable_hyperparameters())["covariance"] = "corpus";
  romed::v1::RewriteResult* r = edit->add_rewrites();
  r->mutable_rewrite()->set_prompt("{} was born in");
  r->mutable_rewrite()->set_subject("Dora Zope");
  r->mutable_rewrite()->set_target_new("Paris");
  r->mutable_rewrite()->set_target_true("Vienna");
  r->set_layer(3);
  r->set_fact_token(romed::v1::FACT_TOKEN_LAST);
  r->set_p_new_before(0.001f);
  r->set_p_new_after(0.98f);
  r->set_p_true_before(0.9f);
  r->set_p_true_after(0.01f);
  r->set_delta_u_norm(1.0f);
  r->set_delta_lambda_norm(12.5f);
  for (float loss : {5.0f, 1.0f, 0.04f}) r->add_loss_curve(loss);
  r->set_converged(true);
  r->set_covariance_source("corpus stats.txt, 1000 tokens");
  r->set_key_time_s(0.01);
  r->set_value_time_s(0.2);
  r->set_update_time_s(0.003);
  response.mutable_session()->set_id("s-1");
  response.mutable_session()->set_num_edits(2);
  response.mutable_session()->set_last_edit_id(2);
  return response;
}

TEST(SessionFormatTest, EditShowsSiteProbabilitiesLossAndTimes) {
  EXPECT_EQ(FormatEditResponse(SampleEdit()),
            "edit 2  2023-11-14 22:13:20 UTC  0.500 s  (site: tracing, C: corpus)\n"
            "  \"{} was born in\" [Dora Zope] -> \"Paris\" (was \"Vienna\")\n"
            "    site      layer 3, fact_token last\n"
            "    p(new)    0.0010 -> 0.9800\n"
            "    p(true)   0.9000 -> 0.0100\n"
            "    delta     ||u|| 1, ||lambda|| 12.5\n"
            "    loss      5 -> 0.04 in 3 steps (converged)\n"
            "    C         corpus stats.txt, 1000 tokens\n"
            "    time      key 0.010 s, value 0.200 s, update 0.003 s, statistics 0.000 s\n"
            "session s-1: 2 edits (top: 2)\n");
}

TEST(SessionFormatTest, AlreadyPredictedTargetIsNoted) {
  romed::v1::EditResponse response = SampleEdit();
  response.mutable_edit()->mutable_rewrites(0)->set_target_already_predicted(true);
  EXPECT_THAT(FormatEditResponse(response), HasSubstr("already was the model's answer"));
}

TEST(SessionFormatTest, RevertListsWhatWasRemoved) {
  romed::v1::RevertResponse response;
  response.add_reverted_edit_ids(3);
  response.add_reverted_edit_ids(2);
  response.mutable_session()->set_id("s-1");
  response.mutable_session()->set_num_edits(1);
  response.mutable_session()->set_last_edit_id(1);
  EXPECT_EQ(FormatRevert(response), "reverted edits 3, 2; session s-1: 1 edit (top: 1)\n");
  response.clear_reverted_edit_ids();
  response.mutable_session()->set_num_edits(0);
  EXPECT_EQ(FormatRevert(response), "nothing to revert; session s-1: no edits\n");
}

TEST(SessionFormatTest, ProgressBarAndStatsResult) {
  romed::v1::ComputeStatsProgress p;
  p.set_tokens_done(250);
  p.set_tokens_total(1000);
  p.set_eta_s(3.4);
  EXPECT_EQ(FormatProgressBar(p, 10), "[###.......]  25%  250/1000 tokens  ETA 3 s");
  p.set_done(true);
  p.set_layer(3);
  p.set_tokens_done(1000);
  p.set_corpus_path("c.txt");
  p.set_elapsed_s(2.0);
  p.set_cache_key("/state/stats/x.safetensors");
  EXPECT_EQ(FormatStatsResult(p),
            "statistics at layer 3: 1000 tokens of c.txt, computed in 2.0 s (500 tokens/s)\n"
            "cache: /state/stats/x.safetensors\n");
  p.set_cached(true);
  EXPECT_THAT(FormatStatsResult(p), HasSubstr("from the cache"));
}

TEST(SessionFormatTest, SessionListIsATable) {
  romed::v1::ListSessionsResponse response;
  EXPECT_EQ(FormatSessionList(response), "no sessions\n");
  romed::v1::Session* s = response.add_sessions();
  s->set_id("s-00000000000000ab");
  s->set_name("demo");
  (*s->mutable_labels())["team"] = "nlp";
  s->set_num_edits(3);
  s->set_created_unix_s(1700000000);
  response.set_next_page_token("tok");
  EXPECT_EQ(FormatSessionList(response),
            "ID                  EDITS  CREATED                  NAME\n"
            "s-00000000000000ab      3  2023-11-14 22:13:20 UTC  demo [team=nlp]\n"
            "more: --page_token=tok\n");
}

// ---------------------------------------------------------------- whole runs

// Answers the session RPCs with fixed replies and records the requests.
class FakeEditor final : public romed::v1::ModelEditor::Service {
 public:
  grpc::Status CreateSession(grpc::ServerContext*, const romed::v1::CreateSessionRequest* request,
                             romed::v1::Session* reply) override {
    reply->set_id("s-new");
    reply->set_name(request->name());
    return grpc::Status::OK;
  }
  grpc::Status Edit(grpc::ServerContext*, const romed::v1::EditRequest* request,
                    romed::v1::EditResponse* reply) override {
    last_edit = *request;
    *reply = SampleEdit();
    return grpc::Status::OK;
  }
  grpc::Status Revert(grpc::ServerContext*, const romed::v1::RevertRequest* request,
                      romed::v1::RevertResponse*) override {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("cannot revert ", request->pop(), " edits"));
  }
  grpc::Status ComputeStats(grpc::ServerContext*, const romed::v1::ComputeStatsRequest* request,
                            grpc::ServerWriter<romed::v1::ComputeStatsProgress>* writer) override {
    romed::v1::ComputeStatsProgress progress;
    progress.set_tokens_total(100);
    for (int done : {50, 100}) {
      progress.set_tokens_done(done);
      writer->Write(progress);
    }
    progress.set_done(true);
    progress.set_layer(request->layer());
    progress.set_corpus_path("c.txt");
    writer->Write(progress);
    stats_layers.push_back(request->layer());
    return grpc::Status::OK;
  }
  romed::v1::EditRequest last_edit;
  std::vector<int> stats_layers;  // layers ComputeStats was asked for
};

class SessionCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&editor_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    target_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override { server_->Shutdown(); }

  int Run(std::vector<std::string> args) {
    args.insert(args.begin(), {"romectl", "--server=" + target_, "--timeout_s=10"});
    out_.str("");
    err_.str("");
    return RomectlMain(args, out_, err_);
  }

  FakeEditor editor_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
  std::ostringstream out_, err_;
};

TEST_F(SessionCommandsTest, SessionCreatePrintsTheNewSession) {
  EXPECT_EQ(Run({"session", "create", "--name=demo"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("id       s-new\nname     demo\n"));
  EXPECT_EQ(Run({"--json", "session", "create"}), kExitOk);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["id"], "s-new");
}

TEST_F(SessionCommandsTest, EditSendsTheRewriteAndPrintsTheResult) {
  EXPECT_EQ(Run({"edit", "--session=s-1", "--prompt={} was born in", "--subject=Dora Zope",
                 "--target=Paris"}),
            kExitOk);
  EXPECT_EQ(editor_.last_edit.rewrites(0).subject(), "Dora Zope");
  EXPECT_EQ(out_.str(), FormatEditResponse(SampleEdit()));
  EXPECT_EQ(Run({"--json", "edit", "--session=s-1", "--prompt={} x", "--subject=a",
                 "--target=b"}),
            kExitOk);
  const nlohmann::json json = nlohmann::json::parse(out_.str());
  EXPECT_EQ(json["edit"]["rewrites"][0]["fact_token"], "last");
  EXPECT_EQ(json["edit"]["hyperparameters"]["site_source"], "tracing");
}

// With a known layer, edit first fetches (or computes) the statistics through
// ComputeStats and draws its progress; without one (no --layer, no stored
// site: GetModelInfo is unimplemented here) or with --noprogress or C = I it
// leaves them to Edit.
TEST_F(SessionCommandsTest, EditWithALayerShowsStatisticsProgressFirst) {
  EXPECT_EQ(Run({"edit", "--session=s-1", "--prompt={} x", "--subject=a", "--target=b",
                 "--layer=2"}),
            kExitOk);
  EXPECT_EQ(editor_.stats_layers, std::vector<int>{2});
  EXPECT_THAT(err_.str(), HasSubstr("100/100 tokens"));
  EXPECT_EQ(out_.str(), FormatEditResponse(SampleEdit()));
  EXPECT_EQ(editor_.last_edit.hparams().layer(), 2);
  for (const char* quiet : {"--noprogress", "--identity_covariance"}) {
    EXPECT_EQ(Run({"edit", "--session=s-1", "--prompt={} x", "--subject=a", "--target=b",
                   "--layer=2", quiet}),
              kExitOk);
    EXPECT_EQ(err_.str(), "") << quiet;
  }
  EXPECT_EQ(Run({"edit", "--session=s-1", "--prompt={} x", "--subject=a", "--target=b"}),
            kExitOk);
  EXPECT_EQ(editor_.stats_layers, std::vector<int>{2});
}

TEST_F(SessionCommandsTest, ServerErrorsExitOneWithTheCode) {
  EXPECT_EQ(Run({"revert", "--session=s-1", "--n=5"}), kExitRpcError);
  EXPECT_EQ(err_.str(), "error: INVALID_ARGUMENT: cannot revert 5 edits\n");
  EXPECT_EQ(Run({"edits", "--session=s-1"}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("UNIMPLEMENTED"));
}

TEST_F(SessionCommandsTest, StatsDrawsProgressOnStderrAndTheResultOnStdout) {
  EXPECT_EQ(Run({"stats", "--layer=1"}), kExitOk);
  EXPECT_THAT(err_.str(), HasSubstr("\r[###############...............]  50%  50/100 tokens"));
  EXPECT_THAT(err_.str(), HasSubstr("100/100 tokens"));
  EXPECT_EQ(out_.str(), "statistics at layer 1: 100 tokens of c.txt, computed in 0.0 s (0 tokens/s)\n");
  EXPECT_EQ(Run({"--json", "stats", "--layer=1", "--noprogress"}), kExitOk);
  EXPECT_EQ(err_.str(), "");
  EXPECT_EQ(nlohmann::json::parse(out_.str())["done"], true);
}

}  // namespace
}  // namespace romed::client
