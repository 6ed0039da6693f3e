// Generation end to end on a tiny random checkpoint (tests/testing/tiny_model.h):
// KV-cached decoding against full forwards, batches against rows alone,
// sampling reproducibility, stop sequences, streaming and bad requests.
#include "server/model/generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "server/model/checkpoint.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr int64_t kEos = 256;  // "<|endoftext|>" in the byte-level vocabulary

class GeneratorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<Checkpoint> checkpoint =
        LoadCheckpoint(romed::testing::WriteTinyCheckpoint(romed::testing::TinyConfig(), 5));
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    model_ = std::make_shared<const Gpt2Model>(checkpoint->config, checkpoint->weights);
    tokenizer_ = checkpoint->tokenizer;
  }
  static void TearDownTestSuite() {
    model_.reset();
    tokenizer_.reset();
  }

  Generator MakeGenerator() const { return Generator(model_, tokenizer_); }

  // One random rank-one delta at `layer`, large enough to change outputs.
  static std::shared_ptr<const EditView> RandomEdit(int64_t layer, uint64_t seed) {
    const Gpt2Config& config = model_->config();
    torch::manual_seed(seed);
    return EditView::Build(
        {{layer, torch::randn({config.mlp_width()}), 5.0 * torch::randn({config.n_embd})}},
        model_->device(), model_->dtype());
  }

  static GenerateRequest Greedy(std::vector<int64_t> prompt, int64_t max_new_tokens) {
    GenerateRequest request;
    request.prompt_ids = std::move(prompt);
    request.max_new_tokens = max_new_tokens;
    request.stop_at_eos = false;
    return request;
  }

  static GenerateRequest Sampled(std::vector<int64_t> prompt, uint64_t seed) {
    GenerateRequest request = Greedy(std::move(prompt), 24);
    request.sampling.temperature = 1.0f;
    request.sampling.top_p = 0.95f;
    request.sampling.seed = seed;
    return request;
  }

  GenerateResult Run(const GenerateRequest& request, const TokenCallback& on_token = nullptr) {
    absl::StatusOr<GenerateResult> result = MakeGenerator().Generate(request, on_token);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : GenerateResult{};
  }

  // Greedy decoding by full forwards over the whole sequence, no cache.
  static std::vector<int64_t> ArgmaxByFullForwards(std::vector<int64_t> ids, int64_t steps) {
    c10::InferenceMode inference_mode;
    std::vector<int64_t> generated;
    for (int64_t step = 0; step < steps; ++step) {
      const int64_t t = static_cast<int64_t>(ids.size());
      torch::Tensor logits = model_->Forward({torch::tensor(ids).view({1, t}), torch::Tensor()});
      const int64_t next = logits[0][t - 1].argmax().item<int64_t>();
      ids.push_back(next);
      generated.push_back(next);
    }
    return generated;
  }

  static inline std::shared_ptr<const Gpt2Model> model_;
  static inline std::shared_ptr<const Gpt2Tokenizer> tokenizer_;
};

const std::vector<int64_t> kPrompt = {72, 101, 108, 108, 111, 44, 32};  // "Hello, "

// The first two printable ASCII bytes in a row at or after byte `from` of
// `text`: a stop sequence that a run reproducing `text` must meet.
std::string AsciiPairAt(const std::string& text, size_t from) {
  auto printable = [](char c) { return c >= 0x20 && c < 0x7F; };
  for (size_t i = from; i + 1 < text.size(); ++i) {
    if (printable(text[i]) && printable(text[i + 1])) return text.substr(i, 2);
  }
  ADD_FAILURE() << "no two printable ASCII bytes in a row after byte " << from;
  return "unused";
}

TEST_F(GeneratorTest, GreedyGenerationIsDeterministic) {
  const GenerateResult first = Run(Greedy(kPrompt, 20));
  const GenerateResult second = Run(Greedy(kPrompt, 20));
  EXPECT_EQ(first.ids, second.ids);
  EXPECT_EQ(first.text, second.text);
}

