// ModelEditorService: the Compare handler (issue #6). Converts
// (proto_convert_compare.h), calls Engine::Compare with a check that stops
// decoding once the client has gone, and converts back; the Engine validates.
#include "server/core/status_macros.h"
#include "server/service/model_editor_service.h"
#include "server/service/proto_convert_compare.h"

namespace romed {

grpc::Status ModelEditorService::Compare(Ctx* context, const v1::CompareRequest* request,
                                         v1::CompareResponse* response) {
  return Handle("Compare", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<Engine> engine, GetEngine());
    const TextCompareRequest compare = FromProto(*request);
    ASSIGN_OR_RETURN(CompareResult result,
                     engine->Compare(compare, [context] { return context->IsCancelled(); }));
    ToProto(compare, result, response);
    return absl::OkStatus();
  });
}

}  // namespace romed
