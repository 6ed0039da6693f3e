// Gpt2Model: golden logits against an independent implementation, KV-cached
// decoding, padding, hook points, rank-one edits and gradients.
#include "server/model/gpt2_model.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/model/blas_info.h"
#include "server/model/checkpoint.h"
#include "tests/model/reference_gpt2.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

using ::romed::testing::ReferenceGpt2;

// Four layers so hooks, edits and caches are exercised past the first block.
Gpt2Config TestConfig() {
  Gpt2Config config;
  config.vocab_size = 257;
  config.n_positions = 64;
  config.n_embd = 32;
  config.n_layer = 4;
  config.n_head = 4;
  return config;
}

// Random GPT-2 weights with every tensor (biases and LayerNorm gains
// included) perturbed, so no term of the forward pass is trivially 0 or 1.
Gpt2Weights PerturbedWeights(const Gpt2Config& config, uint64_t seed) {
  Gpt2Weights weights = Gpt2Weights::Random(config, seed);
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (torch::Tensor& t : weights.Parameters()) t.add_(torch::randn_like(t) * 0.1);
  return weights;
}

torch::Tensor Tokens(const std::vector<std::vector<int64_t>>& rows) {
  std::vector<torch::Tensor> list;
  for (const auto& row : rows) list.push_back(torch::tensor(row, torch::kInt64));
  return torch::stack(list);
}

// Left-pads `rows` to one length: tokens [B, T] (padding id 0) and mask [B, T].
ForwardInput LeftPadded(const std::vector<std::vector<int64_t>>& rows) {
  int64_t length = 0;
  for (const auto& row : rows) length = std::max<int64_t>(length, row.size());
  torch::Tensor tokens = torch::zeros({static_cast<int64_t>(rows.size()), length}, torch::kInt64);
  torch::Tensor mask = torch::zeros_like(tokens);
  for (size_t b = 0; b < rows.size(); ++b) {
    int64_t pad = length - static_cast<int64_t>(rows[b].size());
    tokens[b].narrow(0, pad, rows[b].size()).copy_(torch::tensor(rows[b], torch::kInt64));
    mask[b].narrow(0, pad, rows[b].size()).fill_(1);
  }
  return {tokens, mask};
}

double MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

std::vector<int64_t> RandomIds(int64_t length, int64_t vocab, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor ids = torch::randint(vocab, {length}, torch::kInt64);
  return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + length);
}

class Gpt2ModelTest : public ::testing::Test {
 protected:
  // Writes the perturbed weights as a Hugging Face checkpoint and loads it
  // back, so the golden test covers the loader's layout too.
  static void SetUpTestSuite() {
    config_ = new Gpt2Config(TestConfig());
    dir_ = new std::string(testing::MakeTempDir("gpt2_model_test"));
    absl::Status saved =
        SaveCheckpoint(*dir_, *config_, PerturbedWeights(*config_, 7),
                       testing::ByteLevelVocabJson(), testing::ByteLevelMergesTxt());
    ASSERT_TRUE(saved.ok()) << saved;
    absl::StatusOr<Checkpoint> loaded = LoadCheckpoint(*dir_);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    model_ = new Gpt2Model(loaded->config, loaded->weights);
  }
  static void TearDownTestSuite() {
    delete model_;
    delete dir_;
    delete config_;
  }
  void SetUp() override { ASSERT_NE(model_, nullptr) << "checkpoint did not load"; }

  static torch::Tensor Logits(const torch::Tensor& tokens, const ForwardOptions& options = {}) {
    return model_->Forward({tokens, torch::Tensor()}, options);
  }

  static Gpt2Config* config_;
  static std::string* dir_;  // the checkpoint directory
  static Gpt2Model* model_;
};
Gpt2Config* Gpt2ModelTest::config_ = nullptr;
std::string* Gpt2ModelTest::dir_ = nullptr;
Gpt2Model* Gpt2ModelTest::model_ = nullptr;