TEST_F(GeneratorTest, GreedyGenerationEqualsArgmaxOverFullForwards) {
  const GenerateResult result = Run(Greedy(kPrompt, 30));
  EXPECT_EQ(result.ids, ArgmaxByFullForwards(kPrompt, 30));
}

TEST_F(GeneratorTest, LogprobsAreLogSoftmaxOfTheFullForward) {
  const GenerateResult result = Run(Greedy(kPrompt, 4));
  c10::InferenceMode inference_mode;
  std::vector<int64_t> ids = kPrompt;
  for (size_t i = 0; i < result.ids.size(); ++i) {
    const int64_t t = static_cast<int64_t>(ids.size());
    const torch::Tensor logits = model_->Forward({torch::tensor(ids).view({1, t}), {}});
    const float expected = torch::log_softmax(logits[0][t - 1], -1)[result.ids[i]].item<float>();
    EXPECT_NEAR(result.logprobs[i], expected, 1e-5) << "token " << i;
    ids.push_back(result.ids[i]);
  }
}

TEST_F(GeneratorTest, BatchOfDifferentLengthsEqualsEachPromptAlone) {
  // Different lengths (left padding) and budgets (rows leave the batch early).
  const std::vector<GenerateRequest> requests = {Greedy({1, 2, 3}, 12), Greedy(kPrompt, 5),
                                                 Greedy({200, 17, 99, 4, 5, 6, 7, 8, 9, 10, 11}, 9),
                                                 Greedy({42}, 15)};
  absl::StatusOr<std::vector<GenerateResult>> batch = MakeGenerator().GenerateBatch(requests);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_THAT(*batch, SizeIs(requests.size()));
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerateResult alone = Run(requests[i]);
    EXPECT_EQ((*batch)[i].ids, alone.ids) << "request " << i;
    EXPECT_EQ((*batch)[i].text, alone.text) << "request " << i;
    EXPECT_EQ((*batch)[i].prompt_tokens, static_cast<int64_t>(requests[i].prompt_ids.size()));
  }
}

TEST_F(GeneratorTest, SeededSamplingIsReproducibleAndDependsOnTheSeed) {
  const GenerateResult first = Run(Sampled(kPrompt, 11));
  const GenerateResult again = Run(Sampled(kPrompt, 11));
  const GenerateResult other = Run(Sampled(kPrompt, 12));
  EXPECT_EQ(first.ids, again.ids);
  EXPECT_NE(first.ids, other.ids);
}

TEST_F(GeneratorTest, SampledRowsInABatchMatchTheSameRequestsAlone) {
  const std::vector<GenerateRequest> requests = {Sampled(kPrompt, 1), Sampled({5, 6}, 2)};
  absl::StatusOr<std::vector<GenerateResult>> batch = MakeGenerator().GenerateBatch(requests);
  ASSERT_TRUE(batch.ok()) << batch.status();
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ((*batch)[i].ids, Run(requests[i]).ids) << "request " << i;
  }
}

TEST_F(GeneratorTest, MaxNewTokensEndsWithFinishReasonLength) {
  const GenerateResult result = Run(Greedy(kPrompt, 5));
  EXPECT_THAT(result.ids, SizeIs(5));
  EXPECT_THAT(result.logprobs, SizeIs(5));
  EXPECT_EQ(result.finish, FinishReason::kLength);
  EXPECT_EQ(FinishReasonName(result.finish), "length");
  EXPECT_EQ(result.prompt_tokens, static_cast<int64_t>(kPrompt.size()));
  EXPECT_GT(result.time_to_first_token_s, 0.0);
  EXPECT_GE(result.total_time_s, result.time_to_first_token_s);
}

