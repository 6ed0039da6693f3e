// Helpers for the Engine's and the service's session / Edit tests: a tiny
// random checkpoint with room for ROME's context templates, quick edit
// requests, and outputs to compare bit for bit.
#ifndef ROMED_TESTS_SERVICE_EDIT_TEST_UTIL_H_
#define ROMED_TESTS_SERVICE_EDIT_TEST_UTIL_H_

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "server/engine/engine.h"
#include "server/model/checkpoint.h"
#include "server/model/gpt2_weights.h"
#include "tests/testing/tiny_model.h"

namespace romed::testing {

// TinyConfig (V 257 byte-level, C 32, L 2) with a context of 128 tokens:
// byte-level prompts inside ROME's context templates need the room.
inline Gpt2Config EditTestConfig() {
  Gpt2Config config = TinyConfig();
  config.n_positions = 128;
  return config;
}

// A random EditTestConfig checkpoint with the byte-level tokenizer, its
// (tied) token embeddings scaled x10: GPT-2's random init gives logits too
// flat for a few value steps to move; x10 gives a steerable model (as in
// tests/edit/tiny_rome.h). Returns the new temporary directory; "" and
// ADD_FAILURE on error.
inline std::string WriteEditTestCheckpoint(uint64_t seed = 7) {
  const Gpt2Config config = EditTestConfig();
  Gpt2Weights weights = Gpt2Weights::Random(config, seed);
  weights.wte = weights.wte * 10.0;
  const std::string dir = MakeTempDir("romed-edit-engine");
  const absl::Status saved =
      SaveCheckpoint(dir, config, weights, ByteLevelVocabJson(), ByteLevelMergesTxt());
  if (!saved.ok()) {
    ADD_FAILURE() << saved;
    return "";
  }
  return dir;
}

inline EngineOptions EditTestOptions(const std::string& state_dir = "") {
  EngineOptions options;
  options.limits.max_prompt_tokens = 96;
  options.limits.max_new_tokens = 16;
  options.limits.max_sessions = 8;
  options.limits.max_edits_per_session = 4;
  options.limits.max_concurrent_heavy_jobs = 2;
  options.state_dir = state_dir;
  return options;
}

// Loads the checkpoint in `dir` (WriteEditTestCheckpoint()) into
// an engine. ADD_FAILURE and null on error.
inline std::unique_ptr<Engine> MakeEditEngine(const std::string& dir, EngineOptions options) {
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(dir);
  if (!checkpoint.ok()) {
    ADD_FAILURE() << checkpoint.status();
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Create(*std::move(checkpoint), std::move(options));
  if (!engine.ok()) {
    ADD_FAILURE() << engine.status();
    return nullptr;
  }
  return *std::move(engine);
}

// One rewrite as the tests use it: "{} lives in" [subject] -> target.
inline RewriteRecord TestRewrite(const std::string& subject = "Anna Berg",
                                 const std::string& target = "Oslo",
                                 const std::string& prompt = "{} lives in") {
  return RewriteRecord{prompt, subject, target, ""};
}

// A quick edit that moves this random model: 4 value steps; the key at the
// last prompt token of layer 0 (a delta there reaches every target position
// through layer 1's attention; the default site, the subject's last token in
// the top layer, reaches none); clamp and weight decay rescaled because
// random weights give ||v_init|| ~ 0.05 (as tests/edit/rome_test.cc does);
// C = I unless `identity` is false. `site` false leaves layer and fact token
// to the engine (tracing recommendation or default).
inline TextEditRequest QuickEdit(const std::string& session_id,
                                 std::vector<RewriteRecord> rewrites = {TestRewrite()},
                                 bool identity = true, bool site = true) {
  TextEditRequest request;
  request.session_id = session_id;
  request.rewrites = std::move(rewrites);
  request.overrides.v_num_grad_steps = 4;
  request.overrides.clamp_norm_factor = 100.0;
  request.overrides.v_weight_decay = 1e-4;
  request.overrides.identity_covariance = identity;
  if (site) {
    request.overrides.layer = 0;
    request.overrides.fact_token = FactToken::kLast;
  }
  return request;
}

// What a session's model says: greedy ids and per-token log-probs of a
// generation, and the token log-probs of scored continuations.
struct Outputs {
  std::vector<int64_t> generated;
  std::vector<float> generated_logprobs;
  std::vector<std::vector<float>> scored;

  bool operator==(const Outputs& o) const {
    return generated == o.generated && generated_logprobs == o.generated_logprobs &&
           scored == o.scored;
  }
};

inline Outputs OutputsOf(Engine& engine, const std::string& session_id) {
  Outputs out;
  TextGenerateRequest generate;
  generate.prompt = "Anna Berg lives in";
  generate.max_new_tokens = 8;
  generate.ignore_eos = true;
  generate.session_id = session_id;
  absl::StatusOr<GenerateResult> g = engine.Generate(generate);
  EXPECT_TRUE(g.ok()) << g.status();
  if (g.ok()) {
    out.generated = g->ids;
    out.generated_logprobs = g->logprobs;
  }
  TextScoreRequest score;
  score.prompt = "Anna Berg lives in";
  score.continuations = {" Oslo", " Rome"};
  score.session_id = session_id;
  absl::StatusOr<ScoreResult> s = engine.Score(score);
  EXPECT_TRUE(s.ok()) << s.status();
  if (s.ok()) {
    for (const ScoredContinuation& c : s->scores) out.scored.push_back(c.token_logprobs);
  }
  return out;
}

inline std::string WriteTextFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// ~20 KB of English-looking text for covariance statistics.
inline std::string StatsCorpusText() {
  std::string text;
  for (int i = 0; i < 60; ++i) {
    text += "Anna Berg was born in Oslo and lives in Bergen " + std::to_string(i) +
            ". Her brother plays the violin; people there speak Norwegian.\n"
            "The river runs north of the old town, where many work as bakers.\n"
            "Quiet streets and tall houses, 42 + 17 = 59.\n";
  }
  return text;
}

}  // namespace romed::testing

#endif  // ROMED_TESTS_SERVICE_EDIT_TEST_UTIL_H_
