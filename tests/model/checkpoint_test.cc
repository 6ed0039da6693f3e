#include "server/model/checkpoint.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/model/safetensors.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using Named = std::vector<std::pair<std::string, torch::Tensor>>;

class CheckpointTest : public ::testing::Test {
 protected:
  CheckpointTest() : config_(testing::TinyConfig()), weights_(Gpt2Weights::Random(config_, 3)) {}

  // A fresh directory holding weights_ saved as `dtype`.
  std::string Save(torch::Dtype dtype = torch::kFloat32) {
    std::string dir = testing::MakeTempDir("romed-checkpoint");
    EXPECT_OK(SaveCheckpoint(dir, config_, weights_, testing::ByteLevelVocabJson(),
                             testing::ByteLevelMergesTxt(), dtype));
    return dir;
  }

  // A saved checkpoint whose model.safetensors is replaced by `tensors`.
  std::string SaveWithTensors(const Named& tensors) {
    std::string dir = Save();
    EXPECT_OK(WriteSafetensors(dir + "/model.safetensors", tensors));
    return dir;
  }

  Named NamedWeights() const { return weights_.Named(config_); }

  static Named Without(Named named, const std::string& name) {
    named.erase(std::remove_if(named.begin(), named.end(),
                               [&](const auto& entry) { return entry.first == name; }),
                named.end());
    return named;
  }

  static Named Replacing(Named named, const std::string& name, torch::Tensor tensor) {
    for (auto& entry : named) {
      if (entry.first == name) entry.second = tensor;
    }
    return named;
  }

  void ExpectWeightsEqual(const Gpt2Weights& loaded, const Gpt2Weights& expected) {
    Named actual = loaded.Named(config_);
    Named wanted = expected.Named(config_);
    ASSERT_EQ(actual.size(), wanted.size());
    for (size_t i = 0; i < actual.size(); ++i) {
      EXPECT_TRUE(torch::equal(actual[i].second, wanted[i].second)) << actual[i].first;
    }
  }

  Gpt2Config config_;
  Gpt2Weights weights_;
};

TEST_F(CheckpointTest, SaveThenLoadIsBitExact) {
  const std::string dir = Save();
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(dir));
  EXPECT_EQ(checkpoint.dir, dir);
  EXPECT_EQ(checkpoint.config.ToJson(), config_.ToJson());
  EXPECT_EQ(checkpoint.stored_dtype, "F32");
  EXPECT_EQ(checkpoint.tokenizer->vocab_size(), 257);
  ExpectWeightsEqual(checkpoint.weights, weights_);
}

TEST_F(CheckpointTest, SavedFileHasNoPrefixAndNoLmHead) {
  ASSERT_OK_AND_ASSIGN(auto file, SafetensorsFile::Open(Save() + "/model.safetensors"));
  EXPECT_TRUE(file->Contains("h.0.attn.c_attn.weight"));
  EXPECT_FALSE(file->Contains("lm_head.weight"));
  EXPECT_EQ(file->entries().size(), NamedWeights().size());
}

TEST_F(CheckpointTest, ChecksumIdentifiesTheStoredBytes) {
  ASSERT_OK_AND_ASSIGN(Checkpoint a, LoadCheckpoint(Save()));
  ASSERT_OK_AND_ASSIGN(Checkpoint b, LoadCheckpoint(Save()));
  ASSERT_OK_AND_ASSIGN(Checkpoint half, LoadCheckpoint(Save(torch::kFloat16)));
  EXPECT_EQ(a.checksum.size(), 64u);
  EXPECT_EQ(a.checksum, b.checksum);
  EXPECT_NE(a.checksum, half.checksum);
}

TEST_F(CheckpointTest, AcceptsTransformerPrefixedNames) {
  Named prefixed = NamedWeights();
  for (auto& entry : prefixed) entry.first = "transformer." + entry.first;
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(SaveWithTensors(prefixed)));
  ExpectWeightsEqual(checkpoint.weights, weights_);
}

TEST_F(CheckpointTest, LoadsShardedCheckpointThroughIndex) {
  const std::string dir = Save();
  std::remove((dir + "/model.safetensors").c_str());
  Named all = NamedWeights();
  Named first(all.begin(), all.begin() + 10), second(all.begin() + 10, all.end());
  ASSERT_OK(WriteSafetensors(dir + "/model-00001-of-00002.safetensors", first));
  ASSERT_OK(WriteSafetensors(dir + "/model-00002-of-00002.safetensors", second));
  nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [name, tensor] : first) index["weight_map"][name] = "model-00001-of-00002.safetensors";
  for (const auto& [name, tensor] : second) index["weight_map"][name] = "model-00002-of-00002.safetensors";
  std::ofstream(dir + "/model.safetensors.index.json") << index.dump();
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(dir));
  ExpectWeightsEqual(checkpoint.weights, weights_);
}

TEST_F(CheckpointTest, AcceptsLmHeadTiedToEmbedding) {
  Named with_head = NamedWeights();
  with_head.emplace_back("lm_head.weight", weights_.wte.clone());
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(SaveWithTensors(with_head)));
  ExpectWeightsEqual(checkpoint.weights, weights_);
}