TEST_F(Gpt2ModelTest, LogitsMatchIndependentReference) {
  ReferenceGpt2 reference = ReferenceGpt2::LoadDir(*dir_);
  std::vector<std::vector<int64_t>> rows = {RandomIds(23, 257, 1), RandomIds(23, 257, 2)};
  torch::Tensor logits = Logits(Tokens(rows));
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 23, 257}));
  double max_diff = 0;
  for (size_t b = 0; b < rows.size(); ++b) {
    auto expected = reference.Logits(rows[b]);
    for (size_t t = 0; t < expected.size(); ++t) {
      max_diff = std::max(max_diff, MaxAbsDiff(logits[b][t], torch::tensor(expected[t])));
    }
  }
  std::printf("max |logit - reference| = %.3g (logit scale %.3g)\n", max_diff,
              logits.abs().max().item<double>());
  EXPECT_LT(max_diff, 1e-4);
}

TEST(Gpt2ModelGoldenTest, TinyCheckpointMatchesIndependentReference) {
  Gpt2Config config = testing::TinyConfig();
  config.n_layer = 3;
  std::string dir = testing::WriteTinyCheckpoint(config, 11);
  ASSERT_FALSE(dir.empty());
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(dir));
  Gpt2Model model(checkpoint.config, checkpoint.weights);
  std::vector<int64_t> ids = RandomIds(30, 257, 31);
  torch::Tensor logits = model.Forward({Tokens({ids}), {}});
  auto expected = ReferenceGpt2::LoadDir(dir).Logits(ids);
  double max_diff = 0;
  for (size_t t = 0; t < ids.size(); ++t) {
    max_diff = std::max(max_diff, MaxAbsDiff(logits[0][t], torch::tensor(expected[t])));
  }
  std::printf("tiny checkpoint: max |logit - reference| = %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-4);
}

// Forwards of 1..8 token rows run the few-row decode kernels instead of BLAS
// (the LM head of 1 row runs BLAS's GEMV). A width that is not a multiple of 8 (C 36, M 144)
// exercises their scalar tails.
TEST(Gpt2ModelDecodeKernelTest, FewRowForwardsMatchIndependentReference) {
  Gpt2Config config = testing::TinyConfig();
  config.n_embd = 36;
  config.n_head = 4;
  config.n_layer = 2;
  const std::string dir = testing::MakeTempDir("decode_kernel_test");
  ASSERT_OK(SaveCheckpoint(dir, config, PerturbedWeights(config, 5), testing::ByteLevelVocabJson(),
                           testing::ByteLevelMergesTxt()));
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(dir));
  Gpt2Model model(checkpoint.config, checkpoint.weights);
  ReferenceGpt2 reference = ReferenceGpt2::LoadDir(dir);
  for (int64_t rows = 1; rows <= 8; ++rows) {
    std::vector<int64_t> ids = RandomIds(rows, 257, 40 + rows);
    torch::Tensor tokens = torch::tensor(ids, torch::kInt64).view({rows, 1});
    torch::Tensor logits = model.Forward({tokens, {}});  // [rows, 1, V]
    double max_diff = 0;
    for (int64_t r = 0; r < rows; ++r) {
      auto expected = reference.Logits({ids[r]});
      max_diff = std::max(max_diff, MaxAbsDiff(logits[r][0], torch::tensor(expected[0])));
    }
    EXPECT_LT(max_diff, 1e-4) << rows << " rows";
  }
}

