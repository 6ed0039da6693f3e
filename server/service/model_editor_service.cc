#include "server/service/model_editor_service.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/service/proto_convert_trace.h"
#include "server/service/rpc_availability.h"
#include "server/service/status_mapping.h"

namespace romed {
namespace {

// Stops decoding once the client has gone (cancel, deadline, disconnect).
TokenCallback StopWhenCancelled(grpc::ServerContext* context) {
  return [context](const GeneratedToken&) { return !context->IsCancelled(); };
}

// Streams each decoded token as one message and remembers the text sent.
class TokenStreamer {
 public:
  TokenStreamer(grpc::ServerContext* context,
                grpc::ServerWriter<v1::GenerateStreamResponse>* writer)
      : context_(context), writer_(writer) {}

  bool OnToken(const GeneratedToken& token) {
    if (context_->IsCancelled()) return false;
    v1::GenerateStreamResponse message;
    message.set_text(token.text);
    message.add_ids(token.id);
    message.add_logprobs(token.logprob);
    if (!writer_->Write(message)) {
      write_failed_ = true;
      return false;
    }
    streamed_text_ += token.text;
    return true;
  }

  // The last message: the full result, plus whatever final text the token
  // messages have not carried, so the pieces always concatenate to it.
  bool Finish(const GenerateResult& result) {
    v1::GenerateStreamResponse last;
    last.set_done(true);
    ToProto(result, last.mutable_result());
    if (result.text.size() > streamed_text_.size() &&
        result.text.compare(0, streamed_text_.size(), streamed_text_) == 0) {
      last.set_text(result.text.substr(streamed_text_.size()));
    }
    return writer_->Write(last);
  }

  bool write_failed() const { return write_failed_; }

 private:
  grpc::ServerContext* context_;
  grpc::ServerWriter<v1::GenerateStreamResponse>* writer_;
  std::string streamed_text_;
  bool write_failed_ = false;
};

}  // namespace

ModelEditorService::ModelEditorService(ServerFacts facts, ServingMetrics* metrics)
    : facts_(std::move(facts)), metrics_(metrics) {}

void ModelEditorService::SetEngine(std::shared_ptr<Engine> engine) {
  std::lock_guard<std::mutex> lock(engine_mutex_);
  engine_ = std::move(engine);
}

absl::StatusOr<std::shared_ptr<Engine>> ModelEditorService::GetEngine() const {
  std::lock_guard<std::mutex> lock(engine_mutex_);
  if (engine_ == nullptr) {
    return absl::UnavailableError(
        "the model is still loading; retry when grpc.health.v1 reports SERVING");
  }
  return engine_;
}

grpc::Status ModelEditorService::Handle(std::string_view method,
                                        const std::function<absl::Status()>& body) {
  ScopedInflight inflight(metrics_);
  const auto start = std::chrono::steady_clock::now();
  const absl::Status status = body();
  const grpc::Status result = ToGrpcStatus(status);
  if (metrics_ != nullptr) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    metrics_->RecordRequest(method, StatusCodeName(result.error_code()), seconds);
  }
  return result;
}

grpc::Status ModelEditorService::GetModelInfo(Ctx*, const v1::GetModelInfoRequest*,
                                              v1::ModelInfo* response) {
  return Handle("GetModelInfo", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ToProto(engine->Info(), facts_, response);
    if (std::optional<SiteRecommendation> site = engine->edit_sites().Get()) {
      ToProto(*site, response->mutable_edit_site());
    }
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::Tokenize(Ctx*, const v1::TokenizeRequest* request,
                                          v1::TokenizeResponse* response) {
  return Handle("Tokenize", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(TokenizeResult result, engine->Tokenize(request->text()));
    ToProto(result, response);
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::Generate(Ctx* context, const v1::GenerateRequest* request,
                                          v1::GenerateResponse* response) {
  return Handle("Generate", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(GenerateResult result,
                     engine->Generate(FromProto(*request), StopWhenCancelled(context)));
    if (context->IsCancelled()) return absl::CancelledError("Generate: cancelled by the client");
    ToProto(result, response);
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::GenerateStream(
    Ctx* context, const v1::GenerateRequest* request,
    grpc::ServerWriter<v1::GenerateStreamResponse>* writer) {
  return Handle("GenerateStream", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    TokenStreamer streamer(context, writer);
    ASSIGN_OR_RETURN(GenerateResult result,
                     engine->Generate(FromProto(*request), [&](const GeneratedToken& token) {
                       return streamer.OnToken(token);
                     }));
    if (context->IsCancelled() || streamer.write_failed() || !streamer.Finish(result)) {
      return absl::CancelledError("GenerateStream: the client cancelled or went away");
    }
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::Score(Ctx*, const v1::ScoreRequest* request,
                                       v1::ScoreResponse* response) {
  return Handle("Score", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(ScoreResult result, engine->Score(FromProto(*request)));
    ToProto(result, response);
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::Unimplemented(std::string_view method) {
  return Handle(method, [&] { return NotImplementedYet(method); });
}

}  // namespace romed
