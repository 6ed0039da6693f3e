#include "server/edit/context_templates.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/model/generator.h"

namespace romed {
namespace {

// A non-owning shared_ptr: Generator takes shared ownership, the caller
// keeps the model alive for the duration of the call.
template <typename T>
std::shared_ptr<const T> Borrow(const T& object) {
  return std::shared_ptr<const T>(&object, [](const T*) {});
}

absl::StatusOr<std::vector<std::string>> SampleTexts(const Generator& generator,
                                                     int64_t start_token, int64_t length,
                                                     int64_t count, uint64_t first_seed,
                                                     int64_t top_k) {
  std::vector<GenerateRequest> requests(count);
  for (int64_t i = 0; i < count; ++i) {
    requests[i].prompt_ids = {start_token};
    requests[i].max_new_tokens = length;
    requests[i].sampling.temperature = 1.0f;
    requests[i].sampling.top_k = top_k;
    requests[i].sampling.seed = first_seed + static_cast<uint64_t>(i);
  }
  std::vector<std::string> texts;
  if (count == 0) return texts;
  ASSIGN_OR_RETURN(std::vector<GenerateResult> results, generator.GenerateBatch(requests));
  for (const GenerateResult& result : results) {
    std::string text = result.text;
    text.erase(std::remove_if(text.begin(), text.end(), [](char c) { return c == '{' || c == '}'; }),
               text.end());
    texts.push_back(text + ". {}");
  }
  return texts;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> GenerateContextTemplates(
    const Gpt2Model& model, const Gpt2Tokenizer& tokenizer, const ContextTemplateOptions& options) {
  const int64_t longest = std::max(options.short_length, options.long_length);
  if (options.short_length < 1 || options.long_length < 1 || longest + 1 > model.config().n_positions) {
    return absl::InvalidArgumentError(absl::StrCat(
        "context template lengths ", options.short_length, " and ", options.long_length,
        " must be >= 1 and fit the context of ", model.config().n_positions, " tokens"));
  }
  const int64_t start_token =
      tokenizer.eos_id() >= 0 ? tokenizer.eos_id() : model.config().bos_token_id;
  Generator generator(Borrow(model), Borrow(tokenizer));
  std::vector<std::string> templates = {"{}"};
  ASSIGN_OR_RETURN(std::vector<std::string> short_texts,
                   SampleTexts(generator, start_token, options.short_length, options.short_count,
                               options.seed, options.top_k));
  ASSIGN_OR_RETURN(std::vector<std::string> long_texts,
                   SampleTexts(generator, start_token, options.long_length, options.long_count,
                               options.seed + static_cast<uint64_t>(options.short_count),
                               options.top_k));
  templates.insert(templates.end(), short_texts.begin(), short_texts.end());
  templates.insert(templates.end(), long_texts.begin(), long_texts.end());
  return templates;
}

absl::StatusOr<std::shared_ptr<const std::vector<std::string>>> ContextTemplateCache::Get(
    const Gpt2Model& model, const Gpt2Tokenizer& tokenizer, const ContextTemplateOptions& options) {
  const Key key{options.short_length, options.short_count, options.long_length,
                options.long_count,   options.top_k,       options.seed};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cached_.find(key);
    if (it != cached_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(std::vector<std::string> templates,
                   GenerateContextTemplates(model, tokenizer, options));
  auto shared = std::make_shared<const std::vector<std::string>>(std::move(templates));
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_.emplace(key, shared).first->second;
}

}  // namespace romed
