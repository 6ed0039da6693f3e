// ROME on a tiny random model: the edit's numeric contracts (W_hat k* = v*,
// factor == merged, sequential edits see the current state), validation
// codes, prompt filling, context templates, and p(target_new) rising.
#include "server/edit/rome.h"

#include <iostream>

#include <gtest/gtest.h>

#include "server/edit/rome_update.h"
#include "tests/edit/tiny_rome.h"
#include "tests/testing/status_matchers.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;
using ::testing::HasSubstr;

// Layer 0: a delta at the subject's last token of the TOP layer (1) could not
// reach the target positions of a 2-layer model (no attention after it).
constexpr int64_t kLayer = 0;

class RomeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tiny_ = new testing::TinyModel(testing::LoadTinyModel(/*seed=*/7, /*embedding_scale=*/10.0));
    const std::string dir = testing::MakeTempDir("romed-rome");
    CorpusCovarianceOptions options;
    options.corpus_path = testing::WriteFile(dir + "/corpus.txt", testing::CorpusText(4));
    covariance_ = new CorpusCovariance(*tiny_->model, *tiny_->tokenizer, options);
    templates_ = new ContextTemplateCache();
  }
  static void TearDownTestSuite() {
    delete templates_;
    delete covariance_;
    delete tiny_;
  }

  static RomeOptions Options(int64_t layer = kLayer) {
    RomeOptions options = DefaultRomeOptions(tiny_->model->config());
    options.layer = layer;
    options.fact_token = FactToken::kSubjectLast;
    return options;
  }
  static RewriteRequest Request() { return {"{} lives in", "Anna Berg", "Oslo", "Rome"}; }

  static absl::StatusOr<RomeResult> Edit(const RewriteRequest& request, const RomeOptions& options,
                                         std::shared_ptr<const EditView> current = nullptr) {
    return ComputeRomeEdit(*tiny_->model, *tiny_->tokenizer, std::move(current), request, options,
                           *covariance_, templates_);
  }
  static std::shared_ptr<const EditView> View(const std::vector<RankOneDelta>& deltas) {
    return EditView::Build(deltas, torch::kCPU, torch::kFloat32);
  }
  // The forward's own float32 arithmetic at one key: k W + b + view terms.
  static torch::Tensor LayerOutput(const EditView& view, int64_t layer, const torch::Tensor& key) {
    const Gpt2LayerWeights& w = tiny_->model->weights().layers[layer];
    torch::Tensor k = key.to(torch::kFloat32);
    torch::Tensor out = k.matmul(w.mlp_proj_weight) + w.mlp_proj_bias;
    torch::Tensor extra = view.Contribution(layer, k);
    return extra.defined() ? out + extra : out;
  }

  static testing::TinyModel* tiny_;
  static CorpusCovariance* covariance_;
  static ContextTemplateCache* templates_;
};
testing::TinyModel* RomeTest::tiny_ = nullptr;
CorpusCovariance* RomeTest::covariance_ = nullptr;
ContextTemplateCache* RomeTest::templates_ = nullptr;

double Relative(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got.to(torch::kFloat64) - want.to(torch::kFloat64)).norm() /
          want.to(torch::kFloat64).norm())
      .item<double>();
}

