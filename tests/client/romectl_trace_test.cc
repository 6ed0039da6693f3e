// `romectl trace`: how its flags parse, and whole runs of the program
// against a fake ModelEditor (on a loopback port) that answers the trace
// RPCs with fixed grids; plus the trace proto conversions both ways. No
// model and no libtorch.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/romectl_args.h"
#include "client/romectl_commands.h"
#include "client/romectl_trace.h"
#include "server/service/proto_convert_trace.h"
#include "tests/testing/status_matchers.h"

namespace romed::client {
namespace {

using ::romed::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

// A trace of "Dora Zope is from" (subject tokens [0, 2)), 2 layers: state
// scores rise along the last token, and everything else stays at low.
TraceResult FakeTrace() {
  TraceResult trace;
  trace.tokens = {11, 12, 13, 14};
  trace.token_texts = {"Dora", " Zope", " is", " from"};
  trace.subject_begin = 0;
  trace.subject_end = 2;
  trace.answer_token = 42;
  trace.answer_text = " Vienna";
  trace.high_score = 0.9;
  trace.low_score = 0.1;
  trace.num_layers = 2;
  trace.window = 1;
  trace.samples = 10;
  trace.seed = 3;
  trace.noise_sigma = 0.3;
  trace.noise_basis = NoiseBasis::kSubjectEmbeddings;
  for (TraceKind kind : {TraceKind::kState, TraceKind::kMlp, TraceKind::kAttn}) {
    ScoreGrid grid{kind, std::vector<std::vector<double>>(4, std::vector<double>(2, 0.1))};
    grid.values[3] = {0.5, 0.875};
    trace.scores.push_back(grid);
  }
  trace.cost.forwards = 6;
  trace.cost.max_batch_rows = 40;
  return trace;
}

// Answers Trace / TraceStream with FakeTrace() (INVALID_ARGUMENT for the
// subject "bad"), TraceFacts with a 2-layer table recommending "last",
// layer 1, and GetModelInfo with that site stored. Records the requests.
class FakeTraceEditor final : public romed::v1::ModelEditor::Service {
 public:
  grpc::Status Trace(grpc::ServerContext*, const romed::v1::TraceRequest* request,
                     romed::v1::TraceResponse* reply) override {
    Record(*request);
    if (request->subject() == "bad") {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "trace: the subject is bad");
    }
    ToProto(FakeTrace(), 0.25, reply);
    return grpc::Status::OK;
  }

  grpc::Status TraceStream(grpc::ServerContext* context, const romed::v1::TraceRequest* request,
                           grpc::ServerWriter<romed::v1::TraceStreamResponse>* writer) override {
    romed::v1::TraceResponse result;
    grpc::Status status = Trace(context, request, &result);
    if (!status.ok()) return status;
    for (int done = 1; done <= 6; ++done) {
      romed::v1::TraceStreamResponse progress;
      progress.set_done_steps(done);
      progress.set_total_steps(6);
      writer->Write(progress);
    }
    romed::v1::TraceStreamResponse last;
    last.set_done(true);
    *last.mutable_result() = result;
    writer->Write(last);
    return grpc::Status::OK;
  }

  grpc::Status TraceFacts(grpc::ServerContext*, const romed::v1::TraceFactsRequest* request,
                          grpc::ServerWriter<romed::v1::TraceFactsProgress>* writer) override {
    {
      absl::MutexLock lock(&mu_);
      last_facts_ = *request;
    }
    const int n = request->facts_size() > 0 ? request->facts_size() : 2;
    for (int i = 0; i < n; ++i) {
      romed::v1::TraceFactsProgress progress;
      progress.set_facts_done(i + 1);
      progress.set_facts_total(n);
      writer->Write(progress);
    }
    romed::v1::TraceFactsProgress last;
    last.set_done(true);
    ToProto(FakeTable(n), last.mutable_result()->mutable_table());
    ToProto(FakeSite(n), last.mutable_result()->mutable_recommendation());
    last.mutable_result()->set_stored(request->store_recommendation());
    last.mutable_result()->set_time_s(1.5);
    writer->Write(last);
    return grpc::Status::OK;
  }

  grpc::Status GetModelInfo(grpc::ServerContext*, const romed::v1::GetModelInfoRequest*,
                            romed::v1::ModelInfo* reply) override {
    reply->set_architecture("gpt2");
    reply->set_n_layer(2);
    ToProto(FakeSite(50), reply->mutable_edit_site());
    return grpc::Status::OK;
  }

