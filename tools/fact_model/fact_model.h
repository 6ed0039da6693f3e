// The fact model: a small GPT-2 that romed makes itself (issue 3), trained
// from scratch on a synthetic world of facts and written in the Hugging Face
// GPT-2 layout, with its evaluation sets.
//
//   ASSIGN_OR_RETURN(FactModelReport report,
//                    MakeFactModel(FullRecipe(/*seed=*/1), "models/fact", {}, &std::cerr));
//
// MakeFactModel writes into `out_dir`:
//   config.json, model.safetensors, vocab.json, merges.txt   the checkpoint
//   known_facts.json     facts the model knows (known_1000.json format)
//   counterfact.json     rewrite cases (CounterFact format)
//   stats_corpus.txt     text of the training distribution, one document a line
//   README.md            the world, the training run and the measured accuracy
//   fact_model.json      the recipe (name, seed) and the measured figures, for
//                        tools and tests (EvaluateFactModel, RecipeOfModelDir)
//
// Determinism: the world, tokenizer, corpus, counterfact cases and initial
// weights depend only on the seed. Training is bit-reproducible for a seed
// and a fixed intra-op thread count (torch::set_num_threads) on one machine;
// other thread counts or BLAS builds reorder float reductions, so weights
// (and, rarely, which facts are "known") can differ.
#ifndef ROMED_TOOLS_FACT_MODEL_FACT_MODEL_H_
#define ROMED_TOOLS_FACT_MODEL_FACT_MODEL_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "server/model/gpt2_config.h"
#include "tools/fact_model/corpus.h"
#include "tools/fact_model/counterfact.h"
#include "tools/fact_model/evaluation.h"
#include "tools/fact_model/trainer.h"
#include "tools/fact_model/world.h"

namespace romed::fact_model {

struct FactModelRecipe {
  std::string name = "full";    // "full" or "quick", for the README
  uint64_t seed = 1;            // every other seed is derived from this one
  WorldOptions world;           // world.seed is overwritten from `seed`
  CorpusOptions corpus;
  Gpt2Config shape;             // vocab_size / eos / bos come from the tokenizer
  int64_t bpe_vocab_size = 2048;   // size of the trained BPE vocabulary (name parts
                                   // and objects need ~1600)
  int bpe_documents = 3000;     // documents the BPE is trained on
  int stats_documents = 4000;   // lines of stats_corpus.txt
  int sentences_per_document = 8;
  TrainOptions train;
  CounterFactOptions counterfact;
};

// The recipe: 400 people (40 first x 50 last names), 6 relations,
// 4 layers x d_model 128 x 4 heads, context 64, 64 x 64-token batches.
FactModelRecipe FullRecipe(uint64_t seed);
// A small, fast variant for unit tests of other components (60 people,
// 6 objects per relation, 2 layers x 64, ~200 steps); quality not guaranteed.
FactModelRecipe QuickRecipe(uint64_t seed);

// The world `recipe` trains on (its seed derived from recipe.seed).
absl::StatusOr<World> BuildWorld(const FactModelRecipe& recipe);

struct FactModelReport {
  TrainReport training;
  FactEvaluation facts;
  CounterFactEvaluation counterfact;
  int64_t num_known = 0;
  int64_t num_cases = 0;
  int64_t vocab_size = 0;
  int64_t num_parameters = 0;
  int threads = 0;
  double total_seconds = 0;      // wall time of the whole run
  double total_cpu_seconds = 0;  // CPU time of the process (all threads) in that time
};

struct MakeOptions {
  bool force = false;  // replace a non-empty out_dir
};

// Makes the model described by `recipe` into `out_dir` (via a staging
// directory renamed into place; on error nothing is left behind). Progress
// lines go to `log` if non-null. Errors: StagingDir::Create's errors for
// `out_dir` (AlreadyExistsError for a non-empty one without force,
// PermissionDeniedError if not writable); FailedPreconditionError if the BPE
// leaves a name part or object in several tokens; InternalError if training
// or a write fails.
absl::StatusOr<FactModelReport> MakeFactModel(const FactModelRecipe& recipe,
                                              const std::string& out_dir,
                                              const MakeOptions& options, std::ostream* log);

// The recipe a model directory was made with, from its fact_model.json.
// NotFoundError if the file is missing; DataLossError if it does not parse
// or names an unknown recipe.
absl::StatusOr<FactModelRecipe> RecipeOfModelDir(const std::string& dir);

// Loads the checkpoint in `dir` (made with `recipe`) and measures it again
// on the recipe's world: fills `facts`, `counterfact`, `num_cases`,
// `vocab_size` and `num_parameters` of the report (training fields stay
// zero). Errors: LoadCheckpoint's; FailedPreconditionError if an object is
// not one token of its tokenizer; InternalError if torch throws.
absl::StatusOr<FactModelReport> EvaluateFactModel(const FactModelRecipe& recipe,
                                                  const std::string& dir);

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_FACT_MODEL_H_