TEST_F(GeneratorTest, StopSequenceEndsGenerationAndIsExcludedFromTheText) {
  // Sample freely, then take two bytes from the middle as the stop.
  GenerateRequest request = Sampled(kPrompt, 3);
  request.max_new_tokens = 50;
  const GenerateResult free_run = Run(request);
  request.stop = {AsciiPairAt(free_run.text, 6)};
  const size_t cut = free_run.text.find(request.stop[0]);

  const GenerateResult stopped = Run(request);
  EXPECT_EQ(stopped.finish, FinishReason::kStop);
  EXPECT_EQ(stopped.text, free_run.text.substr(0, cut));
  // The stop's tokens are generated (and reported), only its text is cut.
  EXPECT_EQ(stopped.ids,
            std::vector<int64_t>(free_run.ids.begin(), free_run.ids.begin() + stopped.ids.size()));
}

TEST_F(GeneratorTest, StreamedTextConcatenatesToTheResultText) {
  GenerateRequest request = Sampled(kPrompt, 4);
  request.max_new_tokens = 50;
  const GenerateResult free_run = Run(request);
  request.stop = {AsciiPairAt(free_run.text, 6), "never appears"};
  std::string streamed;
  int calls = 0;
  const GenerateResult result = Run(request, [&](const GeneratedToken& token) {
    streamed += token.text;
    ++calls;
    return true;
  });
  EXPECT_EQ(result.finish, FinishReason::kStop);
  EXPECT_EQ(streamed, result.text);
  EXPECT_EQ(calls, static_cast<int>(result.ids.size()));
}

TEST_F(GeneratorTest, StreamedTextHoldsBackIncompleteUtf8Characters) {
  // Prompt "é" as bytes; streaming splits generated bytes, never characters.
  GenerateRequest request = Sampled({0xC3, 0xA9}, 9);
  request.max_new_tokens = 40;
  std::vector<std::string> chunks;
  const GenerateResult result = Run(request, [&](const GeneratedToken& token) {
    chunks.push_back(token.text);
    return true;
  });
  std::string joined;
  for (const std::string& chunk : chunks) {
    EXPECT_EQ(FindInvalidUtf8(chunk), -1) << "chunk is not valid UTF-8";
    joined += chunk;
  }
  EXPECT_EQ(joined, result.text);
  EXPECT_EQ(FindInvalidUtf8(result.text), -1);
}

TEST_F(GeneratorTest, CallbackReturningFalseCancels) {
  int calls = 0;
  const GenerateResult result =
      Run(Greedy(kPrompt, 20), [&](const GeneratedToken&) { return ++calls < 3; });
  EXPECT_EQ(result.finish, FinishReason::kCancelled);
  EXPECT_THAT(result.ids, SizeIs(3));
}

TEST_F(GeneratorTest, PerRowEditViewsMatchEachViewAlone) {
  std::shared_ptr<const EditView> edit = RandomEdit(0, 3);
  GenerateRequest edited = Greedy(kPrompt, 12);
  edited.edits = edit;
  const GenerateRequest base = Greedy(kPrompt, 12);

  absl::StatusOr<std::vector<GenerateResult>> batch =
      MakeGenerator().GenerateBatch({base, edited, base});
  ASSERT_TRUE(batch.ok()) << batch.status();
  const GenerateResult base_alone = Run(base);
  const GenerateResult edited_alone = Run(edited);
  ASSERT_NE(base_alone.ids, edited_alone.ids) << "the edit should change the greedy tokens";
  EXPECT_EQ((*batch)[0].ids, base_alone.ids);
  EXPECT_EQ((*batch)[1].ids, edited_alone.ids);
  EXPECT_EQ((*batch)[2].ids, base_alone.ids);
}