// Matrices of >= 2^18 weights split their rows among threads (one partial
// sum per thread, added at the end) and the LM head splits the vocabulary:
// 1..8 rows through the kernels must equal each row run alone through
// OpenBLAS (ROMED_BLAS_DECODE=1: GEMV, independent code). C = 516 is not a
// multiple of 8 or of the per-thread row blocks, so every tail runs;
// V = 1100 makes the head parallel.
TEST(Gpt2ModelDecodeKernelTest, ThreadSplitFewRowForwardsMatchBlas) {
  Gpt2Config config = TestConfig();  // 4 heads
  config.vocab_size = 1100;
  config.n_embd = 516;
  config.n_layer = 2;
  const int saved_threads = at::get_num_threads();
  at::set_num_threads(2);
  Gpt2Model model(config, PerturbedWeights(config, 8));
  for (int64_t rows = 1; rows <= 8; ++rows) {
    std::vector<int64_t> ids = RandomIds(rows, config.vocab_size, 60 + rows);
    torch::Tensor tokens = torch::tensor(ids, torch::kInt64).view({rows, 1});
    torch::Tensor together = model.Forward({tokens, {}});  // [rows, 1, V]
    ASSERT_EQ(setenv("ROMED_BLAS_DECODE", "1", 1), 0);
    double max_diff = 0, scale = 0;
    for (int64_t r = 0; r < rows; ++r) {
      torch::Tensor alone = model.Forward({tokens.narrow(0, r, 1), {}});
      max_diff = std::max(max_diff, MaxAbsDiff(together[r][0], alone[0][0]));
      scale = std::max(scale, alone.abs().max().item<double>());
    }
    ASSERT_EQ(unsetenv("ROMED_BLAS_DECODE"), 0);
    EXPECT_GT(scale, 1.0) << "logits too small to compare";
    EXPECT_LT(max_diff, 1e-4 * scale) << rows << " rows";
  }
  at::set_num_threads(saved_threads);
}

TEST_F(Gpt2ModelTest, LastPositionLogitsAreTheLastRowOfFullLogits) {
  torch::Tensor tokens = Tokens({RandomIds(9, 257, 3)});
  ForwardOptions options;
  options.last_position_logits = true;
  torch::Tensor last = Logits(tokens, options);
  ASSERT_EQ(last.sizes(), (std::vector<int64_t>{1, 1, 257}));
  EXPECT_LT(MaxAbsDiff(last[0][0], Logits(tokens)[0][8]), 1e-5);
}

TEST_F(Gpt2ModelTest, CachedDecodingEqualsFullRecomputation) {
  std::vector<int64_t> ids = RandomIds(20, 257, 4);
  torch::Tensor tokens = Tokens({ids});
  torch::Tensor full = Logits(tokens);
  KvCache cache;
  ForwardOptions options;
  options.cache = &cache;
  torch::Tensor prefill = Logits(tokens.narrow(1, 0, 6), options);
  EXPECT_LT(MaxAbsDiff(prefill[0], full[0].narrow(0, 0, 6)), 1e-5);
  for (int64_t t = 6; t < 20; ++t) {
    torch::Tensor step = Logits(tokens.narrow(1, t, 1), options);
    EXPECT_LT(MaxAbsDiff(step[0][0], full[0][t]), 1e-5) << "position " << t;
  }
  EXPECT_EQ(cache.length(), 20);
  EXPECT_EQ(cache.next_position.item<int64_t>(), 20);
}

TEST_F(Gpt2ModelTest, CachedDecodingOfALeftPaddedBatchEqualsEachRowAlone) {
  std::vector<std::vector<int64_t>> prompts = {RandomIds(3, 257, 5), RandomIds(8, 257, 6)};
  std::vector<int64_t> next = {17, 42};
  KvCache cache;
  ForwardOptions options;
  options.cache = &cache;
  model_->Forward(LeftPadded(prompts), options);
  torch::Tensor step = Logits(torch::tensor(next, torch::kInt64).view({2, 1}), options);
  for (int b = 0; b < 2; ++b) {
    std::vector<int64_t> alone = prompts[b];
    alone.push_back(next[b]);
    torch::Tensor expected = Logits(Tokens({alone}))[0][alone.size() - 1];
    EXPECT_LT(MaxAbsDiff(step[b][0], expected), 1e-5) << "row " << b;
  }
  // Dropping row 0 keeps row 1 decoding as before.
  cache.SelectRows(torch::tensor({1}, torch::kInt64));
  torch::Tensor after = Logits(torch::tensor({{7}}, torch::kInt64), options);
  std::vector<int64_t> alone = prompts[1];
  alone.insert(alone.end(), {next[1], 7});
  EXPECT_LT(MaxAbsDiff(after[0][0], Logits(Tokens({alone}))[0][alone.size() - 1]), 1e-5);
}

