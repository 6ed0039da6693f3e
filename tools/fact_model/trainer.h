// Trainer: next-token training of a GPT-2 (Gpt2Model::Forward under autograd)
// on rows from a RowSampler.
//
// Recipe (defaults below): AdamW (beta 0.9 / 0.98), weight decay on the
// projection matrices only (not on LayerNorms, biases or embeddings), linear
// warm-up then cosine decay to min_lr_fraction * lr, gradient clipping by
// global norm, cross-entropy on every position of every row.
//
// Determinism: weights come from Gpt2Weights::Random(config, seed) and rows
// from the sampler's seed, so a run is fully determined by its seeds and the
// number of intra-op threads; with a different thread count float reductions
// are ordered differently and results differ in the last bits (and from there
// the trajectory drifts).
#ifndef ROMED_TOOLS_FACT_MODEL_TRAINER_H_
#define ROMED_TOOLS_FACT_MODEL_TRAINER_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "server/model/gpt2_config.h"
#include "server/model/gpt2_weights.h"
#include "tools/fact_model/corpus.h"

namespace romed::fact_model {

struct TrainOptions {
  int64_t steps = 1200;            // optimiser steps (1200 measured: every fact known)
  int64_t batch_rows = 64;         // B; each row is T = n_positions tokens
  double learning_rate = 3e-3;     // peak
  int64_t warmup_steps = 100;      // linear warm-up from 0
  double min_lr_fraction = 0.1;    // cosine decays to this share of the peak
  double weight_decay = 0.1;       // on 2-D projection weights only
  double beta1 = 0.9;
  double beta2 = 0.98;
  double grad_clip_norm = 1.0;     // global L2 norm; <= 0 disables
  int64_t log_every = 100;         // steps between progress reports
};

struct TrainReport {
  int64_t steps = 0;
  double first_loss = 0;           // loss of step 1
  double final_loss = 0;           // mean loss over the last min(50, steps) steps
  double seconds = 0;              // wall time of the training loop
  double cpu_seconds = 0;          // CPU time of the process during the loop (all
                                   // threads; robust to other load on the machine)
  std::vector<std::pair<int64_t, double>> loss_curve;  // (step, mean loss since last point)
};

// Learning rate at `step` (0-based) under `options`.
double LearningRateAt(const TrainOptions& options, int64_t step);

using TrainProgress = std::function<void(int64_t step, double loss, double seconds)>;

// Trains `weights` (shaped for `config`, float32, CPU) in place. The sampler's
// row_tokens() must be config.n_positions + 1. Errors: InvalidArgumentError
// for inconsistent options; InternalError (with context) if torch throws.
absl::StatusOr<TrainReport> Train(const Gpt2Config& config, Gpt2Weights& weights,
                                  RowSampler& sampler, const TrainOptions& options,
                                  const TrainProgress& progress = nullptr);

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_TRAINER_H_