// Random weights give ||v_init|| ~ 0.05 (GPT-2 XL's are tens), so ROME's
// clamp and weight decay, both relative to ||v_init||, are rescaled; the
// key is the last prompt token at layer 0, whose change reaches every
// target position through layer 1's attention.
TEST_F(RomeTest, EditRaisesTheProbabilityOfTheNewTarget) {
  RomeOptions options = Options(0);
  options.fact_token = FactToken::kLast;
  options.clamp_norm_factor = 100.0;
  options.v_weight_decay = 1e-4;
  ASSERT_OK_AND_ASSIGN(RomeResult result, Edit(Request(), options));
  std::cout << "p(new) " << result.before.p_new << " -> " << result.after.p_new << ", p(true) "
            << result.before.p_true << " -> " << result.after.p_true << ", loss "
            << result.loss_curve.front().loss << " -> " << result.loss_curve.back().loss << " in "
            << result.loss_curve.size() << " evaluations, key " << result.timings.key_s
            << " s, value " << result.timings.value_s << " s, update " << result.timings.update_s
            << " s\n";
  for (const ValueLossStep& step : result.loss_curve) {
    if (&step != &result.loss_curve.front() && &step != &result.loss_curve.back()) continue;
    std::cout << "  loss " << step.loss << " = nll " << step.nll << " + kl " << step.kl
              << " + decay " << step.weight_decay << " (|delta| " << step.delta_norm << ", |v_init| "
              << result.v_init_norm << ")\n";
  }
  // A random byte-level model cannot be made to prefer " Oslo" to " Rome"
  // (the distinguishing bytes lie beyond what one delta controls); the fact
  // model test measures P(new) > P(true). Here p(new) must clearly rise.
  EXPECT_GT(result.after.p_new, 1.2 * result.before.p_new);
  EXPECT_LT(result.loss_curve.back().loss, result.loss_curve.front().loss);
  EXPECT_LE(static_cast<int64_t>(result.loss_curve.size()), Options().v_num_grad_steps);
  ASSERT_EQ(result.deltas.size(), 1u);
  EXPECT_EQ(result.deltas[0].layer, 0);
  EXPECT_EQ(result.num_templates, 21);
  EXPECT_NEAR(result.u_norm, 1.0, 1e-5);
  EXPECT_GT(result.lambda_norm, 0.0);
  EXPECT_FALSE(result.identity_covariance);
  EXPECT_THAT(result.covariance_source, HasSubstr("corpus"));
  // The clamp holds: ||v* - v_init|| <= clamp_norm_factor ||v_init||.
  EXPECT_LE(result.value_delta_norm, options.clamp_norm_factor * result.v_init_norm * (1 + 1e-5));
  EXPECT_LT(Relative(LayerOutput(*View(result.deltas), 0, result.k_star), result.v_star), 1e-4);
}

TEST_F(RomeTest, UpdateMapsKStarToVStar) {
  ASSERT_OK_AND_ASSIGN(RomeResult result, Edit(Request(), Options()));
  auto after = View(result.deltas);
  const double error = Relative(LayerOutput(*after, kLayer, result.k_star), result.v_star);
  std::cout << "|W_hat k* - v*| / |v*| = " << error << "\n";
  EXPECT_LT(error, 1e-4);
  // Before the edit it did not.
  EXPECT_GT(Relative(LayerOutput(*View({}), kLayer, result.k_star), result.v_star), 1e-2);
}

TEST_F(RomeTest, FactorFormEqualsMergedWeights) {
  ASSERT_OK_AND_ASSIGN(RomeResult result, Edit(Request(), Options()));
  const RankOneDelta& d = result.deltas[0];
  Gpt2Weights merged = tiny_->model->weights();
  Gpt2LayerWeights& layer = merged.layers[d.layer];
  // Conv1D [M, C]: ROME's W + lambda u^T is W_proj + u lambda^T.
  layer.mlp_proj_weight = layer.mlp_proj_weight + torch::outer(d.u, d.lambda);
  Gpt2Model merged_model(tiny_->model->config(), merged);

  auto ids = tiny_->tokenizer->Encode("Anna Berg lives in Oslo; the river runs north.");
  ASSERT_OK(ids.status());
  torch::Tensor tokens = torch::tensor(*ids, torch::kInt64).unsqueeze(0);
  torch::NoGradGuard no_grad;
  RowEdits edits;
  edits.views = {View(result.deltas)};
  ForwardOptions factor_options;
  factor_options.edits = &edits;
  torch::Tensor factor = tiny_->model->Forward({tokens, torch::Tensor()}, factor_options);
  torch::Tensor merged_logits = merged_model.Forward({tokens, torch::Tensor()});
  const double diff = (factor - merged_logits).abs().max().item<double>();
  std::cout << "max |logits factor - merged| = " << diff << " (logit scale "
            << merged_logits.abs().max().item<double>() << ")\n";
  EXPECT_LT(diff, 1e-4);
  // And the edit changed the logits at all.
  EXPECT_GT((factor - tiny_->model->Forward({tokens, torch::Tensor()})).abs().max().item<double>(),
            1e-3);
}

