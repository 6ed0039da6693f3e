// The noise of a causal trace: its scale (the std of token embeddings,
// measured once per model and cached) and the seeded draw itself.
//
// The paper sets nu = 3 x the std of the embeddings of subject tokens over a
// set of subjects (its known facts). romed measures exactly that when the
// model ships known facts (the fact model does), and falls back to the std of
// all vocabulary embeddings otherwise; TraceResult::noise_basis says which.
#ifndef ROMED_SERVER_TRACE_NOISE_H_
#define ROMED_SERVER_TRACE_NOISE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "server/model/gpt2_model.h"
#include "server/model/tokenizer.h"

namespace romed {

// Std over every element of the token embeddings (wte rows, positions not
// added) of the tokens of `subjects`, each tokenised alone, as the reference's
// collect_embedding_std. InvalidArgumentError if `subjects` yields no tokens.
absl::StatusOr<double> SubjectEmbeddingStd(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                           const std::vector<std::string>& subjects);

// Std over every element of wte [V, C].
absl::StatusOr<double> VocabularyEmbeddingStd(const Gpt2Model& model);

// The noise added to the subject's token embeddings: sigma x N(0, 1) drawn
// from a CPU generator seeded with `seed`, [samples, num_tokens, width], in
// `options`' dtype and device. Same arguments, same tensor, on any machine.
torch::Tensor SubjectNoise(int64_t samples, int64_t num_tokens, int64_t width, double sigma,
                           uint64_t seed, torch::TensorOptions options);

// Embedding std per model (keyed by the caller, e.g. the checkpoint's
// checksum), computed on first use. Thread-safe; concurrent first calls for
// one key may both compute (the result is the same). Errors are not cached.
class EmbeddingStdCache {
 public:
  absl::StatusOr<double> GetOrCompute(const std::string& model_key,
                                      const std::function<absl::StatusOr<double>()>& compute);

 private:
  std::mutex mutex_;
  std::map<std::string, double> std_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace romed

#endif  // ROMED_SERVER_TRACE_NOISE_H_
