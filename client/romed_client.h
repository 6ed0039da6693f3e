// RomedClient: a synchronous C++ client for a romed server.
//
// It wraps the romed.v1.ModelEditor stub and the standard grpc.health.v1
// Health stub, gives every call a deadline, and reports failures as
// absl::Status with the server's gRPC code and message unchanged (see
// status_conversion.h). Requests and replies are the API's own messages
// (proto/romed/v1/model_editor.proto documents every field), so nothing is
// lost or renamed between the contract and its callers.
//
//   RomedClientOptions options;
//   options.target = "127.0.0.1:50051";
//   ASSIGN_OR_RETURN(auto client, RomedClient::Connect(options));
//   romed::v1::GenerateRequest request;
//   request.set_prompt("The Eiffel Tower is in");
//   ASSIGN_OR_RETURN(romed::v1::GenerateResponse reply, client->Generate(request));
//
// Errors: whatever the server answers (INVALID_ARGUMENT, NOT_FOUND, ...);
// UNAVAILABLE when the server cannot be reached; DEADLINE_EXCEEDED when a
// call outlives its deadline.
//
// Thread safety: all methods are const and may be called concurrently; the
// underlying channel multiplexes calls.
#ifndef ROMED_CLIENT_ROMED_CLIENT_H_
#define ROMED_CLIENT_ROMED_CLIENT_H_

#include <grpcpp/channel.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "romed/v1/model_editor.grpc.pb.h"

namespace romed::client {

struct RomedClientOptions {
  // host:port of the server; any gRPC target string works ("dns:///...").
  std::string target = "127.0.0.1:50051";
  // Deadline of each call that does not name its own. Must be > 0.
  absl::Duration default_timeout = absl::Seconds(60);
  // Largest reply accepted, in bytes; -1 = unlimited (gRPC's default is 4 MiB).
  int max_receive_message_bytes = -1;
};

// The grpc.health.v1 answer, named without the proto's nesting.
enum class ServingStatus { kUnknown, kServing, kNotServing, kServiceUnknown };

// "SERVING", "NOT_SERVING", "UNKNOWN", "SERVICE_UNKNOWN" (the proto's names).
std::string_view ServingStatusName(ServingStatus status);

// Per-call settings; a default-constructed value uses the client's defaults.
struct CallOptions {
  std::optional<absl::Duration> timeout;  // unset = default_timeout
};

class RomedClient {
 public:
  // Called for each streamed message that carries new text or ids (the last,
  // `done` message too if it does), in order, on the calling thread. Return
  // false to cancel the call (GenerateStream then returns CANCELLED).
  using StreamCallback = std::function<bool(const romed::v1::GenerateStreamResponse&)>;

  // Creates an insecure channel to `options.target`. Connection happens
  // lazily on the first call, so an unreachable server shows up there as
  // UNAVAILABLE. INVALID_ARGUMENT if the options are unusable.
  static absl::StatusOr<std::unique_ptr<RomedClient>> Connect(const RomedClientOptions& options);

  // Uses an existing channel (tests pass an in-process channel here).
  RomedClient(std::shared_ptr<grpc::Channel> channel, absl::Duration default_timeout);

  RomedClient(const RomedClient&) = delete;
  RomedClient& operator=(const RomedClient&) = delete;

  // grpc.health.v1.Health/Check for `service` ("" = the whole server).
  // A server that is up but still loading answers kNotServing, not an error.
  absl::StatusOr<ServingStatus> CheckHealth(std::string_view service = "",
                                            const CallOptions& call = {}) const;

  absl::StatusOr<romed::v1::ModelInfo> GetModelInfo(const CallOptions& call = {}) const;

  absl::StatusOr<romed::v1::TokenizeResponse> Tokenize(std::string_view text,
                                                       const CallOptions& call = {}) const;

  absl::StatusOr<romed::v1::GenerateResponse> Generate(const romed::v1::GenerateRequest& request,
                                                       const CallOptions& call = {}) const;

  // GenerateStream: calls `on_piece` for each piece of text as it is decoded
  // and returns the final result (the last message's `result`). INTERNAL if
  // the stream ends without a `done` message.
  absl::StatusOr<romed::v1::GenerateResponse> GenerateStream(
      const romed::v1::GenerateRequest& request, const StreamCallback& on_piece,
      const CallOptions& call = {}) const;

  absl::StatusOr<romed::v1::ScoreResponse> Score(const romed::v1::ScoreRequest& request,
                                                 const CallOptions& call = {}) const;

