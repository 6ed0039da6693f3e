#include "server/model/gpt2_config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "server/model/gpt2_weights.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kHfGpt2ConfigJson[] = R"({
  "activation_function": "gelu_new",
  "architectures": ["GPT2LMHeadModel"],
  "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
  "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
  "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
  "resid_pdrop": 0.1, "summary_activation": null, "summary_first_dropout": 0.1,
  "summary_proj_to_labels": true, "summary_type": "cls_index", "summary_use_proj": true,
  "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
  "vocab_size": 50257
})";

bool SameShape(const Gpt2Config& a, const Gpt2Config& b) {
  return a.vocab_size == b.vocab_size && a.n_positions == b.n_positions &&
         a.n_embd == b.n_embd && a.n_layer == b.n_layer && a.n_head == b.n_head &&
         a.n_inner == b.n_inner && a.layer_norm_epsilon == b.layer_norm_epsilon &&
         a.bos_token_id == b.bos_token_id && a.eos_token_id == b.eos_token_id &&
         a.activation_function == b.activation_function;
}

TEST(Gpt2ConfigTest, ParsesHuggingFaceGpt2Config) {
  ASSERT_OK_AND_ASSIGN(Gpt2Config config, Gpt2Config::FromJson(kHfGpt2ConfigJson));
  ASSERT_OK_AND_ASSIGN(Gpt2Config preset, Gpt2Config::Preset("gpt2"));
  EXPECT_TRUE(SameShape(config, preset));
  EXPECT_EQ(config.mlp_width(), 3072);
  EXPECT_EQ(config.head_width(), 64);
}

TEST(Gpt2ConfigTest, RoundTripsThroughJson) {
  Gpt2Config config = testing::TinyConfig();
  config.n_inner = 96;
  config.layer_norm_epsilon = 1e-6;
  ASSERT_OK_AND_ASSIGN(Gpt2Config parsed, Gpt2Config::FromJson(config.ToJson()));
  EXPECT_TRUE(SameShape(config, parsed));
}

TEST(Gpt2ConfigTest, WritesWhatTransformersExpects) {
  nlohmann::json json = nlohmann::json::parse(testing::TinyConfig().ToJson());
  EXPECT_EQ(json["model_type"], "gpt2");
  EXPECT_EQ(json["architectures"], nlohmann::json::array({"GPT2LMHeadModel"}));
  EXPECT_EQ(json["n_ctx"], json["n_positions"]);
  EXPECT_TRUE(json["n_inner"].is_null());
  EXPECT_EQ(json["vocab_size"], 257);
}

TEST(Gpt2ConfigTest, PresetsHaveThePublishedShapes) {
  struct Expected {
    const char* name;
    int64_t n_embd, n_layer, n_head;
  };
  for (const Expected& e : {Expected{"gpt2", 768, 12, 12}, Expected{"gpt2-medium", 1024, 24, 16},
                            Expected{"gpt2-large", 1280, 36, 20},
                            Expected{"gpt2-xl", 1600, 48, 25}}) {
    SCOPED_TRACE(e.name);
    ASSERT_OK_AND_ASSIGN(Gpt2Config config, Gpt2Config::Preset(e.name));
    EXPECT_EQ(config.n_embd, e.n_embd);
    EXPECT_EQ(config.n_layer, e.n_layer);
    EXPECT_EQ(config.n_head, e.n_head);
    EXPECT_EQ(config.vocab_size, 50257);
    EXPECT_EQ(config.n_positions, 1024);
    EXPECT_OK(config.Validate());
  }
}

TEST(Gpt2ConfigTest, UnknownPresetIsNotFound) {
  EXPECT_THAT(Gpt2Config::Preset("gpt3"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("gpt3")));
}

TEST(Gpt2ConfigTest, MissingRequiredKeyIsNamed) {
  EXPECT_THAT(Gpt2Config::FromJson(R"({"vocab_size": 5, "n_positions": 8, "n_layer": 1,
                                       "n_head": 1})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"n_embd\"")));
}

TEST(Gpt2ConfigTest, WrongTypeIsNamed) {
  Gpt2Config config = testing::TinyConfig();
  nlohmann::json json = nlohmann::json::parse(config.ToJson());
  json["n_layer"] = "two";
  EXPECT_THAT(Gpt2Config::FromJson(json.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\"n_layer\"")));
}

