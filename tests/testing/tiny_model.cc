#include "tests/testing/tiny_model.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/model/checkpoint.h"
#include "server/model/gpt2_weights.h"
#include "server/model/tokenizer.h"

namespace romed::testing {
namespace {

constexpr int64_t kByteLevelVocabSize = 257;  // 256 byte symbols + <|endoftext|>

std::string EncodeUtf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {  // bytes_to_unicode() stays below U+0800; kept general for clarity
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
  return out;
}

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

std::string ByteLevelVocabJson() {
  const std::vector<char32_t>& symbols = Gpt2Tokenizer::ByteToUnicode();
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int byte = 0; byte < 256; ++byte) vocab[EncodeUtf8(symbols[byte])] = byte;
  vocab["<|endoftext|>"] = 256;
  return vocab.dump();
}

std::string ByteLevelMergesTxt() { return "#version: 0.2\n"; }

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
