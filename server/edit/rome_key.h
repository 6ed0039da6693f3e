// ROME's key k* (ROME.md section 3.2): the input of W_proj (hook kMlpIn) at
// the edit layer and the fact token, averaged over the prompt placed in each
// context template, computed on the session's CURRENT state (its deltas
// apply to every forward).
#ifndef ROMED_SERVER_EDIT_ROME_KEY_H_
#define ROMED_SERVER_EDIT_ROME_KEY_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "server/edit/edit_site.h"
#include "server/model/gpt2_model.h"
#include "server/model/rank_one.h"
#include "server/model/tokenizer.h"

namespace romed {

// Notation: M key width, C model width, R = number of context templates.
struct RomeKey {
  torch::Tensor k_star;       // [M] float64 CPU: mean key over the R templates
  torch::Tensor bare_key;     // [M] float64 CPU: key of the bare prompt (template "{}")
  torch::Tensor bare_output;  // [C] float64 CPU: MLP output there on the current state
  std::vector<FilledPrompt> prompts;  // [R] the filled prompts, fact positions included
};

// `templates` are context templates (each with one "{}", the first should
// be "{}" itself: its row gives bare_key / bare_output). Errors: those of
// FillPrompt (InvalidArgumentError), InvalidArgumentError if a filled prompt
// is longer than the context, InternalError from the forward pass.
absl::StatusOr<RomeKey> ComputeKey(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                   const std::shared_ptr<const EditView>& current,
                                   const std::vector<std::string>& templates,
                                   std::string_view prompt_template, std::string_view subject,
                                   const EditSite& site);

}  // namespace romed

#endif  // ROMED_SERVER_EDIT_ROME_KEY_H_
