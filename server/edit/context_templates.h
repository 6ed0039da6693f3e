// ROME's context templates (ROME.md section 3.1): "{}" plus short texts
// sampled from the model itself, each followed by ". {}". The key is
// averaged over the prompt placed in each template, and the value is
// optimised over all of them, so the edit does not hinge on one context.
//
//   ASSIGN_OR_RETURN(auto templates, cache.Get(model, tokenizer, options.templates));
//   // (*templates)[0] == "{}", (*templates)[1] == "The city of the. {}", ...
#ifndef ROMED_SERVER_EDIT_CONTEXT_TEMPLATES_H_
#define ROMED_SERVER_EDIT_CONTEXT_TEMPLATES_H_

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "server/edit/rome_options.h"
#include "server/model/gpt2_model.h"
#include "server/model/tokenizer.h"

namespace romed {

// Samples short_count texts of short_length tokens and long_count texts of
// long_length tokens from the BASE model (no edits), starting from the
// start token (the tokenizer's "<|endoftext|>", else config.bos_token_id),
// top-k sampling at temperature 1, text i seeded with options.seed + i.
// Each text has "{" and "}" removed (as the reference does) and gets ". {}"
// appended. Returns "{}" followed by those texts: 1 + short_count +
// long_count templates, each with exactly one "{}". Deterministic for
// (model, options). Texts stop early at "<|endoftext|>". InvalidArgumentError
// if the lengths do not fit the context; InternalError if generation fails.
absl::StatusOr<std::vector<std::string>> GenerateContextTemplates(
    const Gpt2Model& model, const Gpt2Tokenizer& tokenizer, const ContextTemplateOptions& options);

// Memoises GenerateContextTemplates per options. Use one cache per base
// model (the engine keeps one beside each loaded model). Thread-safe;
// concurrent first calls with the same options may both generate (the
// results are identical; one is kept).
class ContextTemplateCache {
 public:
  absl::StatusOr<std::shared_ptr<const std::vector<std::string>>> Get(
      const Gpt2Model& model, const Gpt2Tokenizer& tokenizer, const ContextTemplateOptions& options);

 private:
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, uint64_t>;
  std::mutex mutex_;
  std::map<Key, std::shared_ptr<const std::vector<std::string>>> cached_;  // GUARDED_BY(mutex_)
};

}  // namespace romed

#endif  // ROMED_SERVER_EDIT_CONTEXT_TEMPLATES_H_