TEST_F(Gpt2ModelTest, LeftPaddedBatchEqualsEachRowAlone) {
  std::vector<std::vector<int64_t>> rows = {RandomIds(3, 257, 7), RandomIds(11, 257, 8),
                                            RandomIds(7, 257, 9)};
  torch::Tensor batch = model_->Forward(LeftPadded(rows));
  for (size_t b = 0; b < rows.size(); ++b) {
    int64_t n = rows[b].size(), pad = 11 - n;
    torch::Tensor alone = Logits(Tokens({rows[b]}))[0];
    EXPECT_LT(MaxAbsDiff(batch[b].narrow(0, pad, n), alone), 1e-5) << "row " << b;
  }
  EXPECT_TRUE(batch.isfinite().all().item<bool>()) << "padding positions must stay finite";
}

TEST_F(Gpt2ModelTest, AnAllPaddingRowStaysFinite) {
  ForwardInput input = LeftPadded({RandomIds(4, 257, 10), {}});
  torch::Tensor logits = model_->Forward(input);
  EXPECT_TRUE(logits.isfinite().all().item<bool>());
}

TEST_F(Gpt2ModelTest, CaptureAtEveryPointHasTheDocumentedShape) {
  torch::Tensor tokens = Tokens({RandomIds(5, 257, 11), RandomIds(5, 257, 12)});
  Interventions interventions;
  interventions.Capture({HookPoint::kEmbed, 0});
  const std::vector<HookPoint> per_layer = {HookPoint::kResidPre, HookPoint::kAttnOut,
                                            HookPoint::kMlpIn, HookPoint::kMlpOut,
                                            HookPoint::kResidPost};
  for (int64_t l = 0; l < config_->n_layer; ++l) {
    for (HookPoint p : per_layer) interventions.Capture({p, l});
  }
  ForwardOptions options;
  options.interventions = &interventions;
  Logits(tokens, options);
  torch::Tensor embed = interventions.Captured({HookPoint::kEmbed, 0});
  ASSERT_TRUE(embed.defined());
  EXPECT_TRUE(torch::equal(embed, model_->weights().wte.index({tokens})));
  for (int64_t l = 0; l < config_->n_layer; ++l) {
    for (HookPoint p : per_layer) {
      torch::Tensor t = interventions.Captured({p, l});
      ASSERT_TRUE(t.defined()) << HookPointName(p) << " " << l;
      int64_t width = p == HookPoint::kMlpIn ? config_->mlp_width() : config_->n_embd;
      EXPECT_EQ(t.sizes(), (std::vector<int64_t>{2, 5, width})) << HookPointName(p) << " " << l;
    }
  }
  // The residual stream adds up: resid_post = resid_pre + attn_out + mlp_out.
  torch::Tensor sum = interventions.Captured({HookPoint::kResidPre, 2}) +
                      interventions.Captured({HookPoint::kAttnOut, 2}) +
                      interventions.Captured({HookPoint::kMlpOut, 2});
  EXPECT_LT(MaxAbsDiff(sum, interventions.Captured({HookPoint::kResidPost, 2})), 1e-5);
}

TEST_F(Gpt2ModelTest, StopAfterLayerReturnsNoLogitsButCaptures) {
  Interventions interventions;
  interventions.Capture({HookPoint::kMlpIn, 1});
  interventions.Capture({HookPoint::kMlpIn, 2});
  ForwardOptions options;
  options.interventions = &interventions;
  options.stop_after_layer = 1;
  EXPECT_FALSE(Logits(Tokens({RandomIds(4, 257, 13)}), options).defined());
  EXPECT_TRUE(interventions.Captured({HookPoint::kMlpIn, 1}).defined());
  EXPECT_FALSE(interventions.Captured({HookPoint::kMlpIn, 2}).defined());
}