TEST_F(RomeTest, SecondEditIsComputedOnTheCurrentState) {
  ASSERT_OK_AND_ASSIGN(RomeResult first, Edit(Request(), Options()));
  auto after_first = View(first.deltas);
  RewriteRequest second_request{"{} works as a", "Anna Bergson", "baker", "pilot"};
  ASSERT_OK_AND_ASSIGN(RomeResult second, Edit(second_request, Options(), after_first));

  std::vector<RankOneDelta> both = first.deltas;
  both.push_back(second.deltas[0]);
  auto after_both = View(both);
  // W k* of the second update included the first delta: base + both maps k2* to v2*.
  const double error = Relative(LayerOutput(*after_both, kLayer, second.k_star), second.v_star);
  std::cout << "sequential: |W_hat k2* - v2*| / |v2*| = " << error << "\n";
  EXPECT_LT(error, 1e-4);
  // The first delta matters at k2*: without it the second delta misses v2*.
  auto second_alone = View(second.deltas);
  EXPECT_GT(Relative(LayerOutput(*second_alone, kLayer, second.k_star), second.v_star), 1e-3);

  // The same rewrite computed on the base state is a different delta: its
  // key, value and W k* all come from the base model.
  ASSERT_OK_AND_ASSIGN(RomeResult on_base, Edit(second_request, Options()));
  EXPECT_GT(Relative(on_base.k_star, second.k_star) + Relative(on_base.v_star, second.v_star),
            1e-6);
  // The first edit still holds after the second.
  EXPECT_LT(Relative(LayerOutput(*after_both, kLayer, first.k_star), first.v_star), 0.5);
}

TEST_F(RomeTest, SequentialRewritesStackInOrder) {
  std::vector<RewriteRequest> requests = {Request(), {"{} works as a", "Anna Bergson", "baker", ""}};
  ASSERT_OK_AND_ASSIGN(auto results, ComputeRomeEdits(*tiny_->model, *tiny_->tokenizer, nullptr,
                                                      requests, Options(), *covariance_,
                                                      templates_));
  ASSERT_EQ(results.size(), 2u);
  std::vector<RankOneDelta> both = {results[0].deltas[0], results[1].deltas[0]};
  EXPECT_LT(Relative(LayerOutput(*View(both), kLayer, results[1].k_star), results[1].v_star), 1e-4);
  EXPECT_FALSE(results[1].has_target_true);
}

TEST_F(RomeTest, ReleasedCodeFormMapsTheBarePromptKey) {
  RomeOptions options = Options();
  options.key_form = UpdateKeyForm::kReleasedCode;
  ASSERT_OK_AND_ASSIGN(RomeResult result, Edit(Request(), options));
  // Recompute the bare prompt's key on the base model.
  ASSERT_OK_AND_ASSIGN(RomeKey key, ComputeKey(*tiny_->model, *tiny_->tokenizer, nullptr, {"{}"},
                                               "{} lives in", "Anna Berg",
                                               {kLayer, FactToken::kSubjectLast}));
  EXPECT_LT(Relative(LayerOutput(*View(result.deltas), kLayer, key.bare_key), result.v_star), 1e-4);
}

TEST_F(RomeTest, IdentityCovarianceIsReported) {
  RomeOptions options = Options(1);
  options.mom2_adjustment = false;
  options.fact_token = FactToken::kLast;
  ASSERT_OK_AND_ASSIGN(RomeResult result, Edit(Request(), options));
  EXPECT_TRUE(result.identity_covariance);
  EXPECT_EQ(result.covariance_source, "identity");
  EXPECT_EQ(result.site.fact_token, FactToken::kLast);
  EXPECT_LT(Relative(LayerOutput(*View(result.deltas), 1, result.k_star), result.v_star), 1e-4);
}

TEST_F(RomeTest, DefaultLayerIsUsedWhenUnset) {
  RomeOptions options = Options(-1);
  options.v_num_grad_steps = 2;
  ASSERT_OK_AND_ASSIGN(RomeResult result, Edit(Request(), options));
  EXPECT_EQ(result.site.layer, DefaultRomeOptions(tiny_->model->config()).layer);
}

// --- bad input ---

