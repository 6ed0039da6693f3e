// ModelEditorService happy paths through an in-process channel.
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <future>

#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include "google/protobuf/descriptor.h"
#include "server/model/scorer.h"
#include "server/service/rpc_availability.h"
#include "tests/service/grpc_status_matchers.h"
#include "tests/service/service_fixture.h"
#include "tests/testing/status_matchers.h"

namespace romed::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// The overall grpc.health.v1 status of `server` as a client sees it:
// "SERVING", "NOT_SERVING" or the call's error. Raw bytes: the request is an
// empty HealthCheckRequest; the response is field 1 (enum) = 1 or 2.
std::string CheckHealth(grpc::Server& server) {
  grpc::GenericStub stub(server.InProcessChannel(grpc::ChannelArguments()));
  grpc::ClientContext context;
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                 &response, [&](grpc::Status s) { done.set_value(s); });
  const grpc::Status status = done.get_future().get();
  if (!status.ok()) return "error: " + status.error_message();
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return "error: unreadable response";
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  if (bytes == std::string("\x08\x01", 2)) return "SERVING";
  if (bytes == std::string("\x08\x02", 2)) return "NOT_SERVING";
  return "unexpected response";
}

TEST_F(ServiceTest, GetModelInfoReportsModelLimitsAndRpcStatus) {
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub().GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.architecture(), "gpt2");
  EXPECT_EQ(info.n_layer(), 2);
  EXPECT_EQ(info.n_embd(), 32);
  EXPECT_EQ(info.n_head(), 4);
  EXPECT_EQ(info.mlp_width(), 128);
  EXPECT_EQ(info.vocab_size(), 257);
  EXPECT_EQ(info.context_length(), 64);
  EXPECT_EQ(info.dtype(), "float32");
  EXPECT_EQ(info.device(), "cpu");
  EXPECT_FALSE(info.blas().empty());
  EXPECT_EQ(info.checksum(), engine().Info().checksum);
  EXPECT_EQ(info.num_parameters(), engine().Info().num_parameters);
  EXPECT_EQ(info.limits().max_new_tokens(), 16);
  EXPECT_EQ(info.limits().max_receive_message_bytes(), kTestMaxReceiveBytes);
  EXPECT_EQ(info.server_version(), "test");
  EXPECT_EQ(info.rpc_status().at("Generate"), "available");
  EXPECT_EQ(info.rpc_status().at("Score"), "available");
  EXPECT_EQ(info.rpc_status().at("Edit"), "available");
  EXPECT_EQ(info.rpc_status().at("Compare"), "available");
  // One entry per RPC of the service.
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("romed.v1.ModelEditor");
  ASSERT_NE(service, nullptr);
  EXPECT_EQ(info.rpc_status().size(), static_cast<size_t>(service->method_count()));
}

TEST_F(ServiceTest, TokenizeReturnsIdsAndTokens) {
  grpc::ClientContext context;
  v1::TokenizeRequest request;
  request.set_text("a b");
  v1::TokenizeResponse response;
  ASSERT_TRUE(stub().Tokenize(&context, request, &response).ok());
  ASSERT_EQ(response.ids_size(), 3);
  ASSERT_EQ(response.tokens_size(), 3);
  EXPECT_EQ(response.tokens(1), "Ġ");
}

TEST_F(ServiceTest, GenerateReturnsTextIdsLogprobsAndTimes) {
  v1::GenerateResponse response;
  ASSERT_TRUE(CallGenerate(GreedyRequest("Hello", 5), &response).ok());
  EXPECT_EQ(response.ids_size(), 5);
  EXPECT_EQ(response.logprobs_size(), 5);
  for (float lp : response.logprobs()) EXPECT_LE(lp, 0.0f);
  EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(response.prompt_tokens(), 5);
  EXPECT_GT(response.total_time_s(), 0.0);
  EXPECT_LE(response.time_to_first_token_s(), response.total_time_s());
  // Greedy is deterministic, and equals the engine called directly.
  v1::GenerateResponse again;
  ASSERT_TRUE(CallGenerate(GreedyRequest("Hello", 5), &again).ok());
  EXPECT_EQ(again.text(), response.text());
  TextGenerateRequest direct;
  direct.prompt = "Hello";
  direct.max_new_tokens = 5;
  direct.ignore_eos = true;
  ASSERT_OK_AND_ASSIGN(GenerateResult expected, engine().Generate(direct));
  EXPECT_EQ(std::vector<int64_t>(response.ids().begin(), response.ids().end()), expected.ids);
}