// A forward that starts at block k from block k-1's output equals the full
// forward, alone and on a KV cache of the first positions (the cache only
// needs layers >= k).
TEST_F(Gpt2ModelTest, StartingAtALayerFromItsInputEqualsTheFullForward) {
  torch::Tensor tokens = Tokens({RandomIds(9, 257, 16), RandomIds(9, 257, 17)});
  Interventions capture;
  capture.Capture({HookPoint::kResidPost, 1});
  ForwardOptions full_options;
  full_options.interventions = &capture;
  torch::Tensor full = Logits(tokens, full_options);
  torch::Tensor hidden = capture.Captured({HookPoint::kResidPost, 1});  // [2, 9, C]

  ForwardOptions start;
  start.start_layer = 2;
  start.start_hidden = hidden;
  EXPECT_LT(MaxAbsDiff(Logits(tokens, start), full), 1e-5);

  KvCache prefix;
  ForwardOptions prefill;
  prefill.cache = &prefix;
  Logits(tokens.narrow(1, 0, 4), prefill);
  KvCache upper;  // only layers >= 2 of the prefix
  upper.keys.resize(prefix.keys.size());
  upper.values.resize(prefix.values.size());
  for (size_t l = 2; l < prefix.keys.size(); ++l) {
    upper.keys[l] = prefix.keys[l];
    upper.values[l] = prefix.values[l];
  }
  upper.mask = prefix.mask;
  upper.next_position = prefix.next_position;
  start.cache = &upper;
  start.start_hidden = hidden.narrow(1, 4, 5);
  EXPECT_LT(MaxAbsDiff(Logits(tokens.narrow(1, 4, 5), start), full.narrow(1, 4, 5)), 1e-5);

  // Starting from a different state changes the logits (the input is used;
  // not a constant shift, which the LayerNorms remove).
  ForwardOptions shifted;
  shifted.start_layer = 2;
  torch::manual_seed(3);
  shifted.start_hidden = hidden + torch::randn_like(hidden);
  EXPECT_GT(MaxAbsDiff(Logits(tokens, shifted), full), 1e-3);
  // Wrong shapes and ranges are errors, not crashes.
  shifted.start_hidden = hidden.narrow(1, 0, 3);
  EXPECT_THROW(Logits(tokens, shifted), c10::Error);
  shifted.start_layer = config_->n_layer;
  EXPECT_THROW(Logits(tokens, shifted), c10::Error);
  ForwardOptions stray;
  stray.start_hidden = hidden;
  EXPECT_THROW(Logits(tokens, stray), c10::Error);
}

TEST_F(Gpt2ModelTest, ReplacingResidPostWithItsCaptureIsANoOp) {
  torch::Tensor tokens = Tokens({RandomIds(6, 257, 14)});
  Interventions capture;
  capture.Capture({HookPoint::kResidPost, 1});
  ForwardOptions options;
  options.interventions = &capture;
  torch::Tensor clean = Logits(tokens, options);
  torch::Tensor state = capture.Captured({HookPoint::kResidPost, 1});

  Interventions replace;
  replace.Replace({HookPoint::kResidPost, 1}, {{0, 2}, {0, 4}},
                  state[0].index({torch::tensor({2, 4}, torch::kInt64)}));
  options.interventions = &replace;
  EXPECT_TRUE(torch::equal(Logits(tokens, options), clean));
}