TEST_F(RomeTest, PromptWithoutPlaceholderIsInvalid) {
  EXPECT_THAT(Edit({"Anna Berg lives in", "Anna Berg", "Oslo", ""}, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has no \"{}\"")));
}

TEST_F(RomeTest, SubjectNotInThePromptIsInvalid) {
  EXPECT_THAT(Edit({"Someone lives in", "Anna Berg", "Oslo", ""}, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not in the prompt")));
}

TEST_F(RomeTest, TwoPlaceholdersAreInvalid) {
  EXPECT_THAT(Edit({"{} and {} live in", "Anna Berg", "Oslo", ""}, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2 \"{}\"")));
}

TEST_F(RomeTest, EmptySubjectOrTargetIsInvalid) {
  EXPECT_THAT(Edit({"{} lives in", "", "Oslo", ""}, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("subject is empty")));
  EXPECT_THAT(Edit({"{} lives in", "Anna Berg", "  ", ""}, Options()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target_new is empty")));
}

TEST_F(RomeTest, LayerOutOfRangeIsInvalid) {
  EXPECT_THAT(Edit(Request(), Options(2)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_THAT(Edit(Request(), Options(-2)), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(RomeTest, BadHyperparametersAreInvalid) {
  RomeOptions negative_lr = Options();
  negative_lr.v_lr = -0.5;
  EXPECT_THAT(Edit(Request(), negative_lr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("v_lr")));
  RomeOptions zero_steps = Options();
  zero_steps.v_num_grad_steps = 0;
  EXPECT_THAT(Edit(Request(), zero_steps),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("v_num_grad_steps")));
  RomeOptions zero_clamp = Options();
  zero_clamp.clamp_norm_factor = 0;
  EXPECT_THAT(Edit(Request(), zero_clamp), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(RomeTest, MissingOrEmptyStatsCorpusIsReported) {
  const std::string dir = testing::MakeTempDir("romed-rome-bad");
  CorpusCovarianceOptions missing;
  missing.corpus_path = dir + "/absent.txt";
  CorpusCovariance missing_provider(*tiny_->model, *tiny_->tokenizer, missing);
  EXPECT_THAT(ComputeRomeEdit(*tiny_->model, *tiny_->tokenizer, nullptr, Request(), Options(),
                              missing_provider, templates_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent.txt")));
  CorpusCovarianceOptions empty;
  empty.corpus_path = testing::WriteFile(dir + "/empty.txt", "");
  CorpusCovariance empty_provider(*tiny_->model, *tiny_->tokenizer, empty);
  EXPECT_THAT(ComputeRomeEdit(*tiny_->model, *tiny_->tokenizer, nullptr, Request(), Options(),
                              empty_provider, templates_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("empty")));
}

TEST_F(RomeTest, TargetAlreadyPredictedIsReported) {
  // Whatever the model says next after the prompt becomes the target.
  auto ids = tiny_->tokenizer->Encode("Anna Berg lives in");
  ASSERT_OK(ids.status());
  torch::Tensor logits = [&] {
    torch::NoGradGuard no_grad;
    return tiny_->model->Forward({torch::tensor(*ids, torch::kInt64).unsqueeze(0), torch::Tensor()});
  }();
  const int64_t next = logits[0][-1].argmax().item<int64_t>();
  RomeOptions options = Options();
  options.v_num_grad_steps = 1;
  const EditSite site{kLayer, FactToken::kSubjectLast};
  ASSERT_OK_AND_ASSIGN(RomeValue predicted,
                       OptimizeValue(*tiny_->model, *tiny_->tokenizer, nullptr, {"{}"},
                                     "{} lives in", "Anna Berg", {next}, site, options));
  EXPECT_TRUE(predicted.target_already_predicted);
  ASSERT_OK_AND_ASSIGN(RomeValue other,
                       OptimizeValue(*tiny_->model, *tiny_->tokenizer, nullptr, {"{}"},
                                     "{} lives in", "Anna Berg", {(next + 1) % 256}, site, options));
  EXPECT_FALSE(other.target_already_predicted);
}

// --- prompts and templates ---

TEST_F(RomeTest, FillPromptFindsTheFactToken) {
  const Gpt2Tokenizer& tok = *tiny_->tokenizer;  // one token per byte
  ASSERT_OK_AND_ASSIGN(FilledPrompt first, FillPrompt(tok, "The {} is", "Ab", FactToken::kSubjectFirst));
  EXPECT_EQ(first.text, "The Ab is");
  EXPECT_EQ(first.subject_begin, 4);
  EXPECT_EQ(first.subject_end, 6);
  EXPECT_EQ(first.fact_position, 4);
  ASSERT_OK_AND_ASSIGN(FilledPrompt last_subject, FillPrompt(tok, "The {} is", "Ab", FactToken::kSubjectLast));
  EXPECT_EQ(last_subject.fact_position, 5);
  ASSERT_OK_AND_ASSIGN(FilledPrompt last, FillPrompt(tok, "The {} is", "Ab", FactToken::kLast));
  EXPECT_EQ(last.fact_position, 8);
  EXPECT_EQ(NestTemplate("Hello there. {}", "The {} is"), "Hello there. The {} is");
}

TEST_F(RomeTest, FactTokenNamesRoundTrip) {
  for (FactToken t : {FactToken::kSubjectFirst, FactToken::kSubjectLast, FactToken::kLast}) {
    ASSERT_OK_AND_ASSIGN(FactToken parsed, ParseFactToken(FactTokenName(t)));
    EXPECT_EQ(parsed, t);
  }
  EXPECT_THAT(ParseFactToken("middle"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(RomeTest, ContextTemplatesAreDeterministicAndWellFormed) {
  ContextTemplateOptions options;
  ASSERT_OK_AND_ASSIGN(auto a, GenerateContextTemplates(*tiny_->model, *tiny_->tokenizer, options));
  ASSERT_OK_AND_ASSIGN(auto b, GenerateContextTemplates(*tiny_->model, *tiny_->tokenizer, options));
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 21u);
  EXPECT_EQ(a[0], "{}");
  for (size_t i = 1; i < a.size(); ++i) {
    EXPECT_OK(ValidatePromptTemplate(a[i], "x")) << a[i];
    EXPECT_EQ(a[i].substr(a[i].size() - 4), ". {}");
  }
  options.seed = 99;
  ASSERT_OK_AND_ASSIGN(auto c, GenerateContextTemplates(*tiny_->model, *tiny_->tokenizer, options));
  EXPECT_NE(a, c);

  ContextTemplateCache cache;
  ASSERT_OK_AND_ASSIGN(auto first, cache.Get(*tiny_->model, *tiny_->tokenizer, {}));
  ASSERT_OK_AND_ASSIGN(auto second, cache.Get(*tiny_->model, *tiny_->tokenizer, {}));
  EXPECT_EQ(first.get(), second.get());
  EXPECT_EQ(*first, a);
}

TEST(RomeOptionsTest, ReleasedDefaultsForGpt2Shapes) {
  auto medium = Gpt2Config::Preset("gpt2-medium");
  auto large = Gpt2Config::Preset("gpt2-large");
  auto xl = Gpt2Config::Preset("gpt2-xl");
  ASSERT_OK(medium.status());
  EXPECT_EQ(DefaultRomeOptions(*medium).layer, 8);
  EXPECT_EQ(DefaultRomeOptions(*medium).clamp_norm_factor, 3.0);
  EXPECT_EQ(DefaultRomeOptions(*large).layer, 12);
  EXPECT_EQ(DefaultRomeOptions(*xl).layer, 17);
  EXPECT_EQ(DefaultRomeOptions(*xl).clamp_norm_factor, 4.0);
  EXPECT_EQ(DefaultRomeOptions(*xl).fact_token, FactToken::kSubjectLast);
  EXPECT_EQ(DefaultRomeOptions(*xl).v_lr, 0.5);
  EXPECT_EQ(DefaultRomeOptions(*xl).v_num_grad_steps, 20);
  EXPECT_EQ(DefaultRomeOptions(*xl).kl_factor, 0.0625);
  EXPECT_EQ(DefaultRomeOptions(*xl).v_weight_decay, 0.5);
  auto small = Gpt2Config::Preset("gpt2");
  EXPECT_EQ(DefaultRomeOptions(*small).layer, 4);  // round(17/48 * 12)
}

}  // namespace
}  // namespace romed
