// ModelEditorService: the ExportSession, ImportSession and ExportModel
// handlers (issue #6). Each converts the request, calls the Engine (which
// validates and owns every rule, engine.h) and converts the result.
#include <utility>

#include "server/core/status_macros.h"
#include "server/service/model_editor_service.h"
#include "server/service/proto_convert_session.h"

namespace romed {

grpc::Status ModelEditorService::ExportSession(Ctx*, const v1::ExportSessionRequest* request,
                                               v1::ExportSessionResponse* response) {
  return Handle("ExportSession", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ASSIGN_OR_RETURN(ExportedSession exported, engine->ExportSession(request->session_id()));
    response->set_file(std::move(exported.file));
    response->set_session_id(exported.session_id);
    response->set_num_edits(exported.num_edits);
    response->set_num_deltas(exported.num_deltas);
    response->set_model_checksum(exported.model_checksum);
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::ImportSession(Ctx*, const v1::ImportSessionRequest* request,
                                               v1::ImportSessionResponse* response) {
  return Handle("ImportSession", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ImportSessionRequest import;
    import.file = request->file();
    import.session_id = request->session_id();
    import.name = request->name();
    ASSIGN_OR_RETURN(ImportSessionResult result, engine->ImportSession(import));
    ToProto(*result.session, response->mutable_session());
    response->set_created(result.created);
    for (const EditEntry& entry : result.edits) ToProto(entry, response->add_edits());
    response->set_source_session_id(result.source_session_id);
    response->mutable_source_edit_ids()->Add(result.source_edit_ids.begin(),
                                             result.source_edit_ids.end());
    return absl::OkStatus();
  });
}

grpc::Status ModelEditorService::ExportModel(Ctx*, const v1::ExportModelRequest* request,
                                             v1::ExportModelResponse* response) {
  return Handle("ExportModel", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    ExportModelRequest export_request;
    export_request.session_id = request->session_id();
    export_request.out_dir = request->out_dir();
    export_request.overwrite = request->overwrite();
    ASSIGN_OR_RETURN(ExportModelResult result, engine->ExportModel(export_request));
    response->set_out_dir(result.out_dir);
    for (const std::string& file : result.files) response->add_files(file);
    response->set_num_edits(result.num_edits);
    response->set_num_deltas(result.num_deltas);
    response->set_base_model_checksum(result.base_model_checksum);
    response->set_bytes_written(result.bytes_written);
    response->set_elapsed_s(result.elapsed_s);
    return absl::OkStatus();
  });
}

}  // namespace romed
