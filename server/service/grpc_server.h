// Builds and starts the gRPC server that carries ModelEditorService, the
// same way for romed (a TCP port) and for tests (no port; they use
// grpc::Server::InProcessChannel): the receive limit, the parse-failure
// interceptor and the grpc.health.v1 service (its overall status is set to
// NOT_SERVING at once; the caller flips it to SERVING when the model is
// loaded). Server reflection is added by whoever links gRPC's reflection
// plugin and calls grpc::reflection::InitProtoReflectionServerBuilderPlugin()
// first (main.cc does).
#ifndef ROMED_SERVER_SERVICE_GRPC_SERVER_H_
#define ROMED_SERVER_SERVICE_GRPC_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include <grpcpp/server.h>

#include "absl/status/statusor.h"

namespace romed {

class ModelEditorService;

struct GrpcServerOptions {
  // "host:port" to listen on (insecure); port 0 picks a free one. Empty:
  // no listening port (in-process channels only).
  std::string listen_address;
  // Largest request message accepted; larger ones get RESOURCE_EXHAUSTED.
  int64_t max_receive_message_bytes = 4 << 20;
};

struct StartedServer {
  std::unique_ptr<grpc::Server> server;
  int port = 0;  // the bound port (0 when listen_address is empty)
};

// The service must outlive the server. UnavailableError if the address
// cannot be bound.
absl::StatusOr<StartedServer> StartGrpcServer(const GrpcServerOptions& options,
                                              ModelEditorService* service);

// Sets the overall and the romed.v1.ModelEditor health status. (gRPC's
// default health service starts SERVING; StartGrpcServer flips it right
// after BuildAndStart, so only a probe in that instant could see SERVING.)
void SetServing(grpc::Server& server, bool serving);

}  // namespace romed

#endif  // ROMED_SERVER_SERVICE_GRPC_SERVER_H_
