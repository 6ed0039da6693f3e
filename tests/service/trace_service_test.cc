// Trace, TraceStream and TraceFacts through an in-process channel on the
// tiny model: results, progress, every bad input of issue #4 with its code
// and message, the heavy-job limit, deadlines and cancellation (the server
// stops computing), sessions, and the stored edit site in GetModelInfo.
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/trace/causal_trace.h"
#include "tests/service/grpc_status_matchers.h"
#include "tests/service/service_fixture.h"

namespace romed::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;

// The tiny model's tokenizer is byte-level: one token per byte.
constexpr char kPrompt[] = "Bob Ka is in";
constexpr char kSubject[] = "Bob Ka";
constexpr int kTokens = 12;
constexpr int kLayers = 2;

v1::TraceRequest SmallRequest() {
  v1::TraceRequest request;
  request.set_prompt(kPrompt);
  request.set_subject(kSubject);
  request.set_samples(2);
  request.set_seed(7);
  return request;
}

v1::TraceFactsRequest InlineFacts(int count) {
  v1::TraceFactsRequest request;
  const std::vector<std::pair<std::string, std::string>> facts = {
      {"Bob Ka is in", "Bob Ka"}, {"Ann Lo was born in", "Ann Lo"}, {"The Zed plays", "Zed"}};
  for (int i = 0; i < count; ++i) {
    v1::TraceFact* fact = request.add_facts();
    fact->set_prompt(facts[i % facts.size()].first);
    fact->set_subject(facts[i % facts.size()].second);
  }
  request.mutable_options()->set_samples(2);
  return request;
}

class TraceServiceTest : public ServiceTest {
 protected:
  static grpc::Status CallTrace(const v1::TraceRequest& request,
                                v1::TraceResponse* response = nullptr) {
    grpc::ClientContext context;
    v1::TraceResponse ignored;
    return stub().Trace(&context, request, response != nullptr ? response : &ignored);
  }

  // Reads a whole TraceFacts stream; the messages go to `messages`.
  static grpc::Status CallTraceFacts(
      const v1::TraceFactsRequest& request,
      std::vector<v1::TraceFactsProgress>* messages = nullptr,
      std::chrono::milliseconds deadline = std::chrono::milliseconds(0)) {
    grpc::ClientContext context;
    if (deadline.count() > 0) context.set_deadline(std::chrono::system_clock::now() + deadline);
    auto reader = stub().TraceFacts(&context, request);
    v1::TraceFactsProgress message;
    while (reader->Read(&message)) {
      if (messages != nullptr) messages->push_back(message);
    }
    return reader->Finish();
  }

