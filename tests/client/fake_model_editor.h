// A romed.v1.ModelEditor test double and a server that hosts it, for tests of
// the client library and romectl without a model.
//
// The fake answers with small fixed values derived from the request (so a
// test can tell that its request arrived intact) and mimics the real
// server's validation in one place: an empty prompt is INVALID_ARGUMENT.
// A test can also make every RPC fail with a chosen status.
#ifndef ROMED_TESTS_CLIENT_FAKE_MODEL_EDITOR_H_
#define ROMED_TESTS_CLIENT_FAKE_MODEL_EDITOR_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "romed/v1/model_editor.grpc.pb.h"

namespace romed::testing {

// Replies of the fake, fixed so tests can spell them out:
// - GetModelInfo: FakeModelInfo().
// - Tokenize: one token per byte of the text; id = the byte value, token =
//   the byte as a one-character string.
// - Generate: FakeGenerateResponse() with prompt_tokens = the prompt's bytes;
//   the prompt "slow" first sleeps 2 s (for deadline tests).
// - GenerateStream: the pieces " Par" and "is" then a `done` message whose
//   result is FakeGenerateResponse(); with `omit_done` set, no done message.
// - Score: per continuation one token per byte, each logprob -1.
class FakeModelEditor final : public romed::v1::ModelEditor::Service {
 public:
  // Every RPC answers `status` instead of its reply (until cleared).
  void FailWith(std::optional<grpc::Status> status);
  // GenerateStream ends without its `done` message.
  void OmitDone(bool omit);

  romed::v1::GenerateRequest last_generate_request() const;
  romed::v1::ScoreRequest last_score_request() const;
  // The deadline of the last call, as the server saw it.
  absl::Time last_deadline() const;
  // Whether the last GenerateStream saw its client cancel.
  bool last_stream_cancelled() const;

  grpc::Status GetModelInfo(grpc::ServerContext* context,
                            const romed::v1::GetModelInfoRequest* request,
                            romed::v1::ModelInfo* reply) override;
  grpc::Status Tokenize(grpc::ServerContext* context, const romed::v1::TokenizeRequest* request,
                        romed::v1::TokenizeResponse* reply) override;
  grpc::Status Generate(grpc::ServerContext* context, const romed::v1::GenerateRequest* request,
                        romed::v1::GenerateResponse* reply) override;
  grpc::Status GenerateStream(
      grpc::ServerContext* context, const romed::v1::GenerateRequest* request,
      grpc::ServerWriter<romed::v1::GenerateStreamResponse>* writer) override;
  grpc::Status Score(grpc::ServerContext* context, const romed::v1::ScoreRequest* request,
                     romed::v1::ScoreResponse* reply) override;

 private:
  // The forced failure if any, else the empty-prompt check; records the
  // deadline. OK means "answer normally".
  grpc::Status Admit(grpc::ServerContext* context, const std::string* prompt);

  mutable absl::Mutex mu_;
  std::optional<grpc::Status> fail_with_ ABSL_GUARDED_BY(mu_);
  bool omit_done_ ABSL_GUARDED_BY(mu_) = false;
  romed::v1::GenerateRequest last_generate_ ABSL_GUARDED_BY(mu_);
  romed::v1::ScoreRequest last_score_ ABSL_GUARDED_BY(mu_);
  absl::Time last_deadline_ ABSL_GUARDED_BY(mu_);
  bool last_stream_cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

romed::v1::ModelInfo FakeModelInfo();
romed::v1::GenerateResponse FakeGenerateResponse();

// Hosts a FakeModelEditor and gRPC's default health service, reachable both
// in-process and on an ephemeral 127.0.0.1 port. Health starts SERVING.
class FakeServer {
 public:
  FakeServer();
  ~FakeServer();

  FakeModelEditor& editor() { return editor_; }
  std::shared_ptr<grpc::Channel> InProcessChannel();
  // "127.0.0.1:PORT", for romectl's --server.
  std::string target() const { return target_; }
  void SetServing(bool serving);

 private:
  FakeModelEditor editor_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
};

}  // namespace romed::testing

#endif  // ROMED_TESTS_CLIENT_FAKE_MODEL_EDITOR_H_
