// ModelEditorService: the gRPC handlers of romed.v1.ModelEditor (sync API).
// Each handler is thin: convert the request (proto_convert.h), call the
// Engine, convert the result, map the status (status_mapping.h), and record
// romed_requests_total / romed_request_duration_seconds / inflight.
//
// The sync API suits this service: Generate and Score are CPU-bound and run
// to completion on the handler's thread (the engine bounds how many run at
// once with --max_concurrent_requests).
//
// Lifecycle: the service is registered before the model is loaded (so health
// can answer NOT_SERVING meanwhile). Until SetEngine(), model RPCs answer
// UNAVAILABLE ("the model is still loading"). RPCs whose issue has not landed
// answer UNIMPLEMENTED naming it (rpc_availability.h).
//
// Cancellation: Generate and GenerateStream stop decoding when the client
// cancels or the deadline passes (ServerContext::IsCancelled), and
// GenerateStream also when a write fails.
//
// Thread-safe.
#ifndef ROMED_SERVER_SERVICE_MODEL_EDITOR_SERVICE_H_
#define ROMED_SERVER_SERVICE_MODEL_EDITOR_SERVICE_H_

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "romed/v1/model_editor.grpc.pb.h"
#include "server/engine/engine.h"
#include "server/metrics/metrics.h"
#include "server/service/proto_convert.h"

namespace romed {

class ModelEditorService final : public v1::ModelEditor::Service {
 public:
  // `metrics` may be null; otherwise it must outlive the service.
  ModelEditorService(ServerFacts facts, ServingMetrics* metrics);

  // Starts serving model RPCs with `engine` (shared with the caller).
  void SetEngine(std::shared_ptr<Engine> engine);

  using Ctx = grpc::ServerContext;
  grpc::Status GetModelInfo(Ctx*, const v1::GetModelInfoRequest*, v1::ModelInfo*) override;
  grpc::Status Tokenize(Ctx*, const v1::TokenizeRequest*, v1::TokenizeResponse*) override;
  grpc::Status Generate(Ctx*, const v1::GenerateRequest*, v1::GenerateResponse*) override;
  grpc::Status GenerateStream(Ctx*, const v1::GenerateRequest*,
                              grpc::ServerWriter<v1::GenerateStreamResponse>*) override;
  grpc::Status Score(Ctx*, const v1::ScoreRequest*, v1::ScoreResponse*) override;

  // Sessions, Edit, Revert, ListEdits, ComputeStats (session_handlers.cc).
  // Edit and ComputeStats stop between steps when the client cancels or the
  // deadline passes (CANCELLED; nothing changes); ComputeStats also when a
  // progress write fails.
  grpc::Status CreateSession(Ctx*, const v1::CreateSessionRequest*, v1::Session*) override;
  grpc::Status GetSession(Ctx*, const v1::GetSessionRequest*, v1::Session*) override;
  grpc::Status ListSessions(Ctx*, const v1::ListSessionsRequest*,
                            v1::ListSessionsResponse*) override;
  grpc::Status DeleteSession(Ctx*, const v1::DeleteSessionRequest*,
                             v1::DeleteSessionResponse*) override;
  grpc::Status Edit(Ctx*, const v1::EditRequest*, v1::EditResponse*) override;
  grpc::Status Revert(Ctx*, const v1::RevertRequest*, v1::RevertResponse*) override;
  grpc::Status ListEdits(Ctx*, const v1::ListEditsRequest*, v1::ListEditsResponse*) override;
  grpc::Status ComputeStats(Ctx*, const v1::ComputeStatsRequest*,
                            grpc::ServerWriter<v1::ComputeStatsProgress>*) override;

  // ExportSession, ImportSession, ExportModel (export_handlers.cc).
  grpc::Status ExportSession(Ctx*, const v1::ExportSessionRequest*,
                             v1::ExportSessionResponse*) override;
  grpc::Status ImportSession(Ctx*, const v1::ImportSessionRequest*,
                             v1::ImportSessionResponse*) override;
  grpc::Status ExportModel(Ctx*, const v1::ExportModelRequest*, v1::ExportModelResponse*) override;

  // Causal tracing (trace_handlers.cc). Each holds a heavy-job slot and
  // stops computing (before its next forward pass) when the client cancels
  // or the deadline passes; the streaming ones also when a write fails.
  grpc::Status Trace(Ctx*, const v1::TraceRequest*, v1::TraceResponse*) override;
  grpc::Status TraceStream(Ctx*, const v1::TraceRequest*,
                           grpc::ServerWriter<v1::TraceStreamResponse>*) override;
  grpc::Status TraceFacts(Ctx*, const v1::TraceFactsRequest*,
                          grpc::ServerWriter<v1::TraceFactsProgress>*) override;

  // A/B Compare (compare_handlers.cc): stops decoding when the client
  // cancels or the deadline passes (CANCELLED).
  grpc::Status Compare(Ctx*, const v1::CompareRequest*, v1::CompareResponse*) override;

 private:
  // Runs `body`, records metrics under `method`, maps its status.
  grpc::Status Handle(std::string_view method, const std::function<absl::Status()>& body);
  grpc::Status Unimplemented(std::string_view method);
  // The engine, or UNAVAILABLE while the model loads.
  absl::StatusOr<std::shared_ptr<Engine>> GetEngine() const;

  const ServerFacts facts_;
  ServingMetrics* const metrics_;
  mutable std::mutex engine_mutex_;
  std::shared_ptr<Engine> engine_;  // guarded by engine_mutex_
};

}  // namespace romed

#endif  // ROMED_SERVER_SERVICE_MODEL_EDITOR_SERVICE_H_
