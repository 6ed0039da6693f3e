// Covariance statistics for ROME (ROME.md section 4): C = E[k k^T], the
// uncentred second moment of the keys (inputs of W_proj, hook kMlpIn) at one
// layer over every token of a local text corpus. Computed once, cached on
// disk, never downloaded.
//
//   CorpusCovarianceOptions options;
//   options.corpus_path = dir + "/stats_corpus.txt";
//   options.state_dir = "/var/lib/romed";
//   options.model_checksum = checkpoint.checksum;
//   CorpusCovariance provider(model, tokenizer, options);
//   ASSIGN_OR_RETURN(auto stats, provider.Get(/*layer=*/3));   // computes or loads
//   // stats->moment [M, M] float64, stats->cholesky [M, M] lower, float64
//
// Corpus: a UTF-8 file, or a directory whose regular files (recursively,
// names starting with "." skipped) are read in byte order of their relative
// paths. Each file is encoded whole and cut into rows of up to the model's
// context length P (consecutive tokens; the last row of a file may be
// shorter); rows never span files. `max_tokens` > 0 keeps the first
// max_tokens tokens of that stream.
//
// Cache: <state_dir>/stats/<model_checksum>/layer<l>-<corpus sha256>-<tokens>.safetensors,
// keyed by (model checksum, layer, corpus checksum (SHA-256 over each
// file's relative path and bytes), token count). The moment is stored as
// float64 bits in an I64 tensor "moment_f64_bits" (safetensors writers here
// take no F64), with the key repeated in __metadata__ and checked on load.
#ifndef ROMED_SERVER_EDIT_COVARIANCE_H_
#define ROMED_SERVER_EDIT_COVARIANCE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "server/model/gpt2_model.h"
#include "server/model/tokenizer.h"

namespace romed {

// Notation: M = MLP width (key width), N = tokens.

struct CovarianceStats {
  int64_t layer = 0;
  torch::Tensor moment;     // [M, M] float64 CPU: E[k k^T] (I for the identity)
  torch::Tensor cholesky;   // [M, M] float64 CPU: lower L, L L^T = moment + ridge I
  double ridge = 0.0;       // added to the diagonal when `moment` was not positive definite
  int64_t token_count = 0;  // N (0 for the identity)
  bool identity = false;    // C = I (no statistics)
  bool loaded_from_cache = false;  // read from disk rather than computed in this call
  std::string cache_path;   // the file it was read from or written to ("" if none)
  std::string source;       // for replies: "identity" or "corpus <path>, N tokens"
};

// The source of C for an edit. Implementations are thread-safe.
class CovarianceProvider {
 public:
  virtual ~CovarianceProvider() = default;
  // C at `layer` of the provider's model. Errors are the implementation's.
  virtual absl::StatusOr<std::shared_ptr<const CovarianceStats>> Get(int64_t layer) = 0;
};

// C = I for every layer (the "identity" option: the update is then the
// minimum-norm rank-one change). Needs only the key width M.
class IdentityCovariance : public CovarianceProvider {
 public:
  explicit IdentityCovariance(int64_t mlp_width) : mlp_width_(mlp_width) {}
  absl::StatusOr<std::shared_ptr<const CovarianceStats>> Get(int64_t layer) override;

