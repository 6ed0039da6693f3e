// A server interceptor that gives requests gRPC could not parse a clear
// INVALID_ARGUMENT instead of gRPC's bare INTERNAL.
//
// Why: proto3 `string` fields must hold UTF-8. A C++ client that sets a
// prompt with invalid UTF-8 only logs a warning and sends it; the server's
// protobuf parser then rejects the whole message, before any handler runs,
// and gRPC answers INTERNAL with an EMPTY message. Our handlers never answer
// with an empty message (status_mapping.h), so an INTERNAL without one on the
// way out is exactly this case; it is rewritten to
//   INVALID_ARGUMENT "romed.v1.ModelEditor/Generate: the request could not
//   be parsed: a text field is not valid UTF-8 (...) or the message is
//   malformed"
// (which field cannot be known: the bytes are gone by then).
#ifndef ROMED_SERVER_SERVICE_PARSE_FAILURE_INTERCEPTOR_H_
#define ROMED_SERVER_SERVICE_PARSE_FAILURE_INTERCEPTOR_H_

#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace romed {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeParseFailureInterceptorFactory();

}  // namespace romed

#endif  // ROMED_SERVER_SERVICE_PARSE_FAILURE_INTERCEPTOR_H_
