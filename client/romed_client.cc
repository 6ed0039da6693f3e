#include "client/romed_client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/status_conversion.h"

namespace romed::client {
namespace {

using HealthResponse = grpc::health::v1::HealthCheckResponse;

ServingStatus FromProto(HealthResponse::ServingStatus status) {
  switch (status) {
    case HealthResponse::SERVING:
      return ServingStatus::kServing;
    case HealthResponse::NOT_SERVING:
      return ServingStatus::kNotServing;
    case HealthResponse::SERVICE_UNKNOWN:
      return ServingStatus::kServiceUnknown;
    default:
      return ServingStatus::kUnknown;
  }
}

}  // namespace

std::string_view ServingStatusName(ServingStatus status) {
  switch (status) {
    case ServingStatus::kServing:
      return "SERVING";
    case ServingStatus::kNotServing:
      return "NOT_SERVING";
    case ServingStatus::kServiceUnknown:
      return "SERVICE_UNKNOWN";
    case ServingStatus::kUnknown:
      break;
  }
  return "UNKNOWN";
}

absl::StatusOr<std::unique_ptr<RomedClient>> RomedClient::Connect(
    const RomedClientOptions& options) {
  if (options.target.empty()) return absl::InvalidArgumentError("empty server target");
  if (options.default_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("timeout must be > 0, got ", absl::FormatDuration(options.default_timeout)));
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  auto channel =
      grpc::CreateCustomChannel(options.target, grpc::InsecureChannelCredentials(), args);
  return std::make_unique<RomedClient>(std::move(channel), options.default_timeout);
}

RomedClient::RomedClient(std::shared_ptr<grpc::Channel> channel, absl::Duration default_timeout)
    : editor_(romed::v1::ModelEditor::NewStub(channel)),
      health_(grpc::health::v1::Health::NewStub(channel)),
      default_timeout_(default_timeout) {}

void RomedClient::PrepareContext(const CallOptions& call, grpc::ClientContext* context) const {
  const absl::Duration timeout = call.timeout.value_or(default_timeout_);
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

template <typename Request, typename Response>
absl::StatusOr<Response> RomedClient::CallUnary(
    grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
    const Request& request, const CallOptions& call) const {
  grpc::ClientContext context;
  PrepareContext(call, &context);
  Response response;
  absl::Status status = FromGrpcStatus((editor_.get()->*method)(&context, request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<ServingStatus> RomedClient::CheckHealth(std::string_view service,
                                                       const CallOptions& call) const {
  grpc::ClientContext context;
  PrepareContext(call, &context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(std::string(service));
  HealthResponse response;
  absl::Status status = FromGrpcStatus(health_->Check(&context, request, &response));
  if (!status.ok()) return status;
  return FromProto(response.status());
}

absl::StatusOr<romed::v1::ModelInfo> RomedClient::GetModelInfo(const CallOptions& call) const {
  return CallUnary(&Stub::GetModelInfo, romed::v1::GetModelInfoRequest(), call);
}

absl::StatusOr<romed::v1::TokenizeResponse> RomedClient::Tokenize(std::string_view text,
                                                                  const CallOptions& call) const {
  romed::v1::TokenizeRequest request;
  request.set_text(std::string(text));
  return CallUnary(&Stub::Tokenize, request, call);
}

absl::StatusOr<romed::v1::GenerateResponse> RomedClient::Generate(
    const romed::v1::GenerateRequest& request, const CallOptions& call) const {
  return CallUnary(&Stub::Generate, request, call);
}

absl::StatusOr<romed::v1::GenerateResponse> RomedClient::GenerateStream(
    const romed::v1::GenerateRequest& request, const StreamCallback& on_piece,
    const CallOptions& call) const {
  grpc::ClientContext context;
  PrepareContext(call, &context);
  std::unique_ptr<grpc::ClientReader<romed::v1::GenerateStreamResponse>> reader =
      editor_->GenerateStream(&context, request);
  romed::v1::GenerateStreamResponse message;
  std::optional<romed::v1::GenerateResponse> result;
  bool cancelled = false;
  while (reader->Read(&message)) {
    const bool has_piece = !message.text().empty() || message.ids_size() > 0;
    if (has_piece && !cancelled && on_piece && !on_piece(message)) {
      cancelled = true;
      context.TryCancel();
    }
    if (message.done()) result = std::move(*message.mutable_result());
  }
  absl::Status status = FromGrpcStatus(reader->Finish());
  if (cancelled) return absl::CancelledError("GenerateStream cancelled by the caller");
  if (!status.ok()) return status;
  if (!result.has_value()) {
    return absl::InternalError("GenerateStream ended without a final (done) message");
  }
  return *std::move(result);
}

absl::StatusOr<romed::v1::ScoreResponse> RomedClient::Score(const romed::v1::ScoreRequest& request,
                                                            const CallOptions& call) const {
  return CallUnary(&Stub::Score, request, call);
}

absl::StatusOr<romed::v1::CompareResponse> RomedClient::Compare(
    const romed::v1::CompareRequest& request, const CallOptions& call) const {
  return CallUnary(&Stub::Compare, request, call);
}

absl::StatusOr<romed::v1::Session> RomedClient::CreateSession(
    const romed::v1::CreateSessionRequest& request, const CallOptions& call) const {
  return CallUnary(&Stub::CreateSession, request, call);
}

absl::StatusOr<romed::v1::Session> RomedClient::GetSession(std::string_view id,
                                                           const CallOptions& call) const {
  romed::v1::GetSessionRequest request;
  request.set_id(std::string(id));
  return CallUnary(&Stub::GetSession, request, call);
}

absl::StatusOr<romed::v1::ListSessionsResponse> RomedClient::ListSessions(
    const romed::v1::ListSessionsRequest& request, const CallOptions& call) const {
  return CallUnary(&Stub::ListSessions, request, call);
}

absl::Status RomedClient::DeleteSession(std::string_view id, const CallOptions& call) const {
  romed::v1::DeleteSessionRequest request;
  request.set_id(std::string(id));
  return CallUnary(&Stub::DeleteSession, request, call).status();
}

absl::StatusOr<romed::v1::EditResponse> RomedClient::Edit(const romed::v1::EditRequest& request,
                                                          const CallOptions& call) const {
  return CallUnary(&Stub::Edit, request, call);
}

absl::StatusOr<romed::v1::RevertResponse> RomedClient::Revert(
    const romed::v1::RevertRequest& request, const CallOptions& call) const {
  return CallUnary(&Stub::Revert, request, call);
}

absl::StatusOr<romed::v1::ListEditsResponse> RomedClient::ListEdits(
    std::string_view session_id, const CallOptions& call) const {
  romed::v1::ListEditsRequest request;
  request.set_session_id(std::string(session_id));
  return CallUnary(&Stub::ListEdits, request, call);
}

absl::StatusOr<romed::v1::ComputeStatsProgress> RomedClient::ComputeStats(
    const romed::v1::ComputeStatsRequest& request, const StatsProgressCallback& on_progress,
    const CallOptions& call) const {
  grpc::ClientContext context;
  PrepareContext(call, &context);
  std::unique_ptr<grpc::ClientReader<romed::v1::ComputeStatsProgress>> reader =
      editor_->ComputeStats(&context, request);
  romed::v1::ComputeStatsProgress message;
  std::optional<romed::v1::ComputeStatsProgress> last;
  bool cancelled = false;
  while (reader->Read(&message)) {
    if (message.done()) {
      last = message;
    } else if (!cancelled && on_progress && !on_progress(message)) {
      cancelled = true;
      context.TryCancel();
    }
  }
  absl::Status status = FromGrpcStatus(reader->Finish());
  if (cancelled) return absl::CancelledError("ComputeStats cancelled by the caller");
  if (!status.ok()) return status;
  if (!last.has_value()) {
    return absl::InternalError("ComputeStats ended without a final (done) message");
  }
  return *std::move(last);
}

absl::StatusOr<romed::v1::ExportSessionResponse> RomedClient::ExportSession(
    std::string_view session_id, const CallOptions& call) const {
  romed::v1::ExportSessionRequest request;
  request.set_session_id(std::string(session_id));
  return CallUnary(&Stub::ExportSession, request, call);
}

absl::StatusOr<romed::v1::ImportSessionResponse> RomedClient::ImportSession(
    const romed::v1::ImportSessionRequest& request, const CallOptions& call) const {
  return CallUnary(&Stub::ImportSession, request, call);
}

absl::StatusOr<romed::v1::ExportModelResponse> RomedClient::ExportModel(
    const romed::v1::ExportModelRequest& request, const CallOptions& call) const {
  return CallUnary(&Stub::ExportModel, request, call);
}

}  // namespace romed::client
