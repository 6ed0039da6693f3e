// The session, Edit, Revert, ListEdits and ComputeStats RPCs through an
// in-process channel on a tiny random checkpoint: the happy paths, and every
// bad input of issue #5 with its gRPC code, an actionable message and no
// state change.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "server/model/gpt2_weights.h"
#include "server/model/tokenizer.h"
#include "tests/service/edit_test_util.h"
#include "tests/service/grpc_status_matchers.h"
#include "tests/service/service_fixture.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::GrpcStatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
constexpr auto kNotFound = grpc::StatusCode::NOT_FOUND;

// ServeTinyModel with EditTestConfig (context 128) and EditTestOptions,
// plus a stats corpus for the layer-0 statistics tests.
// `checkpoint_dir` "" = a fresh WriteEditTestCheckpoint(); the directory is
// removed once loaded.
std::unique_ptr<testing::ServedModel> ServeEditModel(const std::string& state_dir,
                                                     std::string checkpoint_dir = "") {
  auto served = std::make_unique<testing::ServedModel>();
  served->service = std::make_unique<ModelEditorService>(
      ServerFacts{testing::kTestMaxReceiveBytes, "test"}, served->metrics.get());
  absl::StatusOr<StartedServer> started =
      StartGrpcServer(GrpcServerOptions{"", testing::kTestMaxReceiveBytes}, served->service.get());
  if (!started.ok()) {
    ADD_FAILURE() << started.status();
    return nullptr;
  }
  served->server = std::move(started->server);
  served->stub = v1::ModelEditor::NewStub(served->server->InProcessChannel(grpc::ChannelArguments()));
  const std::string dir =
      checkpoint_dir.empty() ? testing::WriteEditTestCheckpoint() : std::move(checkpoint_dir);
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(dir);
  std::filesystem::remove_all(dir);  // no stats_corpus.txt: Edit needs identity or --stats_corpus
  if (!checkpoint.ok()) {
    ADD_FAILURE() << checkpoint.status();
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine = Engine::Create(
      *std::move(checkpoint), testing::EditTestOptions(state_dir), served->metrics.get());
  if (!engine.ok()) {
    ADD_FAILURE() << engine.status();
    return nullptr;
  }
  served->engine = *std::move(engine);
  served->service->SetEngine(served->engine);
  SetServing(*served->server, true);
  return served;
}

class SessionServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_dir_ = testing::MakeTempDir("romed-session-service");
    served_ = ServeEditModel(state_dir_);
    ASSERT_NE(served_, nullptr);
  }
  void TearDown() override {
    served_.reset();
    std::filesystem::remove_all(state_dir_);
  }
  v1::ModelEditor::Stub& stub() { return *served_->stub; }

  v1::Session Create(const std::string& name = "") {
    grpc::ClientContext context;
    v1::CreateSessionRequest request;
    request.set_name(name);
    v1::Session session;
    const grpc::Status status = stub().CreateSession(&context, request, &session);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return session;
  }

  static v1::EditRequest QuickEdit(const std::string& session_id,
                                   const std::string& target = "Oslo") {
    v1::EditRequest request;
    request.set_session_id(session_id);
    v1::Rewrite* r = request.add_rewrites();
    r->set_prompt("{} lives in");
    r->set_subject("Anna Berg");
    r->set_target_new(target);
    r->set_target_true("Rome");
    // As testing::QuickEdit: a site and scales that move this random model.
    request.mutable_hparams()->set_v_num_grad_steps(4);
    request.mutable_hparams()->set_layer(0);
    request.mutable_hparams()->set_fact_token(v1::FACT_TOKEN_LAST);
    request.mutable_hparams()->set_clamp_norm_factor(100);
    request.mutable_hparams()->set_v_weight_decay(1e-4f);
    request.mutable_hparams()->set_identity_covariance(true);
    return request;
  }

  grpc::Status CallEdit(const v1::EditRequest& request, v1::EditResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::EditResponse ignored;
    return stub().Edit(&context, request, response != nullptr ? response : &ignored);
  }

  grpc::Status CallRevert(const v1::RevertRequest& request, v1::RevertResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::RevertResponse ignored;
    return stub().Revert(&context, request, response != nullptr ? response : &ignored);
  }

  // Greedy ids and log-probs on the session: what "nothing changed" compares.
  std::pair<std::vector<int64_t>, std::vector<float>> Greedy(const std::string& session_id) {
    grpc::ClientContext context;
    v1::GenerateRequest request;
    request.set_prompt("Anna Berg lives in");
    request.set_max_new_tokens(8);
    request.set_ignore_eos(true);
    request.set_session_id(session_id);
    v1::GenerateResponse response;
    const grpc::Status status = stub().Generate(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {{response.ids().begin(), response.ids().end()},
            {response.logprobs().begin(), response.logprobs().end()}};
  }

  int64_t Depth(const std::string& id) {
    grpc::ClientContext context;
    v1::ListEditsRequest request;
    request.set_session_id(id);
    v1::ListEditsResponse response;
    EXPECT_TRUE(stub().ListEdits(&context, request, &response).ok());
    return response.edits_size();
  }

  // `request` fails with `code` and `message`; the session keeps its stack
  // and its outputs.
  void ExpectEditRejected(const v1::EditRequest& request, grpc::StatusCode code,
                          const std::string& message, const std::string& id) {
    const int64_t depth = Depth(id);
    const auto before = Greedy(id);
    EXPECT_THAT(CallEdit(request), GrpcStatusIs(code, HasSubstr(message)));
    EXPECT_EQ(Depth(id), depth);
    EXPECT_EQ(Greedy(id), before);
  }

  std::string state_dir_;
  std::unique_ptr<testing::ServedModel> served_;
};