// Continuations scored from the prompt's KV cache equal ScoreContinuations
// (an independent batched forward over prompt + continuation), for rows of
// different prompt lengths (left padding), continuations of 1-4 tokens
// (right padding), with and without an edit view; the generation itself is
// unchanged by the scoring.
TEST_F(GeneratorTest, ScoredContinuationsEqualScoreContinuations) {
  std::shared_ptr<const EditView> edit = RandomEdit(1, 4);
  const std::vector<std::vector<int64_t>> continuations = {{70}, {71, 72, 73, 74}, {80, 81}};
  std::vector<GenerateRequest> requests = {Greedy(kPrompt, 5), Greedy({1, 2, 3}, 7),
                                           Greedy(kPrompt, 5)};
  requests[2].edits = edit;
  for (GenerateRequest& r : requests) r.score_continuations = continuations;
  absl::StatusOr<std::vector<GenerateResult>> batch = MakeGenerator().GenerateBatch(requests);
  ASSERT_TRUE(batch.ok()) << batch.status();
  double edited_difference = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    absl::StatusOr<std::vector<ContinuationScore>> want =
        ScoreContinuations(*model_, requests[i].prompt_ids, continuations, requests[i].edits);
    ASSERT_TRUE(want.ok()) << want.status();
    const std::vector<ContinuationScore>& got = (*batch)[i].continuation_scores;
    ASSERT_THAT(got, SizeIs(continuations.size())) << "row " << i;
    for (size_t j = 0; j < continuations.size(); ++j) {
      EXPECT_EQ(got[j].ids, continuations[j]);
      ASSERT_THAT(got[j].token_logprobs, SizeIs(continuations[j].size()));
      for (size_t t = 0; t < continuations[j].size(); ++t) {
        EXPECT_NEAR(got[j].token_logprobs[t], (*want)[j].token_logprobs[t], 1e-5)
            << "row " << i << " continuation " << j << " token " << t;
      }
      EXPECT_NEAR(got[j].total_logprob, (*want)[j].total_logprob, 1e-5);
      if (i == 2) {
        edited_difference += std::abs(got[j].total_logprob -
                                      (*batch)[0].continuation_scores[j].total_logprob);
      }
    }
    GenerateRequest plain = requests[i];
    plain.score_continuations.clear();
    EXPECT_EQ((*batch)[i].ids, Run(plain).ids) << "row " << i;
  }
  EXPECT_GT(edited_difference, 1e-3) << "the edit should change the scores";
}

TEST_F(GeneratorTest, ContinuationsToScoreAreValidated) {
  const Generator generator = MakeGenerator();
  const int64_t context = model_->config().n_positions;
  auto rejected = [&](std::vector<std::vector<int64_t>> continuations, const std::string& problem) {
    GenerateRequest request = Greedy(kPrompt, 2);
    request.score_continuations = std::move(continuations);
    EXPECT_THAT(generator.Generate(request),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(problem)));
  };
  rejected({{70}, {}}, "continuation 1 to score is empty");
  rejected({{70, 257}}, "vocabulary");
  rejected({std::vector<int64_t>(context, 70)}, "context");
}

// Each request fits the context alone, but a long prompt next to a long
// generation would not (rows are left-padded and decode together): the batch
// is split, and every row still equals its request run alone.
TEST_F(GeneratorTest, RequestsThatFitAloneButNotTogetherAreSplit) {
  const int64_t context = model_->config().n_positions;
  const std::vector<GenerateRequest> requests = {
      Greedy(std::vector<int64_t>(context - 2, 66), 2), Greedy(kPrompt, context - 8),
      Greedy({1, 2, 3}, 4)};
  absl::StatusOr<std::vector<GenerateResult>> batch = MakeGenerator().GenerateBatch(requests);
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_THAT(*batch, SizeIs(requests.size()));
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerateResult alone = Run(requests[i]);
    EXPECT_EQ((*batch)[i].ids, alone.ids) << "request " << i;
    EXPECT_EQ((*batch)[i].text, alone.text) << "request " << i;
  }
}

