// Engine: the core API without gRPC, on a tiny random checkpoint.
#include "server/engine/engine.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/engine/device.h"
#include "server/model/checkpoint.h"
#include "server/model/scorer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;

EngineOptions TestOptions() {
  EngineOptions options;
  options.limits.max_prompt_tokens = 48;  // below the tiny context of 64
  options.limits.max_new_tokens = 16;
  options.limits.max_stop_sequences = 2;
  options.limits.max_continuations = 3;
  options.limits.max_concurrent_requests = 8;
  return options;
}

std::unique_ptr<Engine> MakeEngine(EngineOptions options = TestOptions()) {
  const std::string dir = testing::WriteTinyCheckpoint();
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(dir);
  std::filesystem::remove_all(dir);  // loaded into memory
  EXPECT_OK(checkpoint.status());
  if (!checkpoint.ok()) return nullptr;
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Create(*std::move(checkpoint), std::move(options));
  EXPECT_OK(engine.status());
  return engine.ok() ? *std::move(engine) : nullptr;
}

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { engine_ = MakeEngine().release(); }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(engine_, nullptr); }

  // public: EngineConcurrencyTest builds requests the same way.
 public:
  static TextGenerateRequest Greedy(std::string prompt, int64_t max_new_tokens = 8) {
    TextGenerateRequest request;
    request.prompt = std::move(prompt);
    request.max_new_tokens = max_new_tokens;
    request.ignore_eos = true;
    return request;
  }

 protected:
  static Engine* engine_;
};
Engine* EngineTest::engine_ = nullptr;

TEST_F(EngineTest, InfoDescribesTheModelAndLimits) {
  const EngineInfo info = engine_->Info();
  EXPECT_EQ(info.architecture, "gpt2");
  EXPECT_EQ(info.config.n_positions, 64);
  EXPECT_EQ(info.config.vocab_size, 257);
  EXPECT_EQ(info.dtype, "float32");
  EXPECT_EQ(info.device, "cpu");
  EXPECT_GT(info.num_parameters, 0);
  EXPECT_EQ(info.checksum.size(), 64u);
  EXPECT_EQ(info.limits.max_new_tokens, 16);
  EXPECT_GT(info.threads, 0);
}

TEST_F(EngineTest, TokenizeGivesOneByteLevelTokenPerByte) {
  ASSERT_OK_AND_ASSIGN(TokenizeResult result, engine_->Tokenize("Hi!"));
  EXPECT_EQ(result.ids.size(), 3u);
  ASSERT_EQ(result.tokens.size(), 3u);
  EXPECT_EQ(result.tokens[0], "H");
  ASSERT_OK_AND_ASSIGN(TokenizeResult empty, engine_->Tokenize(""));
  EXPECT_TRUE(empty.ids.empty());
}

TEST_F(EngineTest, TokenizeRejectsInvalidUtf8WithItsOffset) {
  EXPECT_THAT(engine_->Tokenize("ab\xff"),
              StatusIs(kInvalid, AllOf(HasSubstr("text"), HasSubstr("UTF-8"), HasSubstr("2"))));
}

TEST_F(EngineTest, GreedyGenerateIsDeterministicAndRespectsMaxNewTokens) {
  ASSERT_OK_AND_ASSIGN(GenerateResult a, engine_->Generate(Greedy("Hello", 6)));
  ASSERT_OK_AND_ASSIGN(GenerateResult b, engine_->Generate(Greedy("Hello", 6)));
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.ids.size(), 6u);
  EXPECT_EQ(a.logprobs.size(), 6u);
  EXPECT_EQ(a.finish, FinishReason::kLength);
  EXPECT_EQ(a.prompt_tokens, 5);
}

TEST_F(EngineTest, DefaultMaxNewTokensIsCappedByTheLimit) {
  ASSERT_OK_AND_ASSIGN(GenerateResult r, engine_->Generate(Greedy("Hello", 0)));
  EXPECT_EQ(r.ids.size(), 16u);  // default 32 capped at --max_new_tokens=16
}