TEST(Gpt2ConfigTest, InvalidJsonIsRejected) {
  EXPECT_THAT(Gpt2Config::FromJson("{\"n_embd\": "),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("JSON")));
}

TEST(Gpt2ConfigTest, HeadsMustDivideWidth) {
  Gpt2Config config = testing::TinyConfig();
  config.n_head = 5;
  EXPECT_THAT(config.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n_head")));
}

TEST(Gpt2ConfigTest, OnlyGeluNewIsSupported) {
  Gpt2Config config = testing::TinyConfig();
  config.activation_function = "relu";
  EXPECT_THAT(config.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("relu")));
}

TEST(Gpt2ConfigTest, SizesMustBePositive) {
  Gpt2Config config = testing::TinyConfig();
  config.n_layer = 0;
  EXPECT_THAT(config.Validate(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("n_layer")));
}

// Gpt2Weights lives beside its config; its table is tested here too.

TEST(Gpt2WeightsTest, TableUsesHuggingFaceNamesAndConv1DShapes) {
  Gpt2Config config = testing::TinyConfig();
  Gpt2Weights weights;
  weights.Allocate(config);
  std::vector<Gpt2Weights::Entry> table = weights.Table(config);
  ASSERT_EQ(table.size(), 4u + 12u * 2u);
  EXPECT_EQ(table.front().name, "wte.weight");
  EXPECT_EQ(table.front().shape, (std::vector<int64_t>{257, 32}));
  EXPECT_EQ(table[4].name, "h.0.attn.c_attn.weight");
  EXPECT_EQ(table[4].shape, (std::vector<int64_t>{32, 96}));
  EXPECT_TRUE(table[4].conv1d);
  EXPECT_EQ(table[12].name, "h.0.mlp.c_proj.weight");
  EXPECT_EQ(table[12].shape, (std::vector<int64_t>{128, 32}));
  EXPECT_EQ(table.back().name, "ln_f.bias");
}

TEST(Gpt2WeightsTest, RandomIsValidAndDeterministicPerSeed) {
  Gpt2Config config = testing::TinyConfig();
  Gpt2Weights a = Gpt2Weights::Random(config, 7);
  Gpt2Weights b = Gpt2Weights::Random(config, 7);
  Gpt2Weights c = Gpt2Weights::Random(config, 8);
  EXPECT_OK(a.Validate(config));
  EXPECT_TRUE(torch::equal(a.wte, b.wte));
  EXPECT_TRUE(torch::equal(a.layers[1].mlp_proj_weight, b.layers[1].mlp_proj_weight));
  EXPECT_FALSE(torch::equal(a.wte, c.wte));
  EXPECT_EQ(a.NumParameters(), 257 * 32 + 64 * 32 + 2 * (12 * 32 * 32 + 13 * 32) + 2 * 32);
}

TEST(Gpt2WeightsTest, RandomFollowsGpt2Initialisation) {
  Gpt2Config config = testing::TinyConfig();
  config.n_embd = 256;
  config.n_head = 4;
  Gpt2Weights weights = Gpt2Weights::Random(config, 1);
  EXPECT_NEAR(weights.layers[0].mlp_fc_weight.std().item<double>(), 0.02, 0.001);
  EXPECT_NEAR(weights.layers[0].mlp_proj_weight.std().item<double>(), 0.02 / 2.0, 0.001);
  EXPECT_TRUE(torch::equal(weights.ln_f_weight, torch::ones({256})));
  EXPECT_TRUE(torch::equal(weights.layers[1].attn_bias, torch::zeros({768})));
}

TEST(Gpt2WeightsTest, ValidateNamesMisShapedTensor) {
  Gpt2Config config = testing::TinyConfig();
  Gpt2Weights weights = Gpt2Weights::Random(config, 1);
  weights.layers[1].mlp_proj_weight = weights.layers[1].mlp_proj_weight.t();
  EXPECT_THAT(weights.Validate(config),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"h.1.mlp.c_proj.weight\" has shape [32,128], "
                                 "expected [128,32] (Conv1D layout [in, out])")));
}

TEST(Gpt2WeightsTest, ToConvertsEveryTensor) {
  Gpt2Config config = testing::TinyConfig();
  Gpt2Weights half = Gpt2Weights::Random(config, 1).To(torch::kCPU, torch::kBFloat16);
  EXPECT_OK(half.Validate(config));
  EXPECT_EQ(half.layers[1].ln_2_bias.scalar_type(), torch::kBFloat16);
}

}  // namespace
}  // namespace romed
