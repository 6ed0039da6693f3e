// A tiny random model loaded through the real checkpoint loader, plus a
// small statistics corpus, shared by the server/edit tests.
#ifndef ROMED_TESTS_EDIT_TINY_ROME_H_
#define ROMED_TESTS_EDIT_TINY_ROME_H_

#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "server/model/checkpoint.h"
#include "server/model/gpt2_model.h"
#include "server/model/gpt2_weights.h"
#include "tests/testing/tiny_model.h"

namespace romed::testing {

// TinyConfig with a context of 128 (byte-level prompts with templates).
inline Gpt2Config TinyRomeConfig() {
  Gpt2Config config = TinyConfig();
  config.n_positions = 128;
  return config;
}

struct TinyModel {
  std::string dir;
  std::shared_ptr<const Gpt2Model> model;
  std::shared_ptr<const Gpt2Tokenizer> tokenizer;
};

// `embedding_scale` multiplies the (tied) token embeddings: GPT-2's random
// init gives logits of scale ~0.6, too flat for an edit to move much; x10
// gives a model whose next-token distribution can be steered.
inline TinyModel LoadTinyModel(uint64_t seed = 7, double embedding_scale = 1.0) {
  TinyModel tiny;
  const Gpt2Config config = TinyRomeConfig();
  Gpt2Weights weights = Gpt2Weights::Random(config, seed);
  weights.wte = weights.wte * embedding_scale;
  tiny.dir = MakeTempDir("romed-edit-tiny");
  absl::Status saved = SaveCheckpoint(tiny.dir, config, weights, ByteLevelVocabJson(),
                                      ByteLevelMergesTxt());
  if (!saved.ok()) {
    ADD_FAILURE() << saved;
    return tiny;
  }
  auto checkpoint = LoadCheckpoint(tiny.dir);
  if (!checkpoint.ok()) {
    ADD_FAILURE() << checkpoint.status();
    return tiny;
  }
  tiny.model = std::make_shared<Gpt2Model>(checkpoint->config, checkpoint->weights);
  tiny.tokenizer = checkpoint->tokenizer;
  return tiny;
}

// Some English-looking text: `repeats` x ~350 bytes.
inline std::string CorpusText(int repeats, const std::string& salt = "") {
  std::string text;
  for (int i = 0; i < repeats; ++i) {
    text += "The river runs north of the old town " + std::to_string(i) + salt +
            ". People there speak French and play the violin; many work as bakers.\n"
            "Anna Berg was born in Oslo and grew up speaking Norwegian. Her brother "
            "plays football for a club in Bergen, and her mother works for a bank.\n"
            "Quiet streets, tall houses, {odd} symbols: 42 + 17 = 59, ok?\n";
  }
  return text;
}

inline std::string WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return path;
}

}  // namespace romed::testing

#endif  // ROMED_TESTS_EDIT_TINY_ROME_H_
