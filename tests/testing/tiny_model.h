// Small random GPT-2 checkpoints for tests: written to a temporary directory
// in the Hugging Face layout so every test exercises the real loader.
//
// The tokenizer is byte-level with no merges: vocab.json holds GPT-2's 256
// byte symbols (ids 0..255, in bytes_to_unicode order of byte value) plus
// "<|endoftext|>" = 256, so V = 257 and any UTF-8 text encodes.
#ifndef ROMED_TESTS_TESTING_TINY_MODEL_H_
#define ROMED_TESTS_TESTING_TINY_MODEL_H_

#include <cstdint>
#include <string>

#include "server/model/gpt2_config.h"

namespace romed::testing {

// A config for tests: V 257, P 64, C 32, L 2, H 4 (M = 128).
Gpt2Config TinyConfig();

// The byte-level vocab.json / merges.txt texts described above.
std::string ByteLevelVocabJson();
std::string ByteLevelMergesTxt();

// A fresh temporary directory (under $TMPDIR or /tmp), removed by the caller
// or left for the OS; each call returns a new one.
std::string MakeTempDir(const std::string& prefix);

// Writes a random checkpoint (Gpt2Weights::Random(config, seed)) with the
// byte-level tokenizer into a new temporary directory and returns its path.
// config.vocab_size must be 257. Aborts the test (ADD_FAILURE + empty
// string) on error.
std::string WriteTinyCheckpoint(const Gpt2Config& config = TinyConfig(), uint64_t seed = 1);

}  // namespace romed::testing

#endif  // ROMED_TESTS_TESTING_TINY_MODEL_H_
