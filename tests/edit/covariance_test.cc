// Covariance statistics: equal to a direct E[k k^T] from a separate plain
// capture, cached on disk by (model, layer, corpus, token count), with
// progress, cancellation and the corpus errors.
#include "server/edit/covariance.h"

#include <filesystem>
#include <iostream>

#include <gtest/gtest.h>

#include "tests/edit/tiny_rome.h"
#include "tests/testing/status_matchers.h"

namespace romed {
namespace {

using ::romed::testing::StatusIs;

class CovarianceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tiny_ = new testing::TinyModel(testing::LoadTinyModel()); }
  static void TearDownTestSuite() { delete tiny_; }

  void SetUp() override {
    dir_ = testing::MakeTempDir("romed-cov");
    corpus_ = testing::WriteFile(dir_ + "/corpus.txt", testing::CorpusText(3));
  }

  CorpusCovarianceOptions Options(const std::string& corpus) const {
    CorpusCovarianceOptions options;
    options.corpus_path = corpus;
    options.state_dir = dir_ + "/state";
    options.model_checksum = "tinymodel0123";
    options.batch_tokens = 300;  // several batches, rows of different lengths
    return options;
  }

  const Gpt2Model& model() const { return *tiny_->model; }
  const Gpt2Tokenizer& tokenizer() const { return *tiny_->tokenizer; }

  static testing::TinyModel* tiny_;
  std::string dir_, corpus_;
};
testing::TinyModel* CovarianceTest::tiny_ = nullptr;

// E[k k^T] by plain captures: one full forward per row, outer products summed
// token by token in float64.
torch::Tensor DirectSecondMoment(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                 const std::string& text, int64_t layer) {
  torch::NoGradGuard no_grad;
  auto ids = tokenizer.Encode(text);
  EXPECT_TRUE(ids.ok());
  const int64_t p = model.config().n_positions, m = model.config().mlp_width();
  torch::Tensor sum = torch::zeros({m, m}, torch::kFloat64);
  int64_t count = 0;
  for (size_t pos = 0; pos < ids->size(); pos += p) {
    const size_t end = std::min(ids->size(), pos + p);
    std::vector<int64_t> row(ids->begin() + pos, ids->begin() + end);
    Interventions hooks;
    hooks.Capture({HookPoint::kMlpIn, layer});
    ForwardOptions options;
    options.interventions = &hooks;
    model.Forward({torch::tensor(row, torch::kInt64).unsqueeze(0), torch::Tensor()}, options);
    torch::Tensor keys = hooks.Captured({HookPoint::kMlpIn, layer})[0].to(torch::kFloat64);
    for (int64_t t = 0; t < keys.size(0); ++t) {
      sum += torch::outer(keys[t], keys[t]);
      ++count;
    }
  }
  return sum / static_cast<double>(count);
}

TEST_F(CovarianceTest, EqualsADirectSecondMomentOfCapturedKeys) {
  for (int64_t layer : {0, 1}) {
    CorpusCovariance provider(model(), tokenizer(), Options(corpus_));
    ASSERT_OK_AND_ASSIGN(auto stats, provider.Get(layer));
    torch::Tensor direct = DirectSecondMoment(model(), tokenizer(), testing::CorpusText(3), layer);
    const double scale = direct.abs().max().item<double>();
    const double diff = (stats->moment - direct).abs().max().item<double>();
    std::cout << "layer " << layer << ": max |C - direct| = " << diff << " (max |C| " << scale
              << "), " << stats->token_count << " tokens\n";
    EXPECT_LT(diff, 1e-5 * scale);
    EXPECT_EQ(stats->token_count, static_cast<int64_t>(testing::CorpusText(3).size()));
    EXPECT_FALSE(stats->identity);
    // L L^T reproduces C (plus the ridge, zero here).
    torch::Tensor rebuilt = stats->cholesky.matmul(stats->cholesky.t());
    EXPECT_LT((rebuilt - stats->moment).abs().max().item<double>(), 1e-9 * scale + stats->ridge);
  }
}

TEST_F(CovarianceTest, SecondProviderLoadsTheCacheInsteadOfRecomputing) {
  CorpusCovariance first(model(), tokenizer(), Options(corpus_));
  ASSERT_OK_AND_ASSIGN(auto computed, first.Get(1));
  EXPECT_FALSE(computed->loaded_from_cache);
  ASSERT_TRUE(std::filesystem::exists(computed->cache_path)) << computed->cache_path;

  CorpusCovarianceOptions options = Options(corpus_);
  int progress_calls = 0;
  options.on_progress = [&](const CovarianceProgress&) { ++progress_calls; };
  CorpusCovariance second(model(), tokenizer(), options);
  ASSERT_OK_AND_ASSIGN(auto loaded, second.Get(1));
  EXPECT_TRUE(loaded->loaded_from_cache);
  EXPECT_EQ(progress_calls, 0);  // nothing was computed
  EXPECT_EQ(loaded->cache_path, computed->cache_path);
  EXPECT_TRUE(torch::equal(loaded->moment, computed->moment));  // bit-exact float64
  // The same provider answers from memory.
  ASSERT_OK_AND_ASSIGN(auto again, second.Get(1));
  EXPECT_EQ(again.get(), loaded.get());
}