 private:
  int64_t mlp_width_;
};

struct CovarianceProgress {
  int64_t layer = 0;
  int64_t tokens_done = 0;
  int64_t tokens_total = 0;
  double elapsed_s = 0.0;
  double eta_s = 0.0;  // estimated seconds left (0 until the first batch is done)
};

struct CorpusCovarianceOptions {
  std::string corpus_path;     // UTF-8 file or directory (required)
  std::string state_dir;       // cache root; "" = no disk cache (memory only)
  std::string model_checksum;  // identifies the base model in the cache key (required with state_dir)
  int64_t max_tokens = 0;      // 0 = the whole corpus
  int64_t batch_tokens = 4096; // tokens per forward (rows = max(1, batch_tokens / P))
  // Called after every batch (from the computing thread). May be empty.
  std::function<void(const CovarianceProgress&)> on_progress;
  // Polled between batches; returning true aborts with CancelledError. May be empty.
  std::function<bool()> cancelled;
};

// Per-call settings of CorpusCovariance::Get (the options' hooks when unset).
struct CovarianceCallOptions {
  // Ignore the memory and disk caches: compute again and overwrite the file.
  bool recompute = false;
  // Replace CorpusCovarianceOptions::on_progress / cancelled for this call.
  std::function<void(const CovarianceProgress&)> on_progress;
  std::function<bool()> cancelled;
};

// Computes E[k k^T] from a corpus with the BASE model (statistics describe
// the unedited keys, as in ROME), caching on disk and in memory by layer.
// Errors from Get: NotFoundError (corpus path missing), FailedPrecondition
// (corpus empty or without a single token; layer outside the model;
// missing model_checksum with a state_dir), InvalidArgumentError (corpus
// not UTF-8, naming the file), CancelledError, InternalError (forward
// pass; the cache directory or file cannot be written). A cache file that
// cannot be read or whose metadata does not match its key is recomputed and
// overwritten. The model and tokenizer must outlive the provider.
// Thread-safe; one computation at a time per provider.
class CorpusCovariance : public CovarianceProvider {
 public:
  CorpusCovariance(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                   CorpusCovarianceOptions options);
  absl::StatusOr<std::shared_ptr<const CovarianceStats>> Get(int64_t layer) override;
  // The same with per-call hooks (a ComputeStats call streams its own
  // progress and polls its own cancellation) or a forced recomputation.
  absl::StatusOr<std::shared_ptr<const CovarianceStats>> Get(int64_t layer,
                                                             const CovarianceCallOptions& call);

  // The statistics at `layer` if this provider already holds them in memory
  // (no corpus read, no computation); null otherwise.
  std::shared_ptr<const CovarianceStats> Cached(int64_t layer);

  const CorpusCovarianceOptions& options() const { return options_; }

  // The cache file Get(layer) would use (needs the corpus to be read for its
  // checksum and token count). "" without a state_dir.
  absl::StatusOr<std::string> CachePath(int64_t layer);

 private:
  struct Corpus {
    std::string checksum;                  // hex SHA-256
    std::vector<std::vector<int64_t>> rows;  // each <= P tokens
    int64_t token_count = 0;
  };
  absl::StatusOr<const Corpus*> LoadCorpus();  // EXCLUSIVE_LOCKS_REQUIRED(mutex_)
  absl::StatusOr<std::shared_ptr<const CovarianceStats>> ComputeOrLoad(
      int64_t layer, const CovarianceCallOptions& call);

  const Gpt2Model& model_;
  const Gpt2Tokenizer& tokenizer_;
  CorpusCovarianceOptions options_;
  std::mutex mutex_;
  std::unique_ptr<Corpus> corpus_;                                   // GUARDED_BY(mutex_)
  std::map<int64_t, std::shared_ptr<const CovarianceStats>> by_layer_;  // GUARDED_BY(mutex_)
};

// E[k k^T] at `layer` over `rows` (token ids, each <= P) with the base
// model: the computation behind CorpusCovariance, exposed for tests and the
// benchmark. [M, M] float64 CPU. `on_progress` / `cancelled` as above.
// Throws nothing; InternalError if the forward fails.
absl::StatusOr<torch::Tensor> ComputeSecondMoment(
    const Gpt2Model& model, int64_t layer, const std::vector<std::vector<int64_t>>& rows,
    int64_t batch_tokens, const std::function<void(const CovarianceProgress&)>& on_progress = {},
    const std::function<bool()>& cancelled = {});

// Cholesky factor of `moment` [M, M] float64; if it is not positive
// definite, adds ridge = 1e-10, 1e-9, ... times its mean diagonal (at most
// up to 1e-2 of it) until it is. Writes the ridge used to `*ridge`.
// FailedPreconditionError if no ridge makes it positive definite.
absl::StatusOr<torch::Tensor> RegularisedCholesky(const torch::Tensor& moment, double* ridge);

// The files of a corpus (file or directory, as above) in read order, as
// (relative name, full path); a single file's relative name is its file
// name. NotFoundError if `path` does not exist, FailedPreconditionError if
// it holds no file.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListCorpusFiles(
    const std::string& path);

}  // namespace romed

#endif  // ROMED_SERVER_EDIT_COVARIANCE_H_
