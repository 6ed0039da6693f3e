// romed-random-model, run as a program: it writes checkpoints LoadCheckpoint
// accepts, and refuses what it should with a message and a non-zero exit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/model/checkpoint.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct ToolResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

ToolResult RunTool(const std::string& args) {
  const char* binary_dir = std::getenv("ROMED_BINARY_DIR");
  const std::string command = std::string(binary_dir ? binary_dir : ".") +
                              "/tools/random_model/romed-random-model " + args + " 2>&1";
  ToolResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

constexpr char kSmallShape[] = "--config=gpt2 --n_layer=2 --n_embd=48 --n_head=4 --n_positions=32";

class RandomModelToolTest : public ::testing::Test {
 protected:
  void SetUp() override { out_ = testing::MakeTempDir("romed-random-model") + "/model"; }
  std::string out_;
};

TEST_F(RandomModelToolTest, WritesALoadableByteLevelCheckpoint) {
  ToolResult run = RunTool(absl::StrCat(kSmallShape, " --byte_level --seed=5 --out=", out_));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("L=2 C=48 H=4"));
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(out_));
  EXPECT_EQ(checkpoint.config.n_layer, 2);
  EXPECT_EQ(checkpoint.config.n_embd, 48);
  EXPECT_EQ(checkpoint.config.vocab_size, 257);
  EXPECT_EQ(checkpoint.config.eos_token_id, 256);
  Gpt2Weights expected = Gpt2Weights::Random(checkpoint.config, 5);
  EXPECT_TRUE(torch::equal(checkpoint.weights.layers[1].mlp_proj_weight,
                           expected.layers[1].mlp_proj_weight));
}

TEST_F(RandomModelToolTest, CopiesAGivenTokenizerAndStoresTheRequestedDtype) {
  const std::string tokenizer_dir = testing::MakeTempDir("romed-random-tokenizer");
  std::ofstream(tokenizer_dir + "/vocab.json") << testing::ByteLevelVocabJson();
  std::ofstream(tokenizer_dir + "/merges.txt") << testing::ByteLevelMergesTxt();
  ToolResult run = RunTool(absl::StrCat(kSmallShape, " --vocab_size=300 --dtype=bf16",
                                        " --vocab_json=", tokenizer_dir, "/vocab.json",
                                        " --merges=", tokenizer_dir, "/merges.txt --out=", out_));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(out_));
  EXPECT_EQ(checkpoint.config.vocab_size, 300);
  EXPECT_EQ(checkpoint.stored_dtype, "BF16");
}

TEST_F(RandomModelToolTest, RefusesANonEmptyOutUnlessForced) {
  fs::create_directories(out_);
  std::ofstream(out_ + "/keep.txt") << "precious";
  ToolResult refused = RunTool(absl::StrCat(kSmallShape, " --byte_level --out=", out_));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.output, HasSubstr("not an empty directory"));
  EXPECT_TRUE(fs::exists(out_ + "/keep.txt"));

  ToolResult forced = RunTool(absl::StrCat(kSmallShape, " --byte_level --force --out=", out_));
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_FALSE(fs::exists(out_ + "/keep.txt"));
  EXPECT_OK(LoadCheckpoint(out_));
}

TEST_F(RandomModelToolTest, RequiresATokenizer) {
  ToolResult run = RunTool(absl::StrCat(kSmallShape, " --out=", out_));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_THAT(run.output, HasSubstr("--byte_level"));
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(RandomModelToolTest, RejectsBadShapesAndDtypes) {
  EXPECT_THAT(RunTool(absl::StrCat("--config=gpt5 --byte_level --out=", out_)).output,
              HasSubstr("gpt5"));
  EXPECT_THAT(RunTool(absl::StrCat(kSmallShape, " --n_head=5 --byte_level --out=", out_)).output,
              HasSubstr("n_head"));
  EXPECT_THAT(RunTool(absl::StrCat(kSmallShape, " --dtype=f8 --byte_level --out=", out_)).output,
              HasSubstr("--dtype=f8"));
  EXPECT_THAT(RunTool(absl::StrCat(kSmallShape, " --vocab_size=100 --byte_level --out=", out_)).output,
              HasSubstr("smaller than the tokenizer's 257"));
  EXPECT_FALSE(fs::exists(out_));
}

}  // namespace
}  // namespace romed
