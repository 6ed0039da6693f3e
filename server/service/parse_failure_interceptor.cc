#include "server/service/parse_failure_interceptor.h"

#include <string>

#include <grpcpp/support/interceptor.h>

namespace romed {
namespace {

class ParseFailureInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit ParseFailureInterceptor(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::INTERNAL && status.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            method_ + ": the request could not be parsed: a text field is not valid UTF-8 "
                      "(proto3 string fields must be UTF-8; text is rejected by the server's "
                      "protobuf parser before romed sees it) or the message is malformed"));
      }
    }
    methods->Proceed();
  }

 private:
  std::string method_;  // "romed.v1.ModelEditor/Generate"
};

class ParseFailureInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    std::string method = info->method() != nullptr ? info->method() : "";
    if (!method.empty() && method[0] == '/') method.erase(0, 1);
    return new ParseFailureInterceptor(std::move(method));
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeParseFailureInterceptorFactory() {
  return std::make_unique<ParseFailureInterceptorFactory>();
}

}  // namespace romed
