// RomedClient's causal-trace calls (romed_client.h).
#include <memory>
#include <optional>
#include <utility>

#include "client/romed_client.h"
#include "client/status_conversion.h"

namespace romed::client {
namespace {

// Reads a server stream whose last message has `done` set: passes earlier
// messages to `on_progress` (returning false cancels the call) and returns
// the done message's result (`take_result` moves it out).
template <typename Message, typename Result, typename TakeResult>
absl::StatusOr<Result> ReadDoneStream(grpc::ClientContext* context,
                                      grpc::ClientReader<Message>* reader,
                                      const std::function<bool(const Message&)>& on_progress,
                                      const char* rpc, TakeResult take_result) {
  Message message;
  std::optional<Result> result;
  bool cancelled = false;
  while (reader->Read(&message)) {
    if (message.done()) {
      result = take_result(message);
    } else if (!cancelled && on_progress && !on_progress(message)) {
      cancelled = true;
      context->TryCancel();
    }
  }
  absl::Status status = FromGrpcStatus(reader->Finish());
  if (cancelled) return absl::CancelledError(std::string(rpc) + " cancelled by the caller");
  if (!status.ok()) return status;
  if (!result.has_value()) {
    return absl::InternalError(std::string(rpc) + " ended without a final (done) message");
  }
  return *std::move(result);
}

}  // namespace

absl::StatusOr<romed::v1::TraceResponse> RomedClient::Trace(
    const romed::v1::TraceRequest& request, const CallOptions& call) const {
  grpc::ClientContext context;
  PrepareContext(call, &context);
  romed::v1::TraceResponse response;
  absl::Status status = FromGrpcStatus(editor_->Trace(&context, request, &response));
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<romed::v1::TraceResponse> RomedClient::TraceStream(
    const romed::v1::TraceRequest& request, const TraceProgressCallback& on_progress,
    const CallOptions& call) const {
  grpc::ClientContext context;
  PrepareContext(call, &context);
  std::unique_ptr<grpc::ClientReader<romed::v1::TraceStreamResponse>> reader =
      editor_->TraceStream(&context, request);
  return ReadDoneStream<romed::v1::TraceStreamResponse, romed::v1::TraceResponse>(
      &context, reader.get(), on_progress, "TraceStream",
      [](romed::v1::TraceStreamResponse& m) { return std::move(*m.mutable_result()); });
}

absl::StatusOr<romed::v1::TraceFactsResult> RomedClient::TraceFacts(
    const romed::v1::TraceFactsRequest& request, const TraceFactsCallback& on_fact,
    const CallOptions& call) const {
  grpc::ClientContext context;
  PrepareContext(call, &context);
  std::unique_ptr<grpc::ClientReader<romed::v1::TraceFactsProgress>> reader =
      editor_->TraceFacts(&context, request);
  return ReadDoneStream<romed::v1::TraceFactsProgress, romed::v1::TraceFactsResult>(
      &context, reader.get(), on_fact, "TraceFacts",
      [](romed::v1::TraceFactsProgress& m) { return std::move(*m.mutable_result()); });
}

}  // namespace romed::client