TEST_F(CovarianceTest, DifferentCorpusOrTokenCountIsRecomputed) {
  CorpusCovariance first(model(), tokenizer(), Options(corpus_));
  ASSERT_OK_AND_ASSIGN(auto computed, first.Get(0));

  const std::string other =
      testing::WriteFile(dir_ + "/other.txt", testing::CorpusText(3, " changed"));
  CorpusCovariance changed(model(), tokenizer(), Options(other));
  ASSERT_OK_AND_ASSIGN(auto from_other, changed.Get(0));
  EXPECT_FALSE(from_other->loaded_from_cache);
  EXPECT_NE(from_other->cache_path, computed->cache_path);

  CorpusCovarianceOptions fewer = Options(corpus_);
  fewer.max_tokens = 200;
  CorpusCovariance truncated(model(), tokenizer(), fewer);
  ASSERT_OK_AND_ASSIGN(auto from_fewer, truncated.Get(0));
  EXPECT_FALSE(from_fewer->loaded_from_cache);
  EXPECT_EQ(from_fewer->token_count, 200);
  EXPECT_NE(from_fewer->cache_path, computed->cache_path);
}

TEST_F(CovarianceTest, ACacheFileForAnotherKeyIsNotUsed) {
  CorpusCovariance first(model(), tokenizer(), Options(corpus_));
  ASSERT_OK_AND_ASSIGN(auto layer0, first.Get(0));
  // Plant layer 0's file where layer 1's belongs: its metadata says layer 0.
  CorpusCovariance second(model(), tokenizer(), Options(corpus_));
  ASSERT_OK_AND_ASSIGN(std::string layer1_path, second.CachePath(1));
  std::filesystem::copy_file(layer0->cache_path, layer1_path);
  ASSERT_OK_AND_ASSIGN(auto layer1, second.Get(1));
  EXPECT_FALSE(layer1->loaded_from_cache);
  EXPECT_FALSE(torch::equal(layer1->moment, layer0->moment));
}

TEST_F(CovarianceTest, ReportsProgressUpToTheTotal) {
  CorpusCovarianceOptions options = Options(corpus_);
  options.state_dir.clear();
  std::vector<CovarianceProgress> seen;
  options.on_progress = [&](const CovarianceProgress& p) { seen.push_back(p); };
  CorpusCovariance provider(model(), tokenizer(), options);
  ASSERT_OK_AND_ASSIGN(auto stats, provider.Get(1));
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.back().tokens_done, seen.back().tokens_total);
  EXPECT_EQ(seen.back().tokens_total, stats->token_count);
  EXPECT_LT(seen.front().tokens_done, seen.back().tokens_done);
  EXPECT_EQ(stats->cache_path, "");
}

TEST_F(CovarianceTest, CancellationStopsWithCancelled) {
  CorpusCovarianceOptions options = Options(corpus_);
  int polls = 0;
  options.cancelled = [&] { return ++polls > 1; };
  CorpusCovariance provider(model(), tokenizer(), options);
  EXPECT_THAT(provider.Get(1), StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(CovarianceTest, DirectoryCorpusReadsEveryFile) {
  std::filesystem::create_directories(dir_ + "/texts/sub");
  testing::WriteFile(dir_ + "/texts/a.txt", "First file of the corpus.");
  testing::WriteFile(dir_ + "/texts/sub/b.txt", "Second one, in a folder.");
  testing::WriteFile(dir_ + "/texts/.hidden", "skipped");
  CorpusCovariance provider(model(), tokenizer(), Options(dir_ + "/texts"));
  ASSERT_OK_AND_ASSIGN(auto stats, provider.Get(0));
  EXPECT_EQ(stats->token_count, 25 + 24);  // byte-level: one token per byte
}

TEST_F(CovarianceTest, MissingCorpusIsNotFound) {
  CorpusCovariance provider(model(), tokenizer(), Options(dir_ + "/nope.txt"));
  EXPECT_THAT(provider.Get(0), StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("nope")));
}

TEST_F(CovarianceTest, EmptyCorpusIsAFailedPrecondition) {
  CorpusCovariance empty_file(model(), tokenizer(),
                              Options(testing::WriteFile(dir_ + "/empty.txt", "")));
  EXPECT_THAT(empty_file.Get(0),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::HasSubstr("empty")));
  std::filesystem::create_directories(dir_ + "/nothing");
  CorpusCovariance empty_dir(model(), tokenizer(), Options(dir_ + "/nothing"));
  EXPECT_THAT(empty_dir.Get(0), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(CovarianceTest, LayerOutsideTheModelIsAFailedPrecondition) {
  CorpusCovariance provider(model(), tokenizer(), Options(corpus_));
  EXPECT_THAT(provider.Get(2), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST(IdentityCovarianceTest, IsTheIdentity) {
  IdentityCovariance provider(6);
  ASSERT_OK_AND_ASSIGN(auto stats, provider.Get(3));
  EXPECT_TRUE(stats->identity);
  EXPECT_EQ(stats->source, "identity");
  EXPECT_TRUE(torch::equal(stats->moment, torch::eye(6, torch::kFloat64)));
}

}  // namespace
}  // namespace romed
