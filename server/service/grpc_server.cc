#include "server/service/grpc_server.h"

#include <utility>
#include <vector>

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "server/service/model_editor_service.h"
#include "server/service/parse_failure_interceptor.h"

namespace romed {

constexpr char kServiceName[] = "romed.v1.ModelEditor";

absl::StatusOr<StartedServer> StartGrpcServer(const GrpcServerOptions& options,
                                              ModelEditorService* service) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  StartedServer started;
  if (!options.listen_address.empty()) {
    builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(),
                             &started.port);
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_receive_message_bytes));
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
  creators.push_back(MakeParseFailureInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(creators));
  builder.RegisterService(service);
  started.server = builder.BuildAndStart();
  if (started.server == nullptr ||
      (!options.listen_address.empty() && started.port == 0)) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address,
                     " (address in use or not available?)"));
  }
  SetServing(*started.server, false);
  return started;
}

void SetServing(grpc::Server& server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server.GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);
  health->SetServingStatus(kServiceName, serving);
}

}  // namespace romed