TEST_F(ServiceTest, SameSeedSameText) {
  v1::GenerateRequest request = GreedyRequest("Once upon", 10);
  request.mutable_sampling()->set_temperature(1.0f);
  request.mutable_sampling()->set_top_p(0.9f);
  request.mutable_sampling()->set_top_k(50);
  request.mutable_sampling()->set_seed(7);
  v1::GenerateResponse a, b;
  ASSERT_TRUE(CallGenerate(request, &a).ok());
  ASSERT_TRUE(CallGenerate(request, &b).ok());
  EXPECT_EQ(a.text(), b.text());
  EXPECT_EQ(a.ids_size(), 10);
}

TEST_F(ServiceTest, GenerateStreamPiecesConcatenateToTheFinalText) {
  for (uint64_t seed : {1, 2, 3}) {
    v1::GenerateRequest request = GreedyRequest("Stream", 12);
    request.mutable_sampling()->set_temperature(1.0f);
    request.mutable_sampling()->set_seed(seed);
    grpc::ClientContext context;
    auto reader = stub().GenerateStream(&context, request);
    v1::GenerateStreamResponse message;
    std::string concatenated;
    int token_messages = 0;
    v1::GenerateResponse result;
    bool done = false;
    while (reader->Read(&message)) {
      ASSERT_FALSE(done) << "a message after the last one";
      concatenated += message.text();
      if (message.done()) {
        done = true;
        result = message.result();
      } else {
        ++token_messages;
        EXPECT_EQ(message.ids_size(), 1);
      }
    }
    ASSERT_TRUE(reader->Finish().ok());
    ASSERT_TRUE(done);
    EXPECT_EQ(token_messages, 12);
    EXPECT_EQ(concatenated, result.text());
    EXPECT_EQ(result.ids_size(), 12);
  }
}

TEST_F(ServiceTest, GenerateStreamStopsWhenTheClientCancels) {
  grpc::ClientContext context;
  auto reader = stub().GenerateStream(&context, GreedyRequest("Cancel me", 16));
  v1::GenerateStreamResponse message;
  ASSERT_TRUE(reader->Read(&message));
  context.TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ExpectServerStillAnswers();
}

TEST_F(ServiceTest, ScoreEqualsScoreContinuationsComputedDirectly) {
  v1::ScoreRequest request;
  request.set_prompt("The Eiffel Tower is in");
  request.add_continuations(" Paris");
  request.add_continuations(" Rome");
  v1::ScoreResponse response;
  ASSERT_TRUE(CallScore(request, &response).ok());
  ASSERT_EQ(response.scores_size(), 2);
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> prompt, engine().tokenizer().Encode(request.prompt()));
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> paris, engine().tokenizer().Encode(" Paris"));
  ASSERT_OK_AND_ASSIGN(std::vector<int64_t> rome, engine().tokenizer().Encode(" Rome"));
  ASSERT_OK_AND_ASSIGN(std::vector<ContinuationScore> direct,
                       ScoreContinuations(engine().model(), prompt, {paris, rome}));
  EXPECT_EQ(response.prompt_tokens(), static_cast<int64_t>(prompt.size()));
  for (int i = 0; i < 2; ++i) {
    const v1::ContinuationScore& got = response.scores(i);
    EXPECT_EQ(std::vector<int64_t>(got.ids().begin(), got.ids().end()), direct[i].ids);
    EXPECT_EQ(std::vector<float>(got.token_logprobs().begin(), got.token_logprobs().end()),
              direct[i].token_logprobs);
    EXPECT_DOUBLE_EQ(got.total_logprob(), direct[i].total_logprob);
    EXPECT_DOUBLE_EQ(got.mean_logprob(), direct[i].total_logprob / direct[i].ids.size());
    EXPECT_EQ(got.tokens_size(), got.ids_size());
  }
  EXPECT_EQ(response.scores(0).continuation(), " Paris");
}