TEST_F(Gpt2ModelTest, AddingAtMlpOutChangesLogitsOnlyFromThatPositionOn) {
  torch::Tensor tokens = Tokens({RandomIds(8, 257, 15)});
  torch::Tensor clean = Logits(tokens);
  // A random direction: a constant vector would vanish in the next LayerNorm.
  torch::manual_seed(1);
  Interventions add;
  add.Add({HookPoint::kMlpOut, 1}, {{0, 4}}, torch::randn({config_->n_embd}));
  ForwardOptions options;
  options.interventions = &add;
  torch::Tensor edited = Logits(tokens, options);
  EXPECT_TRUE(torch::equal(edited[0].narrow(0, 0, 4), clean[0].narrow(0, 0, 4)));
  for (int64_t t = 4; t < 8; ++t) {
    EXPECT_GT(MaxAbsDiff(edited[0][t], clean[0][t]), 1e-3) << "position " << t;
  }
}

TEST_F(Gpt2ModelTest, EmbedNoiseAtSubjectPositionsChangesTheRun) {
  torch::Tensor tokens = Tokens({RandomIds(6, 257, 16)});
  torch::manual_seed(0);
  Interventions noise;
  noise.Add({HookPoint::kEmbed, 0}, {{0, 1}, {0, 2}}, torch::randn({2, config_->n_embd}) * 0.3);
  ForwardOptions options;
  options.interventions = &noise;
  torch::Tensor clean = Logits(tokens), noisy = Logits(tokens, options);
  EXPECT_TRUE(torch::equal(noisy[0][0], clean[0][0]));
  EXPECT_GT(MaxAbsDiff(noisy[0][5], clean[0][5]), 1e-3);
}

TEST_F(Gpt2ModelTest, AddWithoutSitesReachesEveryRowAndPosition) {
  torch::Tensor tokens = Tokens({RandomIds(3, 257, 17), RandomIds(3, 257, 18)});
  Interventions everywhere, each;
  torch::manual_seed(2);
  torch::Tensor delta = torch::randn({config_->n_embd});
  everywhere.Add({HookPoint::kResidPre, 2}, {}, delta);
  std::vector<Site> all;
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t t = 0; t < 3; ++t) all.push_back({b, t});
  }
  each.Add({HookPoint::kResidPre, 2}, all, delta);
  ForwardOptions a, b;
  a.interventions = &everywhere;
  b.interventions = &each;
  EXPECT_LT(MaxAbsDiff(Logits(tokens, a), Logits(tokens, b)), 1e-6);
}

// --- Rank-one edits ---------------------------------------------------------

RankOneDelta RandomDelta(const Gpt2Config& config, int64_t layer, uint64_t seed) {
  torch::manual_seed(seed);
  return {layer, torch::randn({config.mlp_width()}) * 0.1, torch::randn({config.n_embd}) * 0.5};
}

// The base weights with every delta merged: W_proj [M, C] += u lambda^T.
Gpt2Model MergedModel(const Gpt2Config& config, const Gpt2Weights& base,
                      const std::vector<RankOneDelta>& deltas) {
  Gpt2Weights merged = base.To(torch::kCPU, torch::kFloat32);
  for (const RankOneDelta& d : deltas) {
    torch::Tensor& w = merged.layers[d.layer].mlp_proj_weight;
    w = w + torch::outer(d.u, d.lambda);
  }
  return Gpt2Model(config, std::move(merged));
}

TEST_F(Gpt2ModelTest, RankOneDeltasEqualMergedWeights) {
  std::vector<RankOneDelta> deltas = {RandomDelta(*config_, 1, 1), RandomDelta(*config_, 1, 2),
                                      RandomDelta(*config_, 3, 3)};
  RowEdits edits{{EditView::Build(deltas, torch::kCPU, torch::kFloat32)}, {}};
  ForwardOptions options;
  options.edits = &edits;
  torch::Tensor tokens = Tokens({RandomIds(10, 257, 19), RandomIds(10, 257, 20)});
  torch::Tensor factored = Logits(tokens, options);
  torch::Tensor merged = MergedModel(*config_, model_->weights(), deltas).Forward({tokens, {}});
  double diff = MaxAbsDiff(factored, merged);
  std::printf("max |factored - merged| = %.3g, edit moved logits by %.3g\n", diff,
              MaxAbsDiff(factored, Logits(tokens)));
  EXPECT_LT(diff, 1e-5);
  EXPECT_GT(MaxAbsDiff(factored, Logits(tokens)), 1e-2);
}