  // Polls until a heavy-job slot is free again, i.e. the server stopped the
  // previous job; false after `limit`.
  static bool HeavySlotFreesWithin(std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (engine().AcquireHeavyJob().ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
};

TEST_F(TraceServiceTest, TraceReturnsAGridPerKindOfTokensByLayers) {
  v1::TraceResponse response;
  ASSERT_TRUE(CallTrace(SmallRequest(), &response).ok());
  ASSERT_EQ(response.tokens_size(), kTokens);
  EXPECT_EQ(response.token_ids_size(), kTokens);
  EXPECT_EQ(response.tokens(0), "B");
  EXPECT_EQ(response.subject_begin(), 0);
  EXPECT_EQ(response.subject_end(), 6);
  EXPECT_EQ(response.n_layer(), kLayers);
  ASSERT_EQ(response.grids_size(), 3);
  EXPECT_EQ(response.grids(0).kind(), v1::TRACE_KIND_STATE);
  EXPECT_EQ(response.grids(1).kind(), v1::TRACE_KIND_MLP);
  EXPECT_EQ(response.grids(2).kind(), v1::TRACE_KIND_ATTN);
  for (const v1::TraceGrid& grid : response.grids()) {
    EXPECT_EQ(grid.scores_size(), kTokens * kLayers);
  }
  EXPECT_EQ(response.grids(1).window(), DefaultTraceWindow(kLayers));
  EXPECT_GT(response.high_score(), 0);
  EXPECT_EQ(response.samples(), 2);
  EXPECT_EQ(response.seed(), 7u);
  EXPECT_GT(response.noise_sigma(), 0);
  // The tiny checkpoint ships no known facts: 3 x the vocabulary's std.
  EXPECT_EQ(response.noise_basis(), v1::NOISE_BASIS_VOCABULARY_EMBEDDINGS);
  EXPECT_GT(response.cost().forwards(), 2);
}

TEST_F(TraceServiceTest, TraceEqualsTheLibraryTraceOfTheSameRequest) {
  v1::TraceRequest request = SmallRequest();
  request.add_kinds(v1::TRACE_KIND_MLP);
  request.set_window(2);
  request.set_noise_sigma(0.5f);
  request.set_answer(" ");
  v1::TraceResponse response;
  ASSERT_TRUE(CallTrace(request, &response).ok());

  TraceOptions options;
  options.kinds = {TraceKind::kMlp};
  options.window = 2;
  options.noise = {NoiseScale::Mode::kAbsolute, 0.5f};
  options.samples = 2;
  options.seed = 7;
  options.target = " ";
  auto expected = TracePrompt(engine().model(), engine().tokenizer(), kPrompt, kSubject, options);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(response.answer(), " ");
  EXPECT_EQ(response.noise_basis(), v1::NOISE_BASIS_ABSOLUTE);
  ASSERT_EQ(response.grids_size(), 1);
  for (int t = 0; t < kTokens; ++t) {
    for (int l = 0; l < kLayers; ++l) {
      EXPECT_NEAR(response.grids(0).scores(t * kLayers + l), expected->scores[0].values[t][l],
                  1e-6);
    }
  }
}

TEST_F(TraceServiceTest, TraceStreamSendsProgressThenTheSameResult) {
  grpc::ClientContext context;
  auto reader = stub().TraceStream(&context, SmallRequest());
  std::vector<v1::TraceStreamResponse> messages;
  v1::TraceStreamResponse message;
  while (reader->Read(&message)) messages.push_back(message);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_GE(messages.size(), 3u);
  for (size_t i = 0; i + 1 < messages.size(); ++i) {
    EXPECT_FALSE(messages[i].done());
    EXPECT_EQ(messages[i].done_steps(), static_cast<int64_t>(i + 1));
    EXPECT_EQ(messages[i].total_steps(), messages.back().total_steps());
  }
  ASSERT_TRUE(messages.back().done());
  v1::TraceResponse unary;
  ASSERT_TRUE(CallTrace(SmallRequest(), &unary).ok());
  const v1::TraceResponse& streamed = messages.back().result();
  ASSERT_EQ(streamed.grids_size(), unary.grids_size());
  for (int g = 0; g < unary.grids_size(); ++g) {
    EXPECT_THAT(streamed.grids(g).scores(), ::testing::ElementsAreArray(unary.grids(g).scores()));
  }
}

// ------------------------------------------------------------ bad input

struct BadTrace {
  const char* name;
  std::function<void(v1::TraceRequest*)> mutate;
  grpc::StatusCode code;
  std::vector<std::string> message_parts;
};

void PrintTo(const BadTrace& bad, std::ostream* os) { *os << bad.name; }

class TraceBadInputTest : public TraceServiceTest, public ::testing::WithParamInterface<BadTrace> {};

TEST_P(TraceBadInputTest, GetsItsCodeAndAnActionableMessage) {
  v1::TraceRequest request = SmallRequest();
  GetParam().mutate(&request);
  grpc::Status status = CallTrace(request);
  EXPECT_EQ(status.error_code(), GetParam().code) << status.error_message();
  for (const std::string& part : GetParam().message_parts) {
    EXPECT_THAT(status.error_message(), HasSubstr(part));
  }
  ExpectServerStillAnswers();
  EXPECT_TRUE(CallTrace(SmallRequest()).ok()) << "the heavy-job slot was not released";
}

INSTANTIATE_TEST_SUITE_P(
    Issue4, TraceBadInputTest,
    ::testing::Values(
        BadTrace{"SubjectNotInPrompt", [](auto* r) { r->set_subject("Zed"); }, kInvalid,
                 {"subject \"Zed\" does not occur in the prompt"}},
        BadTrace{"SubjectIsTheWholePrompt", [](auto* r) { r->set_subject(kPrompt); }, kInvalid,
                 {"covers the whole prompt"}},
        BadTrace{"EmptyPrompt", [](auto* r) { r->set_prompt(""); }, kInvalid,
                 {"prompt is empty"}},
        BadTrace{"EmptySubject", [](auto* r) { r->set_subject(""); }, kInvalid,
                 {"subject is empty"}},
        BadTrace{"WindowZero", [](auto* r) { r->set_window(0); }, kInvalid,
                 {"window=0 is outside [1, 2]", "leave it unset"}},
        BadTrace{"WindowDeeperThanTheModel", [](auto* r) { r->set_window(3); }, kInvalid,
                 {"window=3 is outside [1, 2]", "the model has 2 layers"}},
        BadTrace{"SamplesZero", [](auto* r) { r->set_samples(0); }, kInvalid,
                 {"samples=0 is outside [1, 64]"}},
        BadTrace{"SamplesAboveTheLimit", [](auto* r) { r->set_samples(65); }, kInvalid,
                 {"samples=65 is outside [1, 64]"}},
        BadTrace{"NegativeNoiseSigma", [](auto* r) { r->set_noise_sigma(-1); }, kInvalid,
                 {"noise_sigma=-1", ">= 0"}},
        BadTrace{"NegativeNoiseMultiplier", [](auto* r) { r->set_noise_multiplier(-0.5f); },
                 kInvalid, {"noise_multiplier=-0.5"}},
        BadTrace{"UnknownSession", [](auto* r) { r->set_session_id("s-nope"); },
                 grpc::StatusCode::NOT_FOUND, {"session \"s-nope\" not found", "CreateSession"}},
        BadTrace{"PromptPastTheTokenLimit",
                 [](auto* r) { r->set_prompt(std::string(49, 'a') + " Bob Ka is in"); }, kInvalid,
                 {"prompt is 62 tokens", "--max_prompt_tokens"}},
        BadTrace{"KindListedTwice",
                 [](auto* r) {
                   r->add_kinds(v1::TRACE_KIND_MLP);
                   r->add_kinds(v1::TRACE_KIND_MLP);
                 },
                 kInvalid, {"kind \"mlp\" is listed twice"}},
        BadTrace{"KindUnspecified", [](auto* r) { r->add_kinds(v1::TRACE_KIND_UNSPECIFIED); },
                 kInvalid, {"kinds[0]", "TRACE_KIND_STATE"}},
        BadTrace{"UnknownSeverMode", [](auto* r) { r->set_sever(static_cast<v1::SeverMode>(9)); },
                 kInvalid, {"sever is 9"}}),
    [](const ::testing::TestParamInfo<BadTrace>& info) { return info.param.name; });

TEST_F(TraceServiceTest, TraceWhileAllHeavyJobSlotsAreTakenIsResourceExhausted) {
  auto slot = engine().AcquireHeavyJob();  // the fixture allows one heavy job
  ASSERT_TRUE(slot.ok());
  EXPECT_THAT(CallTrace(SmallRequest()),
              GrpcStatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           HasSubstr("--max_concurrent_heavy_jobs")));
}

TEST_F(TraceServiceTest, BadInputIsReportedBeforeTheHeavyJobLimit) {
  auto slot = engine().AcquireHeavyJob();
  ASSERT_TRUE(slot.ok());
  v1::TraceRequest request = SmallRequest();
  request.set_samples(0);
  EXPECT_THAT(CallTrace(request), GrpcStatusIs(kInvalid, HasSubstr("samples=0")));
}

// ------------------------------------------------------------ deadline, cancel

TEST_F(TraceServiceTest, TraceFactsStopsComputingWhenTheDeadlinePasses) {
  v1::TraceFactsRequest request = InlineFacts(1000);  // many seconds of work
  request.set_n(1000);
  std::vector<v1::TraceFactsProgress> messages;
  const auto start = std::chrono::steady_clock::now();
  const grpc::Status status = CallTraceFacts(request, &messages, std::chrono::milliseconds(300));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_LT(messages.size(), 1000u);
  EXPECT_TRUE(HeavySlotFreesWithin(std::chrono::seconds(2)))
      << "the server kept computing after the deadline";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST_F(TraceServiceTest, TraceFactsStopsComputingWhenTheClientCancels) {
  v1::TraceFactsRequest request = InlineFacts(1000);
  request.set_n(1000);
  grpc::ClientContext context;
  auto reader = stub().TraceFacts(&context, request);
  v1::TraceFactsProgress message;
  ASSERT_TRUE(reader->Read(&message));  // the first fact is traced
  context.TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(HeavySlotFreesWithin(std::chrono::seconds(2)))
      << "the server kept computing after the cancel";
}

// ------------------------------------------------------------ TraceFacts

TEST_F(TraceServiceTest, TraceFactsStreamsEachFactThenTheTableAndTheSite) {
  std::vector<v1::TraceFactsProgress> messages;
  ASSERT_TRUE(CallTraceFacts(InlineFacts(3), &messages).ok());
  ASSERT_EQ(messages.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(messages[i].facts_done(), i + 1);
    EXPECT_EQ(messages[i].facts_total(), 3);
    EXPECT_EQ(messages[i].fact().index(), i);
  }
  EXPECT_EQ(messages[1].fact().subject(), "Ann Lo");
  const v1::TraceFactsProgress& last = messages.back();
  ASSERT_TRUE(last.done());
  const v1::AveragedTraceTable& table = last.result().table();
  EXPECT_EQ(table.num_facts(), 3);
  EXPECT_EQ(table.n_layer(), kLayers);
  ASSERT_EQ(table.kinds_size(), 3);
  for (const v1::KindEffects& kind : table.kinds()) {
    ASSERT_EQ(kind.classes_size(), 6);
    EXPECT_EQ(kind.classes(0).position(), v1::POSITION_CLASS_FIRST_SUBJECT_TOKEN);
    EXPECT_EQ(kind.classes(5).position(), v1::POSITION_CLASS_LAST_TOKEN);
    EXPECT_EQ(kind.classes(5).count(), 3);  // one last token per fact
    for (const v1::PositionClassEffects& row : kind.classes()) {
      EXPECT_EQ(row.effect_size(), kLayers);
    }
  }
  ASSERT_TRUE(last.result().has_recommendation());
  EXPECT_NE(last.result().recommendation().fact_token(), v1::FACT_TOKEN_UNSPECIFIED);
  EXPECT_FALSE(last.result().stored());
}

TEST_F(TraceServiceTest, StoredRecommendationIsTheEditSiteInGetModelInfo) {
  v1::TraceFactsRequest request = InlineFacts(3);
  request.set_store_recommendation(true);
  std::vector<v1::TraceFactsProgress> messages;
  ASSERT_TRUE(CallTraceFacts(request, &messages).ok());
  const v1::TraceFactsResult& result = messages.back().result();
  EXPECT_TRUE(result.stored());
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub().GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  ASSERT_TRUE(info.has_edit_site());
  EXPECT_EQ(info.edit_site().fact_token(), result.recommendation().fact_token());
  EXPECT_EQ(info.edit_site().layer(), result.recommendation().layer());
  EXPECT_EQ(info.edit_site().num_facts(), 3);
  ASSERT_TRUE(engine().edit_sites().Get().has_value());
  EXPECT_EQ(engine().edit_sites().Get()->layer, result.recommendation().layer());
  EXPECT_EQ(info.rpc_status().at("TraceFacts"), "available");
  EXPECT_EQ(info.rpc_status().at("Trace"), "available");
}

TEST_F(TraceServiceTest, TraceFactsWithoutFactsOnAModelWithoutKnownFactsIsFailedPrecondition) {
  v1::TraceFactsRequest request;
  EXPECT_THAT(CallTraceFacts(request),
              GrpcStatusIs(grpc::StatusCode::FAILED_PRECONDITION,
                           AllOf(HasSubstr("no known facts"), HasSubstr("--facts=FILE"))));
}

TEST_F(TraceServiceTest, TraceFactsBadInput) {
  v1::TraceFactsRequest too_many = InlineFacts(2);
  too_many.set_n(1001);
  EXPECT_THAT(CallTraceFacts(too_many), GrpcStatusIs(kInvalid, HasSubstr("n=1001 is outside")));

  v1::TraceFactsRequest with_prompt = InlineFacts(2);
  with_prompt.mutable_options()->set_prompt("x");
  EXPECT_THAT(CallTraceFacts(with_prompt), GrpcStatusIs(kInvalid, HasSubstr("leave them empty")));

  v1::TraceFactsRequest no_mlp = InlineFacts(2);
  no_mlp.mutable_options()->add_kinds(v1::TRACE_KIND_STATE);
  no_mlp.set_store_recommendation(true);
  EXPECT_THAT(CallTraceFacts(no_mlp), GrpcStatusIs(kInvalid, HasSubstr("needs the mlp kind")));

  v1::TraceFactsRequest on_session = InlineFacts(2);
  on_session.mutable_options()->set_session_id("s-1");
  on_session.set_store_recommendation(true);
  EXPECT_THAT(CallTraceFacts(on_session),
              GrpcStatusIs(kInvalid, HasSubstr("original model's")));

  v1::TraceFactsRequest bad_fact = InlineFacts(3);
  bad_fact.mutable_facts(1)->set_subject("Nobody");
  std::vector<v1::TraceFactsProgress> messages;
  EXPECT_THAT(CallTraceFacts(bad_fact, &messages),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("facts[1]"), HasSubstr("\"Nobody\""))));
  EXPECT_TRUE(messages.empty()) << "every fact is checked before the first is traced";