TEST_F(SessionServiceTest, ModelInfoReportsTheSessionRpcsAvailable) {
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub().GetModelInfo(&context, {}, &info).ok());
  for (const char* rpc : {"CreateSession", "GetSession", "ListSessions", "DeleteSession", "Edit",
                          "Revert", "ListEdits", "ComputeStats"}) {
    EXPECT_EQ(info.rpc_status().at(rpc), "available") << rpc;
  }
}

TEST_F(SessionServiceTest, SessionsAreCreatedPagedAndDeleted) {
  grpc::ClientContext create_context;
  v1::CreateSessionRequest create;
  create.set_name("demo");
  (*create.mutable_labels())["team"] = "nlp";
  v1::Session session;
  ASSERT_TRUE(stub().CreateSession(&create_context, create, &session).ok());
  EXPECT_THAT(session.id(), HasSubstr("s-"));
  EXPECT_EQ(session.labels().at("team"), "nlp");
  EXPECT_GT(session.created_unix_s(), 1.6e9);
  EXPECT_EQ(session.num_edits(), 0);
  const v1::Session second = Create("second");

  grpc::ClientContext list_context;
  v1::ListSessionsRequest list;
  list.set_page_size(1);
  v1::ListSessionsResponse page;
  ASSERT_TRUE(stub().ListSessions(&list_context, list, &page).ok());
  ASSERT_EQ(page.sessions_size(), 1);
  EXPECT_EQ(page.sessions(0).id(), session.id());
  grpc::ClientContext next_context;
  list.set_page_token(page.next_page_token());
  v1::ListSessionsResponse next;
  ASSERT_TRUE(stub().ListSessions(&next_context, list, &next).ok());
  ASSERT_EQ(next.sessions_size(), 1);
  EXPECT_EQ(next.sessions(0).id(), second.id());

  grpc::ClientContext delete_context;
  v1::DeleteSessionRequest del;
  del.set_id(session.id());
  v1::DeleteSessionResponse deleted;
  ASSERT_TRUE(stub().DeleteSession(&delete_context, del, &deleted).ok());
  grpc::ClientContext get_context;
  v1::GetSessionRequest get;
  get.set_id(session.id());
  v1::Session gone;
  EXPECT_THAT(stub().GetSession(&get_context, get, &gone),
              GrpcStatusIs(kNotFound, AllOf(HasSubstr(session.id()), HasSubstr("CreateSession"))));
}