TEST_F(ServiceTest, EightConcurrentClientsAllSucceed) {
  v1::GenerateResponse expected;
  ASSERT_TRUE(CallGenerate(GreedyRequest("Concurrent", 8), &expected).ok());
  std::vector<grpc::Status> statuses(8);
  std::vector<std::string> texts(8);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      v1::GenerateResponse response;
      if (i % 2 == 0) {
        statuses[i] = CallGenerate(GreedyRequest("Concurrent", 8), &response);
        texts[i] = response.text();
      } else {
        v1::ScoreRequest score;
        score.set_prompt("Concurrent");
        score.add_continuations(" yes");
        v1::ScoreResponse scored;
        statuses[i] = CallScore(score, &scored);
        texts[i] = expected.text();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(texts[i], expected.text());
  }
}

TEST_F(ServiceTest, EveryRpcIsAvailableAndAnUnknownOneIsUnimplemented) {
  const auto table = RpcStatusTable();
  for (const char* rpc : {"CreateSession", "Edit", "Revert", "ListEdits", "ComputeStats", "Trace",
                          "TraceStream", "TraceFacts", "Compare"}) {
    EXPECT_EQ(table.at(rpc), "available") << rpc;
  }
  for (const auto& [rpc, status] : table) EXPECT_EQ(status, "available") << rpc;
  EXPECT_EQ(NotImplementedYet("NoSuchRpc").code(), absl::StatusCode::kUnimplemented);
}

TEST_F(ServiceTest, MetricsCountRequestsAndTokens) {
  v1::GenerateResponse response;
  ASSERT_TRUE(CallGenerate(GreedyRequest("Count me", 3), &response).ok());
  EXPECT_FALSE(CallGenerate(GreedyRequest("")).ok());
  const std::string text = served().metrics->ScrapeText();
  EXPECT_THAT(text, HasSubstr("romed_requests_total{code=\"OK\",method=\"Generate\"}"));
  EXPECT_THAT(text,
              HasSubstr("romed_requests_total{code=\"INVALID_ARGUMENT\",method=\"Generate\"}"));
  EXPECT_THAT(text, HasSubstr("romed_request_duration_seconds_count{method=\"Generate\"}"));
  EXPECT_THAT(text, HasSubstr("romed_generated_tokens_total"));
  EXPECT_THAT(text, HasSubstr("romed_time_to_first_token_seconds_count"));
  EXPECT_THAT(text, HasSubstr("romed_inter_token_latency_seconds_count"));
  EXPECT_THAT(text, HasSubstr("romed_inflight_requests 0"));
}

TEST(ServiceLoadingTest, ModelRpcsAnswerUnavailableAndHealthNotServingWhileLoading) {
  std::unique_ptr<ServedModel> loading = ServeTinyModel(/*load=*/false);
  ASSERT_NE(loading, nullptr);
  grpc::ClientContext context;
  v1::GenerateResponse response;
  v1::GenerateRequest request;
  request.set_prompt("Hi");
  EXPECT_THAT(loading->stub->Generate(&context, request, &response),
              GrpcStatusIs(grpc::StatusCode::UNAVAILABLE, HasSubstr("loading")));
  EXPECT_EQ(CheckHealth(*loading->server), "NOT_SERVING");
}

TEST_F(ServiceTest, HealthIsServingOnceTheModelIsLoaded) {
  EXPECT_EQ(CheckHealth(*served().server), "SERVING");
}

}  // namespace
}  // namespace romed::testing
