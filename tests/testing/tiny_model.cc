#include "tests/testing/tiny_model.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "server/model/checkpoint.h"
#include "server/model/gpt2_weights.h"

namespace romed::testing {
namespace {

constexpr int64_t kByteLevelVocabSize = 257;  // 256 byte symbols + <|endoftext|>

}  // namespace

Gpt2Config TinyConfig() {
  Gpt2Config config;
  config.vocab_size = kByteLevelVocabSize;
  config.n_positions = 64;
  config.n_embd = 32;
  config.n_layer = 2;
  config.n_head = 4;
  config.bos_token_id = 256;
  config.eos_token_id = 256;
  return config;
}

std::string ByteLevelVocabJson() { return ByteLevelTokenizerFiles().vocab_json; }

std::string ByteLevelMergesTxt() { return ByteLevelTokenizerFiles().merges_txt; }

std::string MakeTempDir(const std::string& prefix) {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string pattern = std::string(tmpdir != nullptr && *tmpdir ? tmpdir : "/tmp") + "/" +
                        prefix + ".XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp(" << pattern << ") failed";
    return "";
  }
  return pattern;
}

std::string WriteTinyCheckpoint(const Gpt2Config& config, uint64_t seed) {
  if (config.vocab_size != kByteLevelVocabSize) {
    ADD_FAILURE() << "WriteTinyCheckpoint needs vocab_size 257, got " << config.vocab_size;
    return "";
  }
  std::string dir = MakeTempDir("romed-tiny");
  if (dir.empty()) return "";
  absl::Status status = SaveCheckpoint(dir, config, Gpt2Weights::Random(config, seed),
                                       ByteLevelVocabJson(), ByteLevelMergesTxt());
  if (!status.ok()) {
    ADD_FAILURE() << "SaveCheckpoint(" << dir << "): " << status;
    return "";
  }
  return dir;
}

}  // namespace romed::testing