  static AggregateTable FakeTable(int facts) {
    AggregateTable table;
    table.num_facts = facts;
    table.num_layers = 2;
    table.window = 1;
    table.mean_high = 0.95;
    table.mean_low = 0.05;
    for (TraceKind kind : {TraceKind::kState, TraceKind::kMlp, TraceKind::kAttn}) {
      KindTable k{kind, std::vector<std::vector<double>>(6, std::vector<double>(2, 0.01)),
                  std::vector<int64_t>(6, facts)};
      k.count[1] = 0;  // no middle subject tokens
      k.effect[5] = {0.25, 0.75};
      table.kinds.push_back(k);
    }
    return table;
  }

  static SiteRecommendation FakeSite(int facts) {
    SiteRecommendation site;
    site.fact_token = "last";
    site.position = PositionClass::kLastToken;
    site.layer = 1;
    site.effect = 0.75;
    site.num_facts = facts;
    site.window = 1;
    return site;
  }

  romed::v1::TraceRequest last_trace() const {
    absl::MutexLock lock(&mu_);
    return last_trace_;
  }
  romed::v1::TraceFactsRequest last_facts() const {
    absl::MutexLock lock(&mu_);
    return last_facts_;
  }

 private:
  void Record(const romed::v1::TraceRequest& request) {
    absl::MutexLock lock(&mu_);
    last_trace_ = request;
  }

  mutable absl::Mutex mu_;
  romed::v1::TraceRequest last_trace_ ABSL_GUARDED_BY(mu_);
  romed::v1::TraceFactsRequest last_facts_ ABSL_GUARDED_BY(mu_);
};

class RomectlTraceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    editor_ = new FakeTraceEditor;
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(editor_);
    server_ = builder.BuildAndStart().release();
    target_ = new std::string(absl::StrCat("127.0.0.1:", port));
  }
  static void TearDownTestSuite() {
    server_->Shutdown();
    delete server_;
    delete editor_;
    delete target_;
  }

  static absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "romectl");
    return ParseInvocation(args);
  }

  // Runs romectl against the fake (trace without progress bars); returns
  // the exit status.
  int Run(std::vector<std::string> args) {
    if (std::find(args.begin(), args.end(), "trace") != args.end()) {
      args.push_back("--noprogress");
    }
    args.insert(args.begin(), {"romectl", "--server=" + *target_});
    out_.str("");
    err_.str("");
    return RomectlMain(args, out_, err_);
  }

  std::string TempPath(const std::string& name) {
    return (std::filesystem::temp_directory_path() /
            absl::StrCat("romectl_trace_test_", ::getpid(), "_", name))
        .string();
  }

  static FakeTraceEditor* editor_;
  static grpc::Server* server_;
  static std::string* target_;
  std::ostringstream out_, err_;
};
FakeTraceEditor* RomectlTraceTest::editor_ = nullptr;
grpc::Server* RomectlTraceTest::server_ = nullptr;
std::string* RomectlTraceTest::target_ = nullptr;

// ------------------------------------------------------------ parsing

TEST_F(RomectlTraceTest, FlagsBecomeTheTraceRequest) {
  ASSERT_OK_AND_ASSIGN(
      Invocation inv,
      Parse({"trace", "--prompt=Dora Zope is from", "--subject=Dora Zope", "--kinds=mlp,attn",
             "--window=3", "--noise=2.5", "--samples=20", "--seed=9", "--answer= Vienna",
             "--session=s-1", "--sever=mlp", "--svg=/tmp/x.svg"}));
  EXPECT_EQ(inv.command, Command::kTrace);
  const romed::v1::TraceRequest& r = inv.trace.request;
  EXPECT_EQ(r.prompt(), "Dora Zope is from");
  EXPECT_EQ(r.subject(), "Dora Zope");
  ASSERT_EQ(r.kinds_size(), 2);
  EXPECT_EQ(r.kinds(0), romed::v1::TRACE_KIND_MLP);
  EXPECT_EQ(r.kinds(1), romed::v1::TRACE_KIND_ATTN);
  EXPECT_EQ(r.window(), 3);
  EXPECT_FLOAT_EQ(r.noise_multiplier(), 2.5f);
  EXPECT_FALSE(r.has_noise_sigma());
  EXPECT_EQ(r.samples(), 20);
  EXPECT_EQ(r.seed(), 9u);
  EXPECT_EQ(r.answer(), " Vienna");
  EXPECT_EQ(r.session_id(), "s-1");
  EXPECT_EQ(r.sever(), romed::v1::SEVER_MODE_MLP);
  EXPECT_EQ(inv.trace.svg_path, "/tmp/x.svg");
  EXPECT_TRUE(inv.trace.facts.empty());
}