TEST_F(EngineTest, SeededSamplingReproduces) {
  TextGenerateRequest request = Greedy("Once", 8);
  request.sampling.temperature = 1.0f;
  request.sampling.seed = 42;
  ASSERT_OK_AND_ASSIGN(GenerateResult a, engine_->Generate(request));
  ASSERT_OK_AND_ASSIGN(GenerateResult b, engine_->Generate(request));
  EXPECT_EQ(a.ids, b.ids);
}

TEST_F(EngineTest, CallbackSeesEveryTokenAndCanCancel) {
  int calls = 0;
  ASSERT_OK_AND_ASSIGN(GenerateResult r,
                       engine_->Generate(Greedy("Hello", 8), [&](const GeneratedToken&) {
                         return ++calls < 3;
                       }));
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(r.finish, FinishReason::kCancelled);
}

TEST_F(EngineTest, GenerateRejectsBadInputWithActionableMessages) {
  EXPECT_THAT(engine_->Generate(Greedy("")), StatusIs(kInvalid, HasSubstr("prompt is empty")));
  EXPECT_THAT(engine_->Generate(Greedy(std::string(50, 'a'))),
              StatusIs(kInvalid, AllOf(HasSubstr("50"), HasSubstr("48"),
                                       HasSubstr("--max_prompt_tokens"))));
  EXPECT_THAT(engine_->Generate(Greedy("Hello", 17)),
              StatusIs(kInvalid, AllOf(HasSubstr("17"), HasSubstr("--max_new_tokens"))));
  EXPECT_THAT(engine_->Generate(Greedy("Hello", -1)),
              StatusIs(kInvalid, HasSubstr("max_new_tokens")));
  EXPECT_THAT(engine_->Generate(Greedy("a\xc3(")),
              StatusIs(kInvalid, AllOf(HasSubstr("prompt is not valid UTF-8"),
                                       HasSubstr("offset 1"))));
  TextGenerateRequest stops = Greedy("Hello");
  stops.stop = {"a", "b", "c"};
  EXPECT_THAT(engine_->Generate(stops),
              StatusIs(kInvalid, AllOf(HasSubstr("3 stop sequences"),
                                       HasSubstr("--max_stop_sequences"))));
  stops.stop = {"a", ""};
  EXPECT_THAT(engine_->Generate(stops), StatusIs(kInvalid, HasSubstr("stop[1] is empty")));
  TextGenerateRequest session = Greedy("Hello");
  session.session_id = "s-123";
  EXPECT_THAT(engine_->Generate(session),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("s-123"), HasSubstr("CreateSession"))));
}

TEST_F(EngineTest, GenerateRejectsBadSampling) {
  TextGenerateRequest request = Greedy("Hello");
  request.sampling.temperature = -0.5f;
  EXPECT_THAT(engine_->Generate(request), StatusIs(kInvalid, HasSubstr("temperature")));
  request = Greedy("Hello");
  request.sampling.top_p = 1.5f;
  EXPECT_THAT(engine_->Generate(request), StatusIs(kInvalid, HasSubstr("top_p")));
  request = Greedy("Hello");
  request.sampling.top_k = -1;
  EXPECT_THAT(engine_->Generate(request), StatusIs(kInvalid, HasSubstr("top_k")));
}

TEST(EngineContextTest, PromptPlusNewTokensMustFitTheContext) {
  EngineOptions options = TestOptions();
  options.limits.max_prompt_tokens = 1000;  // only the context (64) limits
  options.limits.max_new_tokens = 100;
  std::unique_ptr<Engine> engine = MakeEngine(options);
  ASSERT_NE(engine, nullptr);
  TextGenerateRequest request;
  request.prompt = std::string(64, 'a');
  EXPECT_THAT(engine->Generate(request),
              StatusIs(kInvalid, AllOf(HasSubstr("64 tokens"), HasSubstr("context"))));
  request.prompt = std::string(60, 'a');
  request.max_new_tokens = 10;
  EXPECT_THAT(engine->Generate(request),
              StatusIs(kInvalid, AllOf(HasSubstr("60"), HasSubstr("10"), HasSubstr("64"),
                                       HasSubstr("at most 4"))));
  request.max_new_tokens = 0;  // default: capped by the room left
  ASSERT_OK_AND_ASSIGN(GenerateResult r, engine->Generate(request));
  EXPECT_LE(r.ids.size(), 4u);
}

