// RomeOptions: ROME's hyperparameters (ROME.md section 3), with the released
// GPT-2 Medium / Large / XL values as per-model defaults.
//
//   RomeOptions options = DefaultRomeOptions(model.config());
//   options.layer = 3;                       // a per-request override
//   RETURN_IF_ERROR(ValidateRomeOptions(options, model.config()));
#ifndef ROMED_SERVER_EDIT_ROME_OPTIONS_H_
#define ROMED_SERVER_EDIT_ROME_OPTIONS_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "server/edit/edit_site.h"
#include "server/model/gpt2_config.h"

namespace romed {

// Which key enters Lambda's numerator and denominator (ROME.md 3.4).
enum class UpdateKeyForm {
  // r-ROME: the template-averaged k* everywhere, so W_hat k* = v* exactly.
  kConsistent,
  // The released code: u = C^-1 k* (averaged), but Lambda uses the bare
  // prompt's key: Lambda = (v* - W k_bare) / (u . k_bare). Can cause
  // "disabling edits"; kept for comparison with the paper.
  kReleasedCode,
};

// "consistent" / "released_code"; ParseUpdateKeyForm: InvalidArgumentError otherwise.
std::string_view UpdateKeyFormName(UpdateKeyForm form);
absl::StatusOr<UpdateKeyForm> ParseUpdateKeyForm(std::string_view name);

struct ContextTemplateOptions {
  // (tokens per text, number of texts); the paper's [[5, 10], [10, 10]].
  int64_t short_length = 5;
  int64_t short_count = 10;
  int64_t long_length = 10;
  int64_t long_count = 10;
  int64_t top_k = 5;      // sampling from the model, temperature 1
  uint64_t seed = 1234;   // same model + seed -> same templates
};

struct RomeOptions {
  // Edit layer (0-based). -1: the per-model default (DefaultRomeOptions).
  int64_t layer = -1;
  // Where the key is read and the value delta is added.
  FactToken fact_token = FactToken::kSubjectLast;

  // --- value optimisation (v*) ---
  int64_t v_num_grad_steps = 20;     // at most this many loss evaluations (>= 1)
  double v_lr = 0.5;                 // Adam learning rate (> 0)
  double v_weight_decay = 0.5;       // weight of ||delta|| / ||v_init||^2 (>= 0)
  double kl_factor = 0.0625;         // weight of KL(essence now || essence before) (>= 0)
  double clamp_norm_factor = 4.0;    // ||delta|| <= factor * ||v_init|| after each step (> 0)
  double early_stop_loss = 0.05;     // stop when the loss falls below this (>= 0)

  // --- update ---
  // true: u = C^-1 k* with C from the CovarianceProvider; false: C = I.
  bool mom2_adjustment = true;
  UpdateKeyForm key_form = UpdateKeyForm::kConsistent;

  ContextTemplateOptions templates;
};

// The defaults for a model shape:
//  - GPT-2 Medium shape (24 layers, C 1024): layer 8, clamp_norm_factor 3;
//  - GPT-2 Large (36, 1280): layer 12; GPT-2 XL (48, 1600): layer 17
//    (clamp 4), all with fact_token subject_last (the released files);
//  - any other shape: fact_token subject_last at the paper's relative depth,
//    layer = round(17/48 * L) (GPT-2 XL's 17 of 48), clamp 1.5 (measured on
//    the fact model: 4 leaked to 14% of neighbours, see rome_options.cc). This is a
//    starting point only: the service should prefer the model's tracing
//    recommendation (for the small fact model that is fact_token last at the
//    top layer, ROME.md section 8).
RomeOptions DefaultRomeOptions(const Gpt2Config& config);

// InvalidArgumentError naming the field: layer outside [0, L) (after -1 was
// resolved; -1 itself is accepted), v_num_grad_steps < 1, v_lr <= 0 or not
// finite, negative v_weight_decay / kl_factor / early_stop_loss,
// clamp_norm_factor <= 0, template lengths or counts < 0, top_k < 1.
absl::Status ValidateRomeOptions(const RomeOptions& options, const Gpt2Config& config);

}  // namespace romed

#endif  // ROMED_SERVER_EDIT_ROME_OPTIONS_H_
