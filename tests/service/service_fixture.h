// A ModelEditorService on a tiny random checkpoint, served in-process
// (grpc::Server::InProcessChannel, no port), once per test suite.
#ifndef ROMED_TESTS_SERVICE_SERVICE_FIXTURE_H_
#define ROMED_TESTS_SERVICE_SERVICE_FIXTURE_H_

#include <filesystem>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "romed/v1/model_editor.grpc.pb.h"
#include "server/engine/engine.h"
#include "server/metrics/metrics.h"
#include "server/model/checkpoint.h"
#include "server/service/grpc_server.h"
#include "server/service/model_editor_service.h"
#include "tests/testing/tiny_model.h"

namespace romed::testing {

// Limits of the served engine (the tiny model's context is 64 tokens).
inline EngineOptions ServiceTestOptions() {
  EngineOptions options;
  options.limits.max_prompt_tokens = 48;
  options.limits.max_new_tokens = 16;
  options.limits.max_stop_sequences = 2;
  options.limits.max_continuations = 4;
  options.limits.max_concurrent_requests = 16;
  return options;
}
inline constexpr int64_t kTestMaxReceiveBytes = 64 * 1024;

// Everything one served model needs; destroyed in reverse order.
struct ServedModel {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<ServingMetrics> metrics = std::make_unique<ServingMetrics>(*registry);
  std::unique_ptr<ModelEditorService> service;
  std::shared_ptr<Engine> engine;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<v1::ModelEditor::Stub> stub;

  ~ServedModel() {
    if (server != nullptr) server->Shutdown();
  }
};

// Starts the server; loads the model unless `load` is false (then model
// RPCs answer UNAVAILABLE). ADD_FAILURE and null on error.
inline std::unique_ptr<ServedModel> ServeTinyModel(bool load = true,
                                                   EngineOptions options = ServiceTestOptions()) {
  auto served = std::make_unique<ServedModel>();
  served->service = std::make_unique<ModelEditorService>(
      ServerFacts{kTestMaxReceiveBytes, "test"}, served->metrics.get());
  GrpcServerOptions server_options;
  server_options.max_receive_message_bytes = kTestMaxReceiveBytes;
  absl::StatusOr<StartedServer> started = StartGrpcServer(server_options, served->service.get());
  if (!started.ok()) {
    ADD_FAILURE() << started.status();
    return nullptr;
  }
  served->server = std::move(started->server);
  served->stub = v1::ModelEditor::NewStub(served->server->InProcessChannel(grpc::ChannelArguments()));
  if (!load) return served;
  const std::string dir = WriteTinyCheckpoint();
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(dir);
  std::filesystem::remove_all(dir);  // loaded into memory
  if (!checkpoint.ok()) {
    ADD_FAILURE() << checkpoint.status();
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Create(*std::move(checkpoint), std::move(options), served->metrics.get());
  if (!engine.ok()) {
    ADD_FAILURE() << engine.status();
    return nullptr;
  }
  served->engine = *std::move(engine);
  served->service->SetEngine(served->engine);
  SetServing(*served->server, true);
  return served;
}

class ServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { served_ = ServeTinyModel().release(); }
  static void TearDownTestSuite() {
    delete served_;
    served_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(served_, nullptr); }

  static v1::ModelEditor::Stub& stub() { return *served_->stub; }
  static Engine& engine() { return *served_->engine; }
  static ServedModel& served() { return *served_; }

  static v1::GenerateRequest GreedyRequest(std::string prompt, int64_t max_new_tokens = 8) {
    v1::GenerateRequest request;
    request.set_prompt(std::move(prompt));
    request.set_max_new_tokens(max_new_tokens);
    request.set_ignore_eos(true);
    return request;
  }

  static grpc::Status CallGenerate(const v1::GenerateRequest& request,
                                   v1::GenerateResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::GenerateResponse ignored;
    return stub().Generate(&context, request, response != nullptr ? response : &ignored);
  }

  static grpc::Status CallScore(const v1::ScoreRequest& request,
                                v1::ScoreResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::ScoreResponse ignored;
    return stub().Score(&context, request, response != nullptr ? response : &ignored);
  }

  // After a rejected request, the server must still answer a good one.
  static void ExpectServerStillAnswers() {
    v1::GenerateResponse response;
    const grpc::Status status = CallGenerate(GreedyRequest("ok", 2), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.ids_size(), 2);
  }

  static ServedModel* served_;
};
inline ServedModel* ServiceTest::served_ = nullptr;

}  // namespace romed::testing

#endif  // ROMED_TESTS_SERVICE_SERVICE_FIXTURE_H_