TEST_F(GeneratorTest, PromptFillingTheContextExactlyIsAccepted) {
  const int64_t context = model_->config().n_positions;
  const GenerateResult result = Run(Greedy(std::vector<int64_t>(context - 3, 65), 3));
  EXPECT_THAT(result.ids, SizeIs(3));
}

TEST_F(GeneratorTest, InvalidRequestsAreRejectedNamingTheProblem) {
  const Generator generator = MakeGenerator();
  const int64_t context = model_->config().n_positions;
  auto rejected = [&](GenerateRequest request, const std::string& problem) {
    EXPECT_THAT(generator.Generate(request),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(problem)));
  };
  rejected(Greedy({}, 4), "prompt is empty");
  rejected(Greedy(kPrompt, 0), "max_new_tokens");
  rejected(Greedy(std::vector<int64_t>(context - 3, 65), 4), "context");
  rejected(Greedy({1, 257}, 4), "vocabulary");
  rejected(Greedy({-1}, 4), "vocabulary");
  GenerateRequest request = Greedy(kPrompt, 4);
  request.sampling.temperature = -1.0f;
  rejected(request, "temperature");
  request = Greedy(kPrompt, 4);
  request.sampling.top_p = 0.0f;
  rejected(request, "top_p");
  request = Greedy(kPrompt, 4);
  request.sampling.top_k = -2;
  rejected(request, "top_k");
  request = Greedy(kPrompt, 4);
  request.stop = {"ok", ""};
  rejected(request, "stop sequence 1 is empty");
  request.stop = {"\xC3"};
  rejected(request, "UTF-8");
}

TEST_F(GeneratorTest, ABadRequestInABatchNamesItsIndexAndRunsNothing) {
  int calls = 0;
  const TokenCallback count = [&](const GeneratedToken&) { return ++calls > 0; };
  EXPECT_THAT(MakeGenerator().GenerateBatch({Greedy(kPrompt, 3), Greedy({}, 3)}, {count, count}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("request 1")));
  EXPECT_EQ(calls, 0);
  EXPECT_THAT(MakeGenerator().GenerateBatch({Greedy(kPrompt, 3)}, {count, count}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("callbacks")));
}

// A model whose final LayerNorm ignores its input and whose LM head favours
// `<|endoftext|>`, so every step's argmax is eos.
class EosModelTest : public ::testing::Test {
 protected:
  EosModelTest() {
    const Gpt2Config config = romed::testing::TinyConfig();
    Gpt2Weights weights = Gpt2Weights::Random(config, 1);
    weights.ln_f_weight.zero_();
    weights.ln_f_bias.fill_(1.0);
    weights.wte[kEos].fill_(1.0);
    auto model = std::make_shared<const Gpt2Model>(config, std::move(weights));
    auto tokenizer = Gpt2Tokenizer::FromText(romed::testing::ByteLevelVocabJson(),
                                             romed::testing::ByteLevelMergesTxt());
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
    generator_ = std::make_unique<Generator>(model, std::move(*tokenizer));
  }
  std::unique_ptr<Generator> generator_;
};

TEST_F(EosModelTest, EosEndsGenerationWithFinishReasonEos) {
  GenerateRequest request;
  request.prompt_ids = kPrompt;
  request.max_new_tokens = 10;
  absl::StatusOr<GenerateResult> result = generator_->Generate(request);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->finish, FinishReason::kEos);
  EXPECT_THAT(result->ids, ElementsAre(kEos));
  EXPECT_EQ(result->text, "");
}

TEST_F(EosModelTest, EosIsPlainTextWhenStopAtEosIsOff) {
  GenerateRequest request;
  request.prompt_ids = kPrompt;
  request.max_new_tokens = 2;
  request.stop_at_eos = false;
  absl::StatusOr<GenerateResult> result = generator_->Generate(request);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->finish, FinishReason::kLength);
  EXPECT_EQ(result->text, "<|endoftext|><|endoftext|>");
}

}  // namespace
}  // namespace romed