TEST_F(RomectlTraceTest, UnsetOptionsStayUnsetForTheServerDefaults) {
  ASSERT_OK_AND_ASSIGN(Invocation inv, Parse({"trace", "--prompt=a b", "--subject=a"}));
  const romed::v1::TraceRequest& r = inv.trace.request;
  EXPECT_EQ(r.kinds_size(), 0);
  EXPECT_FALSE(r.has_window());
  EXPECT_FALSE(r.has_samples());
  EXPECT_EQ(r.noise_case(), romed::v1::TraceRequest::NOISE_NOT_SET);
  // An explicit zero is sent as given, for the server to reject.
  ASSERT_OK_AND_ASSIGN(Invocation zero,
                       Parse({"trace", "--prompt=a b", "--subject=a", "--window=0",
                              "--noise_sigma=0.5"}));
  EXPECT_TRUE(zero.trace.request.has_window());
  EXPECT_EQ(zero.trace.request.window(), 0);
  EXPECT_FLOAT_EQ(zero.trace.request.noise_sigma(), 0.5f);
}

TEST_F(RomectlTraceTest, FactsFlagsBecomeTheTraceFactsRequest) {
  ASSERT_OK_AND_ASSIGN(Invocation inv, Parse({"trace", "--facts=model", "--n=60",
                                              "--store_site", "--samples=4", "--kinds=mlp"}));
  EXPECT_EQ(inv.trace.facts, "model");
  EXPECT_EQ(inv.trace.facts_request.n(), 60);
  EXPECT_TRUE(inv.trace.facts_request.store_recommendation());
  EXPECT_EQ(inv.trace.facts_request.options().samples(), 4);
  EXPECT_EQ(inv.trace.facts_request.options().kinds_size(), 1);
}

TEST_F(RomectlTraceTest, UsageErrors) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"trace", "--prompt=a b"}, "needs --prompt and --subject"},
      {{"trace", "--prompt=a b", "--subject=a", "--n=3"}, "--n needs --facts"},
      {{"trace", "--prompt=a b", "--subject=a", "--store_site"}, "--store_site needs --facts"},
      {{"trace", "--facts=model", "--prompt=a"}, "--prompt traces one prompt"},
      {{"trace", "--facts=model", "--svg=x.svg"}, "--svg traces one prompt"},
      {{"trace", "--prompt=a b", "--subject=a", "--kinds=state,neurons"}, "unknown kind 'neurons'"},
      {{"trace", "--prompt=a b", "--subject=a", "--sever=all"}, "unknown --sever=all"},
      {{"trace", "--prompt=a b", "--subject=a", "--noise=3", "--noise_sigma=1"}, "not both"},
      {{"trace", "--prompt=a b", "--subject=a", "--color=pink"}, "unknown --color=pink"},
      {{"generate", "--prompt=a", "--kinds=mlp"}, "'generate' does not take --kinds"},
  };
  for (const auto& [args, message] : cases) {
    EXPECT_THAT(Parse(args), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(message)))
        << args[1];
    EXPECT_EQ(Run(args), kExitUsage) << args[1];
  }
}

TEST_F(RomectlTraceTest, UsageListsTheTraceCommandAndItsFlags) {
  const std::string usage = Usage();
  EXPECT_THAT(usage, HasSubstr("trace"));
  EXPECT_THAT(usage, HasSubstr("--facts=FILE|model"));
  EXPECT_THAT(usage, HasSubstr("--kinds=state,mlp,attn"));
}

// ------------------------------------------------------------ runs

