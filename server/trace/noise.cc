#include "server/trace/noise.h"

#include <ATen/CPUGeneratorImpl.h>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"

namespace romed {

absl::StatusOr<double> SubjectEmbeddingStd(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                           const std::vector<std::string>& subjects) {
  std::vector<int64_t> ids;
  for (const std::string& subject : subjects) {
    ASSIGN_OR_RETURN(std::vector<int64_t> tokens, tokenizer.Encode(subject));
    ids.insert(ids.end(), tokens.begin(), tokens.end());
  }
  if (ids.empty()) {
    return absl::InvalidArgumentError("embedding std: the subjects have no tokens");
  }
  return GuardTorch("embedding std over subject tokens", [&] {
    torch::NoGradGuard no_grad;
    torch::Tensor index = torch::tensor(ids, torch::kInt64).to(model.device());
    torch::Tensor rows = model.weights().wte.index_select(0, index).to(torch::kFloat64);
    return rows.std().item<double>();
  });
}

absl::StatusOr<double> VocabularyEmbeddingStd(const Gpt2Model& model) {
  return GuardTorch("embedding std over the vocabulary", [&] {
    torch::NoGradGuard no_grad;
    return model.weights().wte.to(torch::kFloat64).std().item<double>();
  });
}

torch::Tensor SubjectNoise(int64_t samples, int64_t num_tokens, int64_t width, double sigma,
                           uint64_t seed, torch::TensorOptions options) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  torch::Tensor noise = torch::randn({samples, num_tokens, width}, generator,
                                     torch::TensorOptions().dtype(torch::kFloat32));
  return (noise * sigma).to(options);
}

absl::StatusOr<double> EmbeddingStdCache::GetOrCompute(
    const std::string& model_key, const std::function<absl::StatusOr<double>()>& compute) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = std_.find(model_key);
    if (it != std_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(double value, compute());
  std::lock_guard<std::mutex> lock(mutex_);
  std_.emplace(model_key, value);
  return value;
}

}  // namespace romed