TEST_F(SessionServiceTest, EditThenRevertIsExactThroughTheService) {
  const std::string id = Create().id();
  const auto base = Greedy(id);
  v1::EditResponse edit;
  ASSERT_TRUE(CallEdit(QuickEdit(id), &edit).ok());
  EXPECT_EQ(edit.edit().edit_id(), 1);
  EXPECT_EQ(edit.session().num_edits(), 1);
  EXPECT_EQ(edit.session().last_edit_id(), 1);
  ASSERT_EQ(edit.edit().rewrites_size(), 1);
  const v1::RewriteResult& r = edit.edit().rewrites(0);
  EXPECT_EQ(r.rewrite().target_new(), "Oslo");
  EXPECT_EQ(r.layer(), 0);
  EXPECT_EQ(r.fact_token(), v1::FACT_TOKEN_LAST);
  EXPECT_GT(r.p_new_after(), r.p_new_before());
  EXPECT_TRUE(r.identity_covariance());
  EXPECT_EQ(r.covariance_source(), "identity");
  EXPECT_EQ(r.loss_curve_size(), 4);
  EXPECT_GT(r.delta_lambda_norm(), 0);
  EXPECT_GT(r.p_true_before(), 0);
  EXPECT_EQ(edit.edit().hyperparameters().at("site_source"), "request");
  EXPECT_EQ(edit.edit().hyperparameters().at("v_num_grad_steps"), "4");
  EXPECT_NE(Greedy(id), base);
  EXPECT_EQ(Greedy(""), base);

  grpc::ClientContext list_context;
  v1::ListEditsRequest list;
  list.set_session_id(id);
  v1::ListEditsResponse edits;
  ASSERT_TRUE(stub().ListEdits(&list_context, list, &edits).ok());
  ASSERT_EQ(edits.edits_size(), 1);
  EXPECT_EQ(edits.edits(0).edit_id(), 1);
  EXPECT_EQ(edits.edits(0).rewrites(0).p_new_after(), r.p_new_after());
  EXPECT_EQ(edits.edits(0).created_unix_s(), edit.edit().created_unix_s());

  v1::RevertRequest revert;
  revert.set_session_id(id);
  revert.set_pop(1);
  v1::RevertResponse reverted;
  ASSERT_TRUE(CallRevert(revert, &reverted).ok());
  EXPECT_THAT(reverted.reverted_edit_ids(), ElementsAre(1));
  EXPECT_EQ(reverted.session().num_edits(), 0);
  EXPECT_EQ(Greedy(id), base);

  const std::string metrics = served_->metrics->ScrapeText();
  EXPECT_THAT(metrics, HasSubstr("romed_edit_stage_duration_seconds_count{stage=\"value\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("romed_requests_total{code=\"OK\",method=\"Edit\"} 1"));
}

TEST_F(SessionServiceTest, ComputeStatsStreamsProgressThenServesTheCache) {
  const std::string corpus =
      testing::WriteTextFile(state_dir_ + "/corpus.txt", testing::StatsCorpusText());
  v1::ComputeStatsRequest request;
  request.set_layer(0);
  request.set_corpus_path(corpus);
  std::vector<v1::ComputeStatsProgress> messages;
  {
    grpc::ClientContext context;
    auto reader = stub().ComputeStats(&context, request);
    v1::ComputeStatsProgress message;
    while (reader->Read(&message)) messages.push_back(message);
    ASSERT_TRUE(reader->Finish().ok());
  }
  ASSERT_GE(messages.size(), 3u);
  EXPECT_FALSE(messages.front().done());
  EXPECT_LT(messages.front().tokens_done(), messages.back().tokens_done());
  EXPECT_EQ(messages.front().corpus_path(), corpus);
  const v1::ComputeStatsProgress& last = messages.back();
  EXPECT_TRUE(last.done());
  EXPECT_FALSE(last.cached());
  EXPECT_EQ(last.tokens_done(), last.tokens_total());
  EXPECT_THAT(last.cache_key(), HasSubstr(state_dir_ + "/stats/"));
  EXPECT_THAT(last.source(), HasSubstr("tokens"));

  grpc::ClientContext context;
  auto reader = stub().ComputeStats(&context, request);
  v1::ComputeStatsProgress only;
  ASSERT_TRUE(reader->Read(&only));
  EXPECT_TRUE(only.done());
  EXPECT_TRUE(only.cached());
  EXPECT_FALSE(reader->Read(&only));
  EXPECT_TRUE(reader->Finish().ok());
}

// A random checkpoint that answers `answer` after any prompt of
// `prompt_bytes` bytes: position embeddings (x100) at the last prompt
// position and at each answer position but the last point at the next
// answer token's embedding, so they dominate the final hidden state and
// the tied LM head picks that token.
std::string WriteAnsweringCheckpoint(size_t prompt_bytes, const std::string& answer) {
  const Gpt2Config config = testing::EditTestConfig();
  Gpt2Weights weights = Gpt2Weights::Random(config, 11);
  auto tokenizer =
      Gpt2Tokenizer::FromText(testing::ByteLevelVocabJson(), testing::ByteLevelMergesTxt());
  EXPECT_TRUE(tokenizer.ok());
  const std::vector<int64_t> ids = *(*tokenizer)->Encode(answer);
  for (size_t i = 0; i < ids.size(); ++i) {
    torch::NoGradGuard no_grad;
    weights.wpe[prompt_bytes - 1 + i].copy_(weights.wte[ids[i]] * 100.0);
  }
  const std::string dir = testing::MakeTempDir("romed-answering");
  EXPECT_TRUE(SaveCheckpoint(dir, config, weights, testing::ByteLevelVocabJson(),
                             testing::ByteLevelMergesTxt())
                  .ok());
  return dir;
}

TEST_F(SessionServiceTest, TargetTheModelAlreadyPredictsIsAllowedAndReported) {
  const std::string prompt = "Anna Berg lives in";
  served_ = ServeEditModel(state_dir_, WriteAnsweringCheckpoint(prompt.size(), " Qx"));
  ASSERT_NE(served_, nullptr);
  grpc::ClientContext context;
  v1::GenerateRequest generate;
  generate.set_prompt(prompt);
  generate.set_max_new_tokens(3);
  v1::GenerateResponse answer;
  ASSERT_TRUE(stub().Generate(&context, generate, &answer).ok());
  ASSERT_EQ(answer.text(), " Qx");  // the model already says it

  const std::string id = Create().id();
  v1::EditResponse response;
  ASSERT_TRUE(CallEdit(QuickEdit(id, "Qx"), &response).ok());
  EXPECT_TRUE(response.edit().rewrites(0).target_already_predicted());
  EXPECT_EQ(response.session().num_edits(), 1);
  ASSERT_TRUE(CallEdit(QuickEdit(id, "Rome"), &response).ok());
  EXPECT_FALSE(response.edit().rewrites(0).target_already_predicted());
}

// ---------------------------------------------------------------- bad input

TEST_F(SessionServiceTest, MalformedRewritesAreInvalidArgument) {
  const std::string id = Create().id();
  ASSERT_TRUE(CallEdit(QuickEdit(id)).ok());
  auto with_prompt = [&](const std::string& prompt) {
    v1::EditRequest request = QuickEdit(id);
    request.mutable_rewrites(0)->set_prompt(prompt);
    return request;
  };
  ExpectEditRejected(with_prompt("Anna Berg lives in"), kInvalid, "write \"{}\" where the subject",
                     id);
  ExpectEditRejected(with_prompt("Bo Lund lives in"), kInvalid, "is not in the prompt", id);
  ExpectEditRejected(with_prompt("{} met {} in"), kInvalid, "2 \"{}\" placeholders", id);
  ExpectEditRejected(QuickEdit(id, ""), kInvalid, "rewrites[0]: target_new is empty", id);
  v1::EditRequest no_subject = QuickEdit(id);
  no_subject.mutable_rewrites(0)->clear_subject();
  ExpectEditRejected(no_subject, kInvalid, "subject is empty", id);
  v1::EditRequest none = QuickEdit(id);
  none.clear_rewrites();
  ExpectEditRejected(none, kInvalid, "no rewrites", id);
}

TEST_F(SessionServiceTest, HyperparametersOutOfRangeAreInvalidArgument) {
  const std::string id = Create().id();
  v1::EditRequest layer = QuickEdit(id);
  layer.mutable_hparams()->set_layer(5);
  ExpectEditRejected(layer, kInvalid, "layer 5 is out of range: the model has 2 layers", id);
  v1::EditRequest lr = QuickEdit(id);
  lr.mutable_hparams()->set_v_lr(-0.1f);
  ExpectEditRejected(lr, kInvalid, "v_lr must be > 0", id);
  v1::EditRequest steps = QuickEdit(id);
  steps.mutable_hparams()->set_v_num_grad_steps(0);  // set, so not the default
  ExpectEditRejected(steps, kInvalid, "v_num_grad_steps must be >= 1", id);
  v1::EditRequest token = QuickEdit(id);
  token.mutable_hparams()->set_fact_token(static_cast<v1::FactToken>(9));
  ExpectEditRejected(token, kInvalid, "fact_token has the unknown value 9", id);
}

TEST_F(SessionServiceTest, UnknownOrMissingSessionIdsAreRejected) {
  EXPECT_THAT(CallEdit(QuickEdit("")),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("session_id is required"),
                                           HasSubstr("romectl session create"))));
  EXPECT_THAT(CallEdit(QuickEdit("s-0000000000000000")),
              GrpcStatusIs(kNotFound, HasSubstr("s-0000000000000000")));
  EXPECT_EQ(served_->engine->sessions().size(), 0);
  grpc::ClientContext get_context;
  v1::GetSessionRequest get;
  v1::Session session;
  EXPECT_THAT(stub().GetSession(&get_context, get, &session),
              GrpcStatusIs(kInvalid, HasSubstr("id is required")));
  grpc::ClientContext list_context;
  v1::ListEditsRequest list;
  list.set_session_id("s-nope");
  v1::ListEditsResponse edits;
  EXPECT_THAT(stub().ListEdits(&list_context, list, &edits),
              GrpcStatusIs(kNotFound, HasSubstr("s-nope")));
  grpc::ClientContext delete_context;
  v1::DeleteSessionRequest del;
  del.set_id("s-nope");
  v1::DeleteSessionResponse deleted;
  EXPECT_THAT(stub().DeleteSession(&delete_context, del, &deleted),
              GrpcStatusIs(kNotFound, HasSubstr("s-nope")));
  grpc::ClientContext page_context;
  v1::ListSessionsRequest page;
  page.set_page_token("garbage");
  v1::ListSessionsResponse sessions;
  EXPECT_THAT(stub().ListSessions(&page_context, page, &sessions),
              GrpcStatusIs(kInvalid, HasSubstr("page_token")));
}