TEST_F(EngineTest, ScoreEqualsScoreContinuationsOnTheSameIds) {
  TextScoreRequest request{"The capital is", {" Paris", " Rome"}, ""};
  ASSERT_OK_AND_ASSIGN(ScoreResult result, engine_->Score(request));
  ASSERT_EQ(result.scores.size(), 2u);
  ASSERT_OK_AND_ASSIGN(TokenizeResult prompt, engine_->Tokenize(request.prompt));
  ASSERT_OK_AND_ASSIGN(TokenizeResult paris, engine_->Tokenize(" Paris"));
  ASSERT_OK_AND_ASSIGN(TokenizeResult rome, engine_->Tokenize(" Rome"));
  ASSERT_OK_AND_ASSIGN(std::vector<ContinuationScore> direct,
                       ScoreContinuations(engine_->model(), prompt.ids, {paris.ids, rome.ids}));
  EXPECT_EQ(result.prompt_tokens, static_cast<int64_t>(prompt.ids.size()));
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(result.scores[i].ids, direct[i].ids);
    EXPECT_EQ(result.scores[i].token_logprobs, direct[i].token_logprobs);
    EXPECT_DOUBLE_EQ(result.scores[i].total_logprob, direct[i].total_logprob);
    EXPECT_DOUBLE_EQ(result.scores[i].mean_logprob,
                     direct[i].total_logprob / double(direct[i].ids.size()));
  }
  EXPECT_EQ(result.scores[0].continuation, " Paris");
  EXPECT_EQ(result.scores[0].tokens.size(), 6u);
}

