// ExportSession, ImportSession and ExportModel through an in-process
// channel: a session copied between two servers on the same base model
// scores bit for bit alike; every bad input gets its gRPC code.
#include <filesystem>
#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "tests/service/edit_test_util.h"
#include "tests/service/grpc_status_matchers.h"
#include "tests/service/service_fixture.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

namespace fs = std::filesystem;
using ::romed::testing::GrpcStatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A served edit-test engine (context 128) on the checkpoint in `dir`.
std::unique_ptr<testing::ServedModel> Serve(const std::string& dir) {
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
  served->engine = testing::MakeEditEngine(dir, testing::EditTestOptions());
  if (served->engine == nullptr) return nullptr;
  served->service->SetEngine(served->engine);
  SetServing(*served->server, true);
  return served;
}

class ExportServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(testing::WriteEditTestCheckpoint());
    other_dir_ = new std::string(testing::WriteEditTestCheckpoint(/*seed=*/8));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    fs::remove_all(*other_dir_);
    delete dir_;
    delete other_dir_;
  }
  void SetUp() override {
    a_ = Serve(*dir_);
    b_ = Serve(*dir_);
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
    scratch_ = testing::MakeTempDir("romed-export-service");
  }
  void TearDown() override { fs::remove_all(scratch_); }

  // A session on server a with one edit.
  std::string EditedSession() {
    grpc::ClientContext create_context;
    v1::Session session;
    EXPECT_TRUE(a_->stub->CreateSession(&create_context, v1::CreateSessionRequest(), &session).ok());
    const TextEditRequest quick = testing::QuickEdit(session.id());
    EXPECT_TRUE(a_->engine->Edit(quick).ok());
    return session.id();
  }

  grpc::Status Export(testing::ServedModel& served, const std::string& id,
                      v1::ExportSessionResponse* response) {
    grpc::ClientContext context;
    v1::ExportSessionRequest request;
    request.set_session_id(id);
    return served.stub->ExportSession(&context, request, response);
  }
  grpc::Status Import(testing::ServedModel& served, const std::string& file,
                      v1::ImportSessionResponse* response, const std::string& session_id = "") {
    grpc::ClientContext context;
    v1::ImportSessionRequest request;
    request.set_file(file);
    request.set_session_id(session_id);
    return served.stub->ImportSession(&context, request, response);
  }
  std::vector<float> ScoreOn(testing::ServedModel& served, const std::string& session_id) {
    grpc::ClientContext context;
    v1::ScoreRequest request;
    request.set_prompt("Anna Berg lives in");
    request.add_continuations(" Oslo");
    request.set_session_id(session_id);
    v1::ScoreResponse response;
    EXPECT_TRUE(served.stub->Score(&context, request, &response).ok());
    return {response.scores(0).token_logprobs().begin(), response.scores(0).token_logprobs().end()};
  }

  static std::string* dir_;
  static std::string* other_dir_;
  std::unique_ptr<testing::ServedModel> a_, b_;
  std::string scratch_;
};
std::string* ExportServiceTest::dir_ = nullptr;
std::string* ExportServiceTest::other_dir_ = nullptr;

TEST_F(ExportServiceTest, ASessionMovesToAnotherServerBitForBit) {
  const std::string source = EditedSession();
  v1::ExportSessionResponse exported;
  ASSERT_TRUE(Export(*a_, source, &exported).ok());
  EXPECT_EQ(exported.num_edits(), 1);
  EXPECT_EQ(exported.model_checksum(), a_->engine->checksum());

  v1::ImportSessionResponse imported;
  ASSERT_TRUE(Import(*b_, exported.file(), &imported).ok());
  EXPECT_TRUE(imported.created());
  EXPECT_EQ(imported.source_session_id(), source);
  ASSERT_EQ(imported.edits_size(), 1);
  EXPECT_EQ(imported.edits(0).edit_id(), 1);
  EXPECT_EQ(imported.edits(0).rewrites(0).rewrite().target_new(), "Oslo");
  EXPECT_EQ(ScoreOn(*b_, imported.session().id()), ScoreOn(*a_, source));
  EXPECT_NE(ScoreOn(*b_, imported.session().id()), ScoreOn(*b_, ""));

  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(a_->stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  for (const char* rpc : {"ExportSession", "ImportSession", "ExportModel"}) {
    EXPECT_EQ(info.rpc_status().at(rpc), "available") << rpc;
  }
}

TEST_F(ExportServiceTest, BadImportsGetTheirCodes) {
  v1::ExportSessionResponse exported;
  ASSERT_TRUE(Export(*a_, EditedSession(), &exported).ok());
  v1::ImportSessionResponse reply;
  EXPECT_THAT(Import(*b_, exported.file().substr(0, exported.file().size() / 2), &reply),
              GrpcStatusIs(grpc::StatusCode::INVALID_ARGUMENT, HasSubstr("not a valid")));
  EXPECT_THAT(Import(*b_, exported.file(), &reply, "s-0000000000000000"),
              GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("s-0000000000000000")));
  // Past the server's receive limit: gRPC refuses it before the handler.
  EXPECT_THAT(Import(*b_, exported.file() + std::string(testing::kTestMaxReceiveBytes, ' '), &reply),
              GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, HasSubstr("")));

  std::unique_ptr<testing::ServedModel> other = Serve(*other_dir_);
  ASSERT_NE(other, nullptr);
  EXPECT_THAT(Import(*other, exported.file(), &reply),
              GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION,
                           AllOf(HasSubstr(a_->engine->checksum()),
                                 HasSubstr(other->engine->checksum()))));
  v1::ExportSessionResponse none;
  EXPECT_THAT(Export(*a_, "s-0000000000000000", &none), GrpcStatusIs(grpc::StatusCode::NOT_FOUND, HasSubstr("s-0000000000000000")));
}

TEST_F(ExportServiceTest, ExportModelWritesACheckpointAndRefusesToOverwriteUnlessTold) {
  const std::string source = EditedSession();
  v1::ExportModelRequest request;
  request.set_session_id(source);
  request.set_out_dir(scratch_ + "/merged");
  v1::ExportModelResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(a_->stub->ExportModel(&context, request, &response).ok());
  }
  EXPECT_EQ(response.out_dir(), scratch_ + "/merged");
  EXPECT_EQ(response.num_deltas(), 1);
  EXPECT_GT(response.bytes_written(), 0);
  EXPECT_TRUE(fs::exists(scratch_ + "/merged/model.safetensors"));
  {
    grpc::ClientContext context;
    EXPECT_THAT(a_->stub->ExportModel(&context, request, &response),
                GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION, HasSubstr("--overwrite")));
  }
  request.set_overwrite(true);
  grpc::ClientContext context;
  EXPECT_TRUE(a_->stub->ExportModel(&context, request, &response).ok());
}

}  // namespace
}  // namespace romed
