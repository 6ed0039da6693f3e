// ModelEditorService: the session, Edit, Revert, ListEdits and ComputeStats
// handlers (issue #5). Each converts (proto_convert_session.h), calls the
// Engine and converts back; the Engine validates and owns every rule.
#include <utility>

#include "server/core/status_macros.h"
#include "server/service/model_editor_service.h"
#include "server/service/proto_convert_session.h"

namespace romed {
namespace {

// Heavy jobs poll this between steps: the client cancelled or the deadline passed.
CancelCheck CancelledBy(grpc::ServerContext* context) {
  return [context] { return context->IsCancelled(); };
}

}  // namespace

grpc::Status ModelEditorService::CreateSession(Ctx*, const v1::CreateSessionRequest* request,
                                               v1::Session* response) {
  return Handle("CreateSession", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(std::shared_ptr<const SessionState> session,
                     engine->CreateSession(FromProto(*request)));
    ToProto(*session, response);
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::GetSession(Ctx*, const v1::GetSessionRequest* request,
                                            v1::Session* response) {
  return Handle("GetSession", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(std::shared_ptr<const SessionState> session,
                     engine->GetSession(request->id()));
    ToProto(*session, response);
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::ListSessions(Ctx*, const v1::ListSessionsRequest* request,
                                              v1::ListSessionsResponse* response) {
  return Handle("ListSessions", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(SessionListPage page,
                     engine->ListSessions(request->page_size(), request->page_token()));
    for (const auto& session : page.sessions) ToProto(*session, response->add_sessions());
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::DeleteSession(Ctx*, const v1::DeleteSessionRequest* request,
                                               v1::DeleteSessionResponse*) {
  return Handle("DeleteSession", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    return engine->DeleteSession(request->id());
  });
}

grpc::Status ModelEditorService::Edit(Ctx* context, const v1::EditRequest* request,
                                      v1::EditResponse* response) {
  return Handle("Edit", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(TextEditRequest edit, FromProto(*request));
    ASSIGN_OR_RETURN(EditResult result, engine->Edit(edit, CancelledBy(context)));
    ToProto(result.entry, response->mutable_edit());
    ToProto(*result.session, response->mutable_session());
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::Revert(Ctx*, const v1::RevertRequest* request,
                                        v1::RevertResponse* response) {
  return Handle("Revert", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(RevertTarget target, RevertTargetFromProto(*request));
    ASSIGN_OR_RETURN(RevertResult result, engine->Revert(request->session_id(), target));
    response->mutable_reverted_edit_ids()->Add(result.reverted_edit_ids.begin(),
                                               result.reverted_edit_ids.end());
    ToProto(*result.session, response->mutable_session());
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::ListEdits(Ctx*, const v1::ListEditsRequest* request,
                                           v1::ListEditsResponse* response) {
  return Handle("ListEdits", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(std::vector<EditEntry> edits, engine->ListEdits(request->session_id()));
    for (const EditEntry& entry : edits) ToProto(entry, response->add_edits());
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::ComputeStats(
    Ctx* context, const v1::ComputeStatsRequest* request,
    grpc::ServerWriter<v1::ComputeStatsProgress>* writer) {
  return Handle("ComputeStats", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    const ComputeStatsRequest stats_request = FromProto(*request);
    bool write_failed = false;
    auto on_progress = [&](const CovarianceProgress& progress) {
      v1::ComputeStatsProgress message;
      ToProto(progress, &message);
      message.set_corpus_path(stats_request.corpus_path.empty() ? engine->DefaultStatsCorpus()
                                                                : stats_request.corpus_path);
      if (!write_failed && !writer->Write(message)) write_failed = true;
    };
    auto cancelled = [&] { return write_failed || context->IsCancelled(); };
    ASSIGN_OR_RETURN(ComputeStatsResult result,
                     engine->ComputeStats(stats_request, on_progress, cancelled));
    v1::ComputeStatsProgress last;
    ToProto(result, &last);
    if (write_failed || !writer->Write(last)) {
      return absl::CancelledError(
          "ComputeStats: the client went away (the statistics are computed and cached)");
    }
    return absl::OkStatus();
  });
}

}  // namespace romed
