// ModelEditorService: the causal-trace handlers (issue #4). Each converts
// (proto_convert_trace.h), calls the Engine with callbacks that stop the
// work when the client goes away, and converts back; the Engine validates.
#include <chrono>
#include <string>
#include <utility>

#include "server/core/status_macros.h"
#include "server/service/model_editor_service.h"
#include "server/service/proto_convert_trace.h"

namespace romed {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Checked before every forward pass: DEADLINE_EXCEEDED once the call's
// deadline has passed, CANCELLED when the client cancelled, went away, or a
// progress write failed (`write_failed` may be null).
std::function<absl::Status()> StopWhenGone(grpc::ServerContext* context,
                                           const bool* write_failed = nullptr) {
  return [context, write_failed]() -> absl::Status {
    const bool failed = write_failed != nullptr && *write_failed;
    if (!failed && !context->IsCancelled()) return absl::OkStatus();
    if (std::chrono::system_clock::now() >= context->deadline()) {
      return absl::DeadlineExceededError(
          "trace: the call's deadline passed, so the server stopped computing; give the call "
          "a longer deadline (romectl --timeout_s) or trace less (fewer samples, kinds or facts)");
    }
    return absl::CancelledError("trace: the client cancelled or went away; stopped computing");
  };
}

}  // namespace

grpc::Status ModelEditorService::Trace(Ctx* context, const v1::TraceRequest* request,
                                       v1::TraceResponse* response) {
  return Handle("Trace", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(TextTraceRequest trace, FromProto(*request));
    const Clock::time_point start = Clock::now();
    TraceCallbacks callbacks;
    callbacks.check_cancelled = StopWhenGone(context);
    ASSIGN_OR_RETURN(TraceResult result, engine->Trace(trace, callbacks));
    ToProto(result, SecondsSince(start), response);
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::TraceStream(
    Ctx* context, const v1::TraceRequest* request,
    grpc::ServerWriter<v1::TraceStreamResponse>* writer) {
  return Handle("TraceStream", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(TextTraceRequest trace, FromProto(*request));
    const Clock::time_point start = Clock::now();
    bool write_failed = false;
    TraceCallbacks callbacks;
    callbacks.check_cancelled = StopWhenGone(context, &write_failed);
    callbacks.progress = [&](int64_t done, int64_t total) {
      if (write_failed) return;
      v1::TraceStreamResponse message;
      message.set_done_steps(done);
      message.set_total_steps(total);
      write_failed = !writer->Write(message);
    };
    ASSIGN_OR_RETURN(TraceResult result, engine->Trace(trace, callbacks));
    v1::TraceStreamResponse last;
    last.set_done_steps(result.cost.forwards);
    last.set_total_steps(result.cost.forwards);
    last.set_done(true);
    ToProto(result, SecondsSince(start), last.mutable_result());
    if (write_failed || !writer->Write(last)) {
      return absl::CancelledError("TraceStream: the client went away before the result");
    }
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::TraceFacts(Ctx* context, const v1::TraceFactsRequest* request,
                                            grpc::ServerWriter<v1::TraceFactsProgress>* writer) {
  return Handle("TraceFacts", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(TextTraceFactsRequest facts, FromProto(*request));
    bool write_failed = false;
    TraceCallbacks callbacks;
    callbacks.check_cancelled = StopWhenGone(context, &write_failed);
    auto on_fact = [&](const TraceFactSummary& summary) {
      if (write_failed) return;
      v1::TraceFactsProgress message;
      message.set_facts_done(static_cast<int32_t>(summary.index + 1));
      message.set_facts_total(static_cast<int32_t>(summary.total));
      ToProto(summary, message.mutable_fact());
      write_failed = !writer->Write(message);
    };
    ASSIGN_OR_RETURN(TraceFactsResult result, engine->TraceFacts(facts, callbacks, on_fact));
    v1::TraceFactsProgress last;
    last.set_facts_done(static_cast<int32_t>(result.table.num_facts));
    last.set_facts_total(static_cast<int32_t>(result.table.num_facts));
    last.set_done(true);
    ToProto(result, last.mutable_result());
    if (write_failed || !writer->Write(last)) {
      return absl::CancelledError("TraceFacts: the client went away before the result");
    }
    return absl::OkStatus();
  });
}

}  // namespace romed