TEST_F(Gpt2ModelTest, RowsMixingViewsMatchTheirOwnModelsAndBaseRowsAreExact) {
  std::vector<RankOneDelta> first = {RandomDelta(*config_, 2, 4)};
  std::vector<RankOneDelta> second = {RandomDelta(*config_, 0, 5)};
  RowEdits edits{{EditView::Build(first, torch::kCPU, torch::kFloat32),
                  EditView::Build(second, torch::kCPU, torch::kFloat32)},
                 {0, -1, 1}};
  ForwardOptions options;
  options.edits = &edits;
  std::vector<int64_t> ids = RandomIds(7, 257, 21);
  torch::Tensor tokens = Tokens({ids, ids, ids});
  torch::Tensor mixed = Logits(tokens, options);
  torch::Tensor base = Logits(tokens);
  EXPECT_TRUE(torch::equal(mixed[1], base[1]));
  EXPECT_LT(MaxAbsDiff(mixed[0], MergedModel(*config_, model_->weights(), first)
                                     .Forward({tokens, {}})[0]), 1e-5);
  EXPECT_LT(MaxAbsDiff(mixed[2], MergedModel(*config_, model_->weights(), second)
                                     .Forward({tokens, {}})[2]), 1e-5);
}

TEST_F(Gpt2ModelTest, AnEmptyEditViewEqualsNoEditsBitForBit) {
  RowEdits edits{{EditView::Build({}, torch::kCPU, torch::kFloat32)}, {}};
  ForwardOptions options;
  options.edits = &edits;
  torch::Tensor tokens = Tokens({RandomIds(6, 257, 22)});
  EXPECT_TRUE(torch::equal(Logits(tokens, options), Logits(tokens)));
}

// --- Gradients --------------------------------------------------------------

TEST(Gpt2ModelGradientTest, LossBackwardReachesTheWeights) {
  Gpt2Config config = TestConfig();
  Gpt2Weights weights = PerturbedWeights(config, 3);
  for (torch::Tensor& t : weights.Parameters()) t.requires_grad_(true);
  Gpt2Model model(config, weights);
  torch::Tensor tokens = Tokens({RandomIds(8, 257, 23)});
  torch::Tensor logits = model.Forward({tokens, {}});
  torch::Tensor loss = torch::nn::functional::cross_entropy(
      logits[0].narrow(0, 0, 7), tokens[0].narrow(0, 1, 7));
  loss.backward();
  ASSERT_TRUE(model.weights().wte.grad().defined());
  EXPECT_GT(model.weights().wte.grad().abs().sum().item<double>(), 0);
  ASSERT_TRUE(model.weights().layers[1].mlp_fc_weight.grad().defined());
  EXPECT_GT(model.weights().layers[1].mlp_fc_weight.grad().abs().sum().item<double>(), 0);
}

TEST_F(Gpt2ModelTest, ADeltaAddedAtMlpOutReceivesAGradient) {
  torch::Tensor delta = torch::zeros({config_->n_embd}, torch::requires_grad());
  Interventions add;
  add.Add({HookPoint::kMlpOut, 2}, {{0, 3}}, delta);
  ForwardOptions options;
  options.interventions = &add;
  torch::Tensor logits = Logits(Tokens({RandomIds(6, 257, 24)}), options);
  torch::log_softmax(logits[0][5], -1)[65].backward();
  ASSERT_TRUE(delta.grad().defined());
  EXPECT_GT(delta.grad().abs().sum().item<double>(), 0);
}

TEST(BlasInfoTest, NamesTheLibraryProvidingSgemm) {
  std::string blas = DescribeBlas();
  std::printf("BLAS: %s\n", blas.c_str());
  EXPECT_THAT(blas, ::testing::HasSubstr("blas"));
}

}  // namespace
}  // namespace romed