TEST_F(RomectlTraceTest, TraceDrawsTheHeatmapsAndWritesTheSvg) {
  const std::string svg = TempPath("t.svg");
  ASSERT_EQ(Run({"trace", "--prompt=Dora Zope is from", "--subject=Dora Zope", "--svg=" + svg,
                 "--samples=3"}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(editor_->last_trace().samples(), 3);
  const std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("subject \"Dora Zope\" = tokens [0, 2) of 4; answer \" Vienna\""));
  EXPECT_THAT(out, HasSubstr("clean p 0.9000, corrupted p 0.1000"));
  EXPECT_THAT(out, HasSubstr("state restored (window 1): p( Vienna), low 0.100 .. high 0.875"));
  EXPECT_THAT(out, HasSubstr("mlp restored"));
  EXPECT_THAT(out, HasSubstr("attn restored"));
  EXPECT_THAT(out, HasSubstr("Dora*"));
  EXPECT_THAT(out, HasSubstr(" Zope*"));
  EXPECT_THAT(out, HasSubstr(" from"));
  EXPECT_THAT(out, Not(HasSubstr(" from*")));
  EXPECT_THAT(out, Not(HasSubstr("\x1b[")));  // not a terminal: shades, no colour codes
  EXPECT_THAT(out, HasSubstr("██"));         // the last token's top layer is the maximum
  EXPECT_THAT(out, HasSubstr("6 forward passes"));
  std::ifstream file(svg);
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("<svg"));
  EXPECT_THAT(text.str(), HasSubstr("Restoring MLP after corrupted input"));
  EXPECT_THAT(text.str(), HasSubstr("Dora Zope is from"));
  std::filesystem::remove(svg);
}

TEST_F(RomectlTraceTest, ColorAlwaysDrawsAnsiColours) {
  ASSERT_EQ(Run({"trace", "--prompt=Dora Zope is from", "--subject=Dora Zope", "--color=always"}),
            kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("\x1b[48;2;"));
}

TEST_F(RomectlTraceTest, TraceJsonIsOneObjectWithTheGrids) {
  ASSERT_EQ(Run({"--json", "trace", "--prompt=Dora Zope is from", "--subject=Dora Zope"}),
            kExitOk);
  const nlohmann::json json = nlohmann::json::parse(out_.str());
  EXPECT_EQ(json["answer"], " Vienna");
  EXPECT_EQ(json["subject_end"], 2);
  EXPECT_EQ(json["noise_basis"], std::string(NoiseBasisName(NoiseBasis::kSubjectEmbeddings)));
  ASSERT_EQ(json["grids"].size(), 3u);
  EXPECT_EQ(json["grids"][1]["kind"], "mlp");
  EXPECT_NEAR(json["grids"][0]["scores"][3][1].get<double>(), 0.875, 1e-6);
}

TEST_F(RomectlTraceTest, ServerErrorsExitOne) {
  EXPECT_EQ(Run({"trace", "--prompt=a bad b", "--subject=bad"}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("error: INVALID_ARGUMENT: trace: the subject is bad"));
}

TEST_F(RomectlTraceTest, FactsFromAFileAreSentInline) {
  const std::string path = TempPath("facts.json");
  std::ofstream(path) << R"([
    {"known_id": 0, "subject": "Dora Zope", "prompt": "Dora Zope is from",
     "prediction": " Vienna", "attribute": "Vienna"},
    {"subject": "Ann Lo", "prompt": "Ann Lo plays the", "attribute": "banjo"}])";
  ASSERT_EQ(Run({"trace", "--facts=" + path, "--n=2"}), kExitOk) << err_.str();
  const romed::v1::TraceFactsRequest sent = editor_->last_facts();
  ASSERT_EQ(sent.facts_size(), 2);
  EXPECT_EQ(sent.facts(0).prompt(), "Dora Zope is from");
  EXPECT_EQ(sent.facts(0).answer(), " Vienna");
  EXPECT_EQ(sent.facts(1).answer(), " banjo");
  EXPECT_EQ(sent.n(), 2);
  EXPECT_FALSE(sent.store_recommendation());
  const std::string out = out_.str();
  EXPECT_THAT(out, HasSubstr("2 facts, mean clean p 0.950, mean corrupted p 0.050"));
  EXPECT_THAT(out, HasSubstr("last token                0.250  0.750"));
  EXPECT_THAT(out, HasSubstr("middle subject tokens         -      -"));
  EXPECT_THAT(out, HasSubstr("recommended edit site: fact_token=last, layer 1"));
  EXPECT_THAT(out, HasSubstr("not stored"));
  std::filesystem::remove(path);
}