TEST_F(CheckpointTest, RejectsLmHeadThatDiffersFromEmbedding) {
  Named with_head = NamedWeights();
  with_head.emplace_back("lm_head.weight", torch::randn_like(weights_.wte));
  const std::string dir = SaveWithTensors(with_head);
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("loading tensors"), HasSubstr(dir + "/model.safetensors"),
                             HasSubstr("\"lm_head.weight\" differs from wte.weight"))));
}

TEST_F(CheckpointTest, IgnoresAttentionMaskBuffers) {
  Named with_buffers = NamedWeights();
  with_buffers.emplace_back("h.0.attn.bias", torch::ones({1, 1, 64, 64}));
  with_buffers.emplace_back("h.0.attn.masked_bias", torch::tensor(-1e4f));
  EXPECT_OK(LoadCheckpoint(SaveWithTensors(with_buffers)));
}

TEST_F(CheckpointTest, LoadsFloat16StoredWeights) {
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(Save(torch::kFloat16)));
  EXPECT_EQ(checkpoint.stored_dtype, "F16");
  EXPECT_EQ(checkpoint.weights.wte.scalar_type(), torch::kFloat32);
  ExpectWeightsEqual(checkpoint.weights,
                     weights_.To(torch::kCPU, torch::kFloat16).To(torch::kCPU, torch::kFloat32));
}

TEST_F(CheckpointTest, LoadsBFloat16StoredWeights) {
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(Save(torch::kBFloat16)));
  EXPECT_EQ(checkpoint.stored_dtype, "BF16");
  ExpectWeightsEqual(checkpoint.weights,
                     weights_.To(torch::kCPU, torch::kBFloat16).To(torch::kCPU, torch::kFloat32));
}

TEST_F(CheckpointTest, ConvertsToTheRequestedComputeDtype) {
  LoadOptions options;
  options.dtype = torch::kBFloat16;
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(Save(), options));
  EXPECT_EQ(checkpoint.stored_dtype, "F32");
  EXPECT_EQ(checkpoint.weights.layers[1].mlp_proj_weight.scalar_type(), torch::kBFloat16);
}

TEST_F(CheckpointTest, MissingDirectoryIsNotFound) {
  EXPECT_THAT(LoadCheckpoint("/nonexistent/romed-model"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/romed-model")));
}

TEST_F(CheckpointTest, MissingConfigIsNotFoundInConfigPhase) {
  const std::string dir = Save();
  std::remove((dir + "/config.json").c_str());
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("loading config"), HasSubstr(dir + "/config.json"))));
}

TEST_F(CheckpointTest, CorruptConfigIsDataLoss) {
  const std::string dir = Save();
  std::ofstream(dir + "/config.json") << "{\"n_embd\": 32,";
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("loading config"), HasSubstr(dir + "/config.json"))));
}

TEST_F(CheckpointTest, InconsistentConfigIsInvalidArgument) {
  const std::string dir = Save();
  Gpt2Config bad = config_;
  bad.n_head = 5;
  std::ofstream(dir + "/config.json") << bad.ToJson();
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(dir + "/config.json"), HasSubstr("n_head"))));
}

TEST_F(CheckpointTest, MissingVocabIsNotFoundInTokenizerPhase) {
  const std::string dir = Save();
  std::remove((dir + "/vocab.json").c_str());
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("loading tokenizer"), HasSubstr("vocab.json"))));
}

TEST_F(CheckpointTest, VocabularyLargerThanEmbeddingIsInvalidArgument) {
  const std::string dir = Save();
  Gpt2Config small = config_;
  small.vocab_size = 200;
  std::ofstream(dir + "/config.json") << small.ToJson();
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("loading tokenizer"), HasSubstr(dir + "/vocab.json"),
                             HasSubstr("257"), HasSubstr("vocab_size 200"))));
}

TEST_F(CheckpointTest, MissingWeightsFileIsNotFound) {
  const std::string dir = Save();
  std::remove((dir + "/model.safetensors").c_str());
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("loading tensors"), HasSubstr("model.safetensors"))));
}

TEST_F(CheckpointTest, TruncatedWeightsFileIsDataLoss) {
  const std::string dir = Save();
  std::filesystem::resize_file(dir + "/model.safetensors", 1000);
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("loading tensors"), HasSubstr(dir + "/model.safetensors"))));
}

TEST_F(CheckpointTest, MissingTensorIsNamed) {
  const std::string dir = SaveWithTensors(Without(NamedWeights(), "h.1.ln_2.bias"));
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("loading tensors"), HasSubstr(dir + "/model.safetensors"),
                             HasSubstr("\"h.1.ln_2.bias\" is missing"))));
}

TEST_F(CheckpointTest, MisShapedTensorNamesBothShapesAndTheLayout) {
  const std::string name = "h.1.mlp.c_proj.weight";
  const std::string dir = SaveWithTensors(
      Replacing(NamedWeights(), name, weights_.layers[1].mlp_proj_weight.t().contiguous()));
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "loading tensors: " + dir + "/model.safetensors: tensor \"" + name +
                           "\" has shape [32,128], expected [128,32] (Conv1D layout [in, out])"));
}

TEST_F(CheckpointTest, IntegerTensorIsInvalidArgument) {
  const std::string dir =
      SaveWithTensors(Replacing(NamedWeights(), "ln_f.bias", torch::zeros({32}, torch::kInt64)));
  EXPECT_THAT(LoadCheckpoint(dir),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("\"ln_f.bias\""), HasSubstr("I64"))));
}

}  // namespace
}  // namespace romed