  // Sessions, edits and statistics (the requests are the API's messages).
  absl::StatusOr<romed::v1::Session> CreateSession(const romed::v1::CreateSessionRequest& request,
                                                   const CallOptions& call = {}) const;
  absl::StatusOr<romed::v1::Session> GetSession(std::string_view id,
                                                const CallOptions& call = {}) const;
  absl::StatusOr<romed::v1::ListSessionsResponse> ListSessions(
      const romed::v1::ListSessionsRequest& request, const CallOptions& call = {}) const;
  absl::Status DeleteSession(std::string_view id, const CallOptions& call = {}) const;
  absl::StatusOr<romed::v1::EditResponse> Edit(const romed::v1::EditRequest& request,
                                               const CallOptions& call = {}) const;
  absl::StatusOr<romed::v1::RevertResponse> Revert(const romed::v1::RevertRequest& request,
                                                   const CallOptions& call = {}) const;
  absl::StatusOr<romed::v1::ListEditsResponse> ListEdits(std::string_view session_id,
                                                         const CallOptions& call = {}) const;

  // Called for each ComputeStats progress message before the last; return
  // false to cancel (ComputeStats then returns CANCELLED).
  using StatsProgressCallback = std::function<bool(const romed::v1::ComputeStatsProgress&)>;
  // ComputeStats: streams progress to `on_progress` (may be null) and
  // returns the last (done) message. INTERNAL if the stream ends without one.
  absl::StatusOr<romed::v1::ComputeStatsProgress> ComputeStats(
      const romed::v1::ComputeStatsRequest& request, const StatsProgressCallback& on_progress,
      const CallOptions& call = {}) const;

  // Export and import (the file's bytes travel in the messages; see the
  // proto). ImportSession's request must fit the server's
  // --max_receive_message_bytes (RESOURCE_EXHAUSTED otherwise). ExportModel
  // writes a directory on the server.
  absl::StatusOr<romed::v1::ExportSessionResponse> ExportSession(
      std::string_view session_id, const CallOptions& call = {}) const;
  absl::StatusOr<romed::v1::ImportSessionResponse> ImportSession(
      const romed::v1::ImportSessionRequest& request, const CallOptions& call = {}) const;
  absl::StatusOr<romed::v1::ExportModelResponse> ExportModel(
      const romed::v1::ExportModelRequest& request, const CallOptions& call = {}) const;

  // A/B: the same prompts on two variants in one batch (see the proto).
  absl::StatusOr<romed::v1::CompareResponse> Compare(const romed::v1::CompareRequest& request,
                                                     const CallOptions& call = {}) const;

  // Causal tracing (romed_client_trace.cc). Traces take seconds to minutes:
  // give them a deadline that fits (the server stops computing when it passes).
  absl::StatusOr<romed::v1::TraceResponse> Trace(const romed::v1::TraceRequest& request,
                                                 const CallOptions& call = {}) const;
  // Called for each progress message before the last; return false to
  // cancel (the call then returns CANCELLED).
  using TraceProgressCallback = std::function<bool(const romed::v1::TraceStreamResponse&)>;
  using TraceFactsCallback = std::function<bool(const romed::v1::TraceFactsProgress&)>;
  // TraceStream: progress to `on_progress` (may be null); returns the last
  // message's result. INTERNAL if the stream ends without a done message.
  absl::StatusOr<romed::v1::TraceResponse> TraceStream(const romed::v1::TraceRequest& request,
                                                       const TraceProgressCallback& on_progress,
                                                       const CallOptions& call = {}) const;
  // TraceFacts: one message per traced fact to `on_fact` (may be null);
  // returns the last message's result. INTERNAL without a done message.
  absl::StatusOr<romed::v1::TraceFactsResult> TraceFacts(
      const romed::v1::TraceFactsRequest& request, const TraceFactsCallback& on_fact,
      const CallOptions& call = {}) const;

 private:
  using Stub = romed::v1::ModelEditor::Stub;

  // Sets the call's deadline from `call` or the default.
  void PrepareContext(const CallOptions& call, grpc::ClientContext* context) const;

  // One unary ModelEditor call, e.g. CallUnary(&Stub::Score, request, call).
  template <typename Request, typename Response>
  absl::StatusOr<Response> CallUnary(grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                                  const Request&, Response*),
                                     const Request& request, const CallOptions& call) const;

  std::unique_ptr<romed::v1::ModelEditor::Stub> editor_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  absl::Duration default_timeout_;
};

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMED_CLIENT_H_