TEST_F(RomectlTraceTest, FactsFromTheModelAskTheServerToReadItsOwn) {
  ASSERT_EQ(Run({"--json", "trace", "--facts=model", "--store_site"}), kExitOk) << err_.str();
  EXPECT_EQ(editor_->last_facts().facts_size(), 0);
  EXPECT_TRUE(editor_->last_facts().store_recommendation());
  const nlohmann::json json = nlohmann::json::parse(out_.str());
  EXPECT_EQ(json["stored"], true);
  EXPECT_EQ(json["recommendation"]["fact_token"], "last");
  EXPECT_EQ(json["recommendation"]["layer"], 1);
  EXPECT_EQ(json["table"]["kinds"][0]["classes"][5]["position"], "last token");
}

TEST_F(RomectlTraceTest, UnreadableFactsFileIsAUsageError) {
  EXPECT_EQ(Run({"trace", "--facts=/nonexistent/facts.json"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("cannot read --facts=/nonexistent/facts.json"));
  const std::string path = TempPath("bad.json");
  std::ofstream(path) << R"([{"prompt": "no subject here"}])";
  EXPECT_EQ(Run({"trace", "--facts=" + path}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("entry 0"));
  std::filesystem::remove(path);
}

TEST_F(RomectlTraceTest, InfoShowsTheStoredEditSite) {
  ASSERT_EQ(Run({"info"}), kExitOk) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("edit_site    fact_token=last, layer 1"));
}

// ------------------------------------------------------------ conversions

TEST(TraceProtoConvertTest, TraceResultRoundTrips) {
  const TraceResult trace = FakeTrace();
  romed::v1::TraceResponse proto;
  ToProto(trace, 0.5, &proto);
  ASSERT_OK_AND_ASSIGN(TraceResult back, TraceResultFromProto(proto));
  EXPECT_EQ(back.tokens, trace.tokens);
  EXPECT_EQ(back.token_texts, trace.token_texts);
  EXPECT_EQ(back.subject_end, trace.subject_end);
  EXPECT_EQ(back.answer_text, trace.answer_text);
  EXPECT_EQ(back.seed, trace.seed);
  EXPECT_EQ(back.noise_basis, trace.noise_basis);
  ASSERT_EQ(back.scores.size(), 3u);
  EXPECT_EQ(back.scores[2].kind, TraceKind::kAttn);
  EXPECT_DOUBLE_EQ(back.scores[0].values[3][1], 0.875);
  EXPECT_EQ(back.cost.forwards, 6);
}

TEST(TraceProtoConvertTest, TokenBytesThatSplitACharacterAreEscaped) {
  TraceResult trace = FakeTrace();
  trace.token_texts[2] = "\xe2\x82";  // the first two bytes of "€"
  romed::v1::TraceResponse proto;
  ToProto(trace, 0, &proto);
  EXPECT_EQ(proto.tokens(2), "\\xe2\\x82");
  EXPECT_EQ(proto.token_ids(2), 13);
  std::string serialized;
  EXPECT_TRUE(proto.SerializeToString(&serialized));
}

TEST(TraceProtoConvertTest, TableAndSiteRoundTrip) {
  const AggregateTable table = FakeTraceEditor::FakeTable(7);
  romed::v1::AveragedTraceTable proto;
  ToProto(table, &proto);
  ASSERT_OK_AND_ASSIGN(AggregateTable back, AggregateTableFromProto(proto));
  EXPECT_EQ(FormatAggregateTable(back), FormatAggregateTable(table));
  romed::v1::EditSiteRecommendation site_proto;
  ToProto(FakeTraceEditor::FakeSite(7), &site_proto);
  EXPECT_EQ(site_proto.fact_token(), romed::v1::FACT_TOKEN_LAST);
  ASSERT_OK_AND_ASSIGN(SiteRecommendation site, SiteRecommendationFromProto(site_proto));
  EXPECT_EQ(RecommendationToJson(site), RecommendationToJson(FakeTraceEditor::FakeSite(7)));
}

TEST(TraceProtoConvertTest, MalformedResponsesAreRejected) {
  romed::v1::TraceResponse proto;
  ToProto(FakeTrace(), 0, &proto);
  proto.mutable_grids(1)->mutable_scores()->RemoveLast();
  EXPECT_THAT(TraceResultFromProto(proto),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("grid 1 has 7 scores")));
  romed::v1::TraceRequest request;
  request.add_kinds(static_cast<romed::v1::TraceKind>(7));
  EXPECT_THAT(FromProto(request), StatusIs(absl::StatusCode::kInvalidArgument,
                                           HasSubstr("kinds[0] is 7")));
}

}  // namespace
}  // namespace romed::client
