// Loading and saving a GPT-2 model directory in the Hugging Face layout:
//   config.json                      Gpt2Config
//   model.safetensors                weights, or
//   model.safetensors.index.json     {"weight_map": {name: shard file}} + shards
//   vocab.json, merges.txt           the byte-level BPE tokenizer
// Tensor names may carry the "transformer." prefix or not; "lm_head.weight"
// may be present (it must equal wte; it is tied) or absent.
//
// Loading runs in named phases (config, tokenizer, tensors); each error says
// which phase, which file and which tensor.
#ifndef ROMED_SERVER_MODEL_CHECKPOINT_H_
#define ROMED_SERVER_MODEL_CHECKPOINT_H_

#include <memory>
#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "server/model/gpt2_config.h"
#include "server/model/gpt2_weights.h"
#include "server/model/tokenizer.h"

namespace romed {

struct LoadOptions {
  // Where the weights live after loading.
  torch::Device device = torch::kCPU;
  // Compute dtype; stored fp16/bf16/fp32 are converted to it.
  torch::Dtype dtype = torch::kFloat32;
};

// The texts of a checkpoint's vocab.json and merges.txt.
struct TokenizerFiles {
  std::string vocab_json;
  std::string merges_txt;
};

struct Checkpoint {
  std::string dir;
  Gpt2Config config;
  Gpt2Weights weights;                   // validated, on options.device, options.dtype
  std::shared_ptr<const Gpt2Tokenizer> tokenizer;
  std::string stored_dtype;              // "F32", "F16" or "BF16" as found on disk
  // Hex SHA-256 over config.json and the weight file(s) as stored: identifies
  // the base model (edits, statistics and exports are keyed by it).
  std::string checksum;
  // vocab.json and merges.txt as read (for writing derived checkpoints).
  TokenizerFiles tokenizer_files;
};

// Loads `dir`. Errors: NotFoundError (dir or a required file missing),
// DataLossError (corrupt safetensors / JSON), InvalidArgumentError (config
// inconsistent, tensor missing or mis-shaped, vocab size mismatch). Every
// message names the file and, where relevant, the tensor.
absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& dir,
                                          const LoadOptions& options = {});

// Writes config.json, model.safetensors (float32 unless `dtype` says
// otherwise), vocab.json and merges.txt (copied from `vocab_json` /
// `merges_txt` text) into `dir`, which must exist. lm_head is not written
// (tied), names carry no prefix, exactly as HF's gpt2 repository.
absl::Status SaveCheckpoint(const std::string& dir, const Gpt2Config& config,
                            const Gpt2Weights& weights, const std::string& vocab_json,
                            const std::string& merges_txt,
                            torch::Dtype dtype = torch::kFloat32);

// The texts of vocab.json and merges.txt for the smallest complete GPT-2
// tokenizer: id b is byte b's bytes_to_unicode() symbol (b in 0..255),
// "<|endoftext|>" is 256 (so V = 257), and there are no merges (merges.txt is
// only the "#version: 0.2" line). Any UTF-8 text encodes, one token per byte.
// Random models (romed-random-model --byte_level) and tests use it.
TokenizerFiles ByteLevelTokenizerFiles();

}  // namespace romed

#endif  // ROMED_SERVER_MODEL_CHECKPOINT_H_