TEST_F(SessionServiceTest, RevertsTheStackDoesNotAllowAreRejected) {
  const std::string id = Create().id();
  ASSERT_TRUE(CallEdit(QuickEdit(id)).ok());
  const auto before = Greedy(id);
  v1::RevertRequest request;
  request.set_session_id(id);
  EXPECT_THAT(CallRevert(request), GrpcStatusIs(kInvalid, HasSubstr("set pop")));
  request.set_pop(3);
  EXPECT_THAT(CallRevert(request),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("cannot revert 3 edits"), HasSubstr("holds 1"))));
  request.set_keep_up_to_id(9);
  EXPECT_THAT(CallRevert(request), GrpcStatusIs(kNotFound, HasSubstr("9")));
  request.set_session_id("s-nope");
  request.set_pop(1);
  EXPECT_THAT(CallRevert(request), GrpcStatusIs(kNotFound, HasSubstr("s-nope")));
  EXPECT_EQ(Depth(id), 1);
  EXPECT_EQ(Greedy(id), before);
}

TEST_F(SessionServiceTest, LimitsAreResourceExhausted) {
  const std::string id = Create().id();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(CallEdit(QuickEdit(id)).ok());
  ExpectEditRejected(QuickEdit(id), grpc::StatusCode::RESOURCE_EXHAUSTED,
                     "--max_edits_per_session", id);
  for (int i = 1; i < 8; ++i) Create();
  grpc::ClientContext context;
  v1::Session session;
  EXPECT_THAT(stub().CreateSession(&context, {}, &session),
              GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("--max_sessions")));
  EXPECT_EQ(served_->engine->sessions().size(), 8);
}