  v1::TraceFactsRequest bad_window = InlineFacts(2);
  bad_window.mutable_options()->set_window(0);
  EXPECT_THAT(CallTraceFacts(bad_window),
              GrpcStatusIs(kInvalid, AllOf(HasSubstr("facts[0]"), HasSubstr("window=0"))));
  ExpectServerStillAnswers();
}

// ------------------------------------------------------------ sessions

TEST_F(TraceServiceTest, TracingASessionAppliesItsDeltas) {
  auto session = engine().sessions().Create("trace", {}, "");
  ASSERT_TRUE(session.ok()) << session.status();
  const std::string id = (*session)->info.id;
  // One strong rank-one delta at the last layer: it changes every output.
  const Gpt2Config& config = engine().model().config();
  RankOneDelta delta;
  delta.layer = kLayers - 1;
  delta.u = torch::ones({config.mlp_width()}) * 0.5;
  torch::manual_seed(3);
  delta.lambda = torch::randn({config.n_embd});
  auto pushed = engine().sessions().PushEdit(id, [&](const SessionState&) {
    EditEntry entry;
    entry.deltas = {delta};
    return absl::StatusOr<EditEntry>(entry);
  });
  ASSERT_TRUE(pushed.ok()) << pushed.status();

  v1::TraceRequest request = SmallRequest();
  request.add_kinds(v1::TRACE_KIND_STATE);
  request.set_answer(" ");
  v1::TraceResponse base, edited;
  ASSERT_TRUE(CallTrace(request, &base).ok());
  request.set_session_id(id);
  ASSERT_TRUE(CallTrace(request, &edited).ok());
  EXPECT_NE(base.high_score(), edited.high_score());

  // Equal to the library's trace with that session's view.
  TraceOptions options;
  options.kinds = {TraceKind::kState};
  options.samples = 2;
  options.seed = 7;
  auto embedding_std = engine().TraceEmbeddingStd();
  ASSERT_TRUE(embedding_std.ok());
  options.embedding_std = embedding_std->first;
  options.edit_view = EditView::Build({delta}, engine().model().device(), engine().model().dtype());
  options.target = " ";
  auto expected = TracePrompt(engine().model(), engine().tokenizer(), kPrompt, kSubject, options);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(edited.answer_id(), expected->answer_token);
  EXPECT_NEAR(edited.high_score(), expected->high_score, 1e-6);
  EXPECT_NEAR(edited.low_score(), expected->low_score, 1e-6);
}

}  // namespace
}  // namespace romed::testing