TEST_F(EngineTest, ScoreRejectsBadInput) {
  EXPECT_THAT(engine_->Score({"", {" x"}, ""}), StatusIs(kInvalid, HasSubstr("prompt is empty")));
  EXPECT_THAT(engine_->Score({"p", {}, ""}), StatusIs(kInvalid, HasSubstr("continuations")));
  EXPECT_THAT(engine_->Score({"p", {" x", ""}, ""}),
              StatusIs(kInvalid, HasSubstr("continuations[1] is empty")));
  EXPECT_THAT(engine_->Score({"p", {"a", "b", "c", "d"}, ""}),
              StatusIs(kInvalid, AllOf(HasSubstr("4 continuations"),
                                       HasSubstr("--max_continuations"))));
  EXPECT_THAT(engine_->Score({"p", {std::string(70, 'x')}, ""}),
              StatusIs(kInvalid, HasSubstr("context")));
  EXPECT_THAT(engine_->Score({"p", {" x"}, "nope"}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope")));
}

TEST_F(EngineTest, RequestsPastTheConcurrencyLimitAreRejectedNotQueued) {
  EngineOptions options = TestOptions();
  options.limits.max_concurrent_requests = 1;
  std::unique_ptr<Engine> engine = MakeEngine(options);
  ASSERT_NE(engine, nullptr);
  absl::Status nested;
  // While the first request decodes, a second one on the same thread
  // finds the only slot taken.
  ASSERT_OK(engine->Generate(Greedy("Hi", 2), [&](const GeneratedToken&) {
    if (nested.ok()) nested = engine->Generate(Greedy("Hi", 2)).status();
    return true;
  }).status());
  EXPECT_THAT(nested, StatusIs(absl::StatusCode::kResourceExhausted,
                               AllOf(HasSubstr("1"), HasSubstr("--max_concurrent_requests"))));
  EXPECT_OK(engine->Generate(Greedy("Hi", 2)).status());  // the slot was released
}

TEST(EngineConcurrencyTest, ConcurrentRequestsAllSucceedWithTheSameResults) {
  for (int64_t max_batch_size : {1, 8}) {  // a thread per request; one batch
    EngineOptions options = TestOptions();
    options.max_batch_size = max_batch_size;
    std::unique_ptr<Engine> engine = MakeEngine(options);
    ASSERT_NE(engine, nullptr);
    ASSERT_OK_AND_ASSIGN(GenerateResult expected,
                         engine->Generate(EngineTest::Greedy("Hello", 8)));
    std::vector<absl::StatusOr<GenerateResult>> results(8, absl::UnknownError("not run"));
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i) {
      threads.emplace_back(
          [&, i] { results[i] = engine->Generate(EngineTest::Greedy("Hello", 8)); });
    }
    for (std::thread& t : threads) t.join();
    for (const auto& r : results) {
      ASSERT_OK(r.status());
      EXPECT_EQ(r->ids, expected.ids) << "max_batch_size " << max_batch_size;
    }
  }
}

TEST(EngineBatchingTest, BatchedRequestsEqualUnbatchedOnes) {
  EngineOptions plain_options = TestOptions();
  plain_options.max_batch_size = 1;
  std::unique_ptr<Engine> plain = MakeEngine(plain_options);
  EngineOptions options = TestOptions();
  options.max_batch_size = 4;
  options.batch_window = absl::Milliseconds(20);
  std::unique_ptr<Engine> batched = MakeEngine(options);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(batched, nullptr);
  const std::vector<std::string> prompts = {"Hello", "A longer prompt", "x", "Tokens",
                                            "Hello", "Why", "Batch me", "zz"};
  std::vector<absl::StatusOr<GenerateResult>> results(prompts.size(),
                                                      absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i) {
    threads.emplace_back([&, i] {
      TextGenerateRequest request;
      request.prompt = prompts[i];
      request.max_new_tokens = 4 + i;
      request.ignore_eos = true;
      request.sampling.temperature = i % 2 == 0 ? 0.0f : 0.8f;
      request.sampling.seed = i;
      results[i] = batched->Generate(request);
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    TextGenerateRequest request;
    request.prompt = prompts[i];
    request.max_new_tokens = 4 + i;
    request.ignore_eos = true;
    request.sampling.temperature = i % 2 == 0 ? 0.0f : 0.8f;
    request.sampling.seed = i;
    ASSERT_OK_AND_ASSIGN(GenerateResult alone, plain->Generate(request));
    ASSERT_OK(results[i].status());
    EXPECT_EQ(results[i]->ids, alone.ids) << "prompt " << prompts[i];
  }
}

TEST(EngineOptionsTest, NonPositiveLimitsAreRejected) {
  const std::string dir = testing::WriteTinyCheckpoint();
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(dir));
  EngineOptions options;
  options.limits.max_new_tokens = 0;
  EXPECT_THAT(Engine::Create(std::move(checkpoint), options),
              StatusIs(kInvalid, HasSubstr("--max_new_tokens")));
}

TEST(DeviceTest, ParsesCpuAndRejectsCudaWithoutCuda) {
  ASSERT_OK_AND_ASSIGN(torch::Device cpu, ParseDevice("cpu"));
  EXPECT_TRUE(cpu.is_cpu());
  EXPECT_THAT(ParseDevice("gpu"), StatusIs(kInvalid, HasSubstr("cpu, cuda or cuda:N")));
  EXPECT_THAT(ParseDevice("cuda:x"), StatusIs(kInvalid));
  if (!torch::cuda::is_available()) {
    EXPECT_THAT(ParseDevice("cuda"),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--device=cpu")));
    EXPECT_THAT(ParseDevice("cuda:1"), StatusIs(absl::StatusCode::kFailedPrecondition));
  }
}

TEST(DeviceTest, ParsesDtypesAndNamesThem) {
  ASSERT_OK_AND_ASSIGN(torch::Dtype bf16, ParseDtype("bfloat16"));
  EXPECT_EQ(DtypeName(bf16), "bfloat16");
  ASSERT_OK_AND_ASSIGN(torch::Dtype fp16, ParseDtype("fp16"));
  EXPECT_EQ(DtypeName(fp16), "float16");
  EXPECT_THAT(ParseDtype("int8"), StatusIs(kInvalid, HasSubstr("float32")));
}

}  // namespace
}  // namespace romed
