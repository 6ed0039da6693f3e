#include "tests/client/fake_model_editor.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace romed::testing {

romed::v1::ModelInfo FakeModelInfo() {
  romed::v1::ModelInfo info;
  info.set_architecture("gpt2");
  info.set_model_dir("/models/tiny");
  info.set_checksum("ab12");
  info.set_num_parameters(123456789012);  // > 2^32: must survive as a number
  info.set_n_layer(2);
  info.set_n_embd(64);
  info.set_n_head(2);
  info.set_mlp_width(256);
  info.set_vocab_size(257);
  info.set_context_length(1024);
  info.set_dtype("float32");
  info.set_device("cpu");
  info.set_blas("openblas");
  info.set_threads(2);
  info.mutable_limits()->set_max_prompt_tokens(1024);
  info.mutable_limits()->set_max_new_tokens(256);
  (*info.mutable_rpc_status())["Generate"] = "available";
  (*info.mutable_rpc_status())["Edit"] = "UNIMPLEMENTED: needs the edit issue";
  info.set_server_version("0.1.0");
  return info;
}

romed::v1::GenerateResponse FakeGenerateResponse() {
  romed::v1::GenerateResponse reply;
  reply.set_text(" Paris");
  reply.add_ids(6342);
  reply.add_ids(271);
  reply.add_logprobs(-0.5f);
  reply.add_logprobs(-1.5f);
  reply.set_finish_reason(romed::v1::FINISH_REASON_LENGTH);
  reply.set_time_to_first_token_s(0.25);
  reply.set_total_time_s(0.5);
  return reply;
}

void FakeModelEditor::FailWith(std::optional<grpc::Status> status) {
  absl::MutexLock lock(&mu_);
  fail_with_ = std::move(status);
}

void FakeModelEditor::OmitDone(bool omit) {
  absl::MutexLock lock(&mu_);
  omit_done_ = omit;
}

romed::v1::GenerateRequest FakeModelEditor::last_generate_request() const {
  absl::MutexLock lock(&mu_);
  return last_generate_;
}

romed::v1::ScoreRequest FakeModelEditor::last_score_request() const {
  absl::MutexLock lock(&mu_);
  return last_score_;
}

absl::Time FakeModelEditor::last_deadline() const {
  absl::MutexLock lock(&mu_);
  return last_deadline_;
}

bool FakeModelEditor::last_stream_cancelled() const {
  absl::MutexLock lock(&mu_);
  return last_stream_cancelled_;
}

grpc::Status FakeModelEditor::Admit(grpc::ServerContext* context, const std::string* prompt) {
  absl::MutexLock lock(&mu_);
  last_deadline_ = absl::FromChrono(context->deadline());
  if (fail_with_.has_value()) return *fail_with_;
  if (prompt != nullptr && prompt->empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "prompt is empty");
  }
  return grpc::Status::OK;
}

grpc::Status FakeModelEditor::GetModelInfo(grpc::ServerContext* context,
                                           const romed::v1::GetModelInfoRequest*,
                                           romed::v1::ModelInfo* reply) {
  grpc::Status admitted = Admit(context, nullptr);
  if (admitted.ok()) *reply = FakeModelInfo();
  return admitted;
}

grpc::Status FakeModelEditor::Tokenize(grpc::ServerContext* context,
                                       const romed::v1::TokenizeRequest* request,
                                       romed::v1::TokenizeResponse* reply) {
  grpc::Status admitted = Admit(context, nullptr);
  if (!admitted.ok()) return admitted;
  for (unsigned char byte : request->text()) {
    reply->add_ids(byte);
    reply->add_tokens(std::string(1, static_cast<char>(byte)));
  }
  return grpc::Status::OK;
}

grpc::Status FakeModelEditor::Generate(grpc::ServerContext* context,
                                       const romed::v1::GenerateRequest* request,
                                       romed::v1::GenerateResponse* reply) {
  {
    absl::MutexLock lock(&mu_);
    last_generate_ = *request;
  }
  grpc::Status admitted = Admit(context, &request->prompt());
  if (!admitted.ok()) return admitted;
  if (request->prompt() == "slow") absl::SleepFor(absl::Seconds(2));
  *reply = FakeGenerateResponse();
  reply->set_prompt_tokens(static_cast<int64_t>(request->prompt().size()));
  return grpc::Status::OK;
}

grpc::Status FakeModelEditor::GenerateStream(
    grpc::ServerContext* context, const romed::v1::GenerateRequest* request,
    grpc::ServerWriter<romed::v1::GenerateStreamResponse>* writer) {
  {
    absl::MutexLock lock(&mu_);
    last_generate_ = *request;
    last_stream_cancelled_ = false;
  }
  grpc::Status admitted = Admit(context, &request->prompt());
  if (!admitted.ok()) return admitted;
  const romed::v1::GenerateResponse result = FakeGenerateResponse();
  for (int i = 0; i < 2; ++i) {
    romed::v1::GenerateStreamResponse piece;
    piece.set_text(i == 0 ? " Par" : "is");
    piece.add_ids(result.ids(i));
    piece.add_logprobs(result.logprobs(i));
    writer->Write(piece);
    // Give a cancelling client time to be seen before the next piece.
    absl::SleepFor(absl::Milliseconds(100));
    if (context->IsCancelled()) {
      absl::MutexLock lock(&mu_);
      last_stream_cancelled_ = true;
      return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
    }
  }
  absl::MutexLock lock(&mu_);
  if (omit_done_) return grpc::Status::OK;
  romed::v1::GenerateStreamResponse done;
  done.set_done(true);
  *done.mutable_result() = result;
  writer->Write(done);
  return grpc::Status::OK;
}

grpc::Status FakeModelEditor::Score(grpc::ServerContext* context,
                                    const romed::v1::ScoreRequest* request,
                                    romed::v1::ScoreResponse* reply) {
  {
    absl::MutexLock lock(&mu_);
    last_score_ = *request;
  }
  grpc::Status admitted = Admit(context, &request->prompt());
  if (!admitted.ok()) return admitted;
  reply->set_prompt_tokens(static_cast<int64_t>(request->prompt().size()));
  for (const std::string& continuation : request->continuations()) {
    romed::v1::ContinuationScore* score = reply->add_scores();
    score->set_continuation(continuation);
    for (unsigned char byte : continuation) {
      score->add_ids(byte);
      score->add_tokens(std::string(1, static_cast<char>(byte)));
      score->add_token_logprobs(-1.0f);
    }
    score->set_total_logprob(-static_cast<double>(continuation.size()));
    score->set_mean_logprob(continuation.empty() ? 0.0 : -1.0);
  }
  return grpc::Status::OK;
}

FakeServer::FakeServer() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&editor_);
  server_ = builder.BuildAndStart();
  target_ = absl::StrCat("127.0.0.1:", port);
}

FakeServer::~FakeServer() { server_->Shutdown(absl::ToChronoTime(absl::Now())); }

std::shared_ptr<grpc::Channel> FakeServer::InProcessChannel() {
  return server_->InProcessChannel(grpc::ChannelArguments());
}

void FakeServer::SetServing(bool serving) {
  server_->GetHealthCheckService()->SetServingStatus(serving);
}

}  // namespace romed::testing