TEST_F(SessionServiceTest, OverlongNameIsInvalidArgument) {
  grpc::ClientContext context;
  v1::CreateSessionRequest request;
  request.set_name(std::string(200, 'n'));
  v1::Session session;
  EXPECT_THAT(stub().CreateSession(&context, request, &session),
              GrpcStatusIs(kInvalid, HasSubstr("at most 128")));
  EXPECT_EQ(served_->engine->sessions().size(), 0);
}

TEST_F(SessionServiceTest, MissingOrEmptyStatsCorpusIsReported) {
  const std::string id = Create().id();
  v1::EditRequest corpus_needed = QuickEdit(id);
  corpus_needed.mutable_hparams()->set_identity_covariance(false);
  ExpectEditRejected(corpus_needed, grpc::StatusCode::FAILED_PRECONDITION, "--stats_corpus", id);

  auto stats = [&](const std::string& corpus, int layer) {
    grpc::ClientContext context;
    v1::ComputeStatsRequest request;
    request.set_layer(layer);
    request.set_corpus_path(corpus);
    auto reader = stub().ComputeStats(&context, request);
    v1::ComputeStatsProgress message;
    while (reader->Read(&message)) {
    }
    return reader->Finish();
  };
  EXPECT_THAT(stats(state_dir_ + "/missing.txt", 0),
              GrpcStatusIs(kNotFound, HasSubstr("does not exist")));
  EXPECT_THAT(stats(testing::WriteTextFile(state_dir_ + "/empty.txt", ""), 0),
              GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION, HasSubstr("empty")));
  EXPECT_THAT(stats("", 7), GrpcStatusIs(kInvalid, HasSubstr("layer 7 is out of range")));
}

}  // namespace
}  // namespace romed
