#include "server/edit/covariance.h"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"
#include "server/edit/prompt_batch.h"
#include "server/model/safetensors.h"

// Notation: M key width, N tokens, B rows per batch, T longest row of a batch.
namespace romed {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kFormat[] = "romed.covariance.v1";
constexpr char kMomentName[] = "moment_f64_bits";

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  void Update(std::string_view bytes) { EVP_DigestUpdate(ctx_, bytes.data(), bytes.size()); }
  std::string HexDigest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(ctx_, digest, &length);
    std::string hex;
    char buf[3];
    for (unsigned int i = 0; i < length; ++i) {
      std::snprintf(buf, sizeof(buf), "%02x", digest[i]);
      hex += buf;
    }
    return hex;
  }

 private:
  EVP_MD_CTX* ctx_;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read corpus file ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Keeps [0-9A-Za-z_-] so a checksum (or any id) is a safe directory name.
std::string SafeName(const std::string& id) {
  std::string out;
  for (char c : id) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') out += c;
  }
  return out.substr(0, 64);
}

std::string MetaString(const std::map<std::string, std::string>& meta, const std::string& key) {
  auto it = meta.find(key);
  return it == meta.end() ? "" : it->second;
}

// The moment stored at `path` if its metadata matches `expected` exactly;
// an undefined tensor if the file is missing, unreadable or for another key.
torch::Tensor ReadCachedMoment(const std::string& path,
                               const std::map<std::string, std::string>& expected, int64_t m) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return torch::Tensor();
  auto file = SafetensorsFile::Open(path);
  if (!file.ok()) return torch::Tensor();
  for (const auto& [key, value] : expected) {
    if (MetaString((*file)->metadata(), key) != value) return torch::Tensor();
  }
  auto bits = (*file)->Read(kMomentName);
  if (!bits.ok() || bits->scalar_type() != torch::kInt64 || bits->dim() != 2 ||
      bits->size(0) != m || bits->size(1) != m) {
    return torch::Tensor();
  }
  return bits->view(torch::kFloat64).clone();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const CovarianceStats>> IdentityCovariance::Get(int64_t layer) {
  auto stats = std::make_shared<CovarianceStats>();
  stats->layer = layer;
  stats->moment = torch::eye(mlp_width_, torch::kFloat64);
  stats->cholesky = stats->moment;
  stats->identity = true;
  stats->source = "identity";
  return stats;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ListCorpusFiles(
    const std::string& path) {
  std::error_code ec;
  if (path.empty()) return absl::NotFoundError("no statistics corpus given");
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat("statistics corpus ", path, " does not exist"));
  }
  std::vector<std::pair<std::string, std::string>> files;
  if (!fs::is_directory(path, ec)) {
    files.emplace_back(fs::path(path).filename().string(), path);
    return files;
  }
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec)) {
      files.emplace_back(fs::relative(it->path(), path, ec).string(), it->path().string());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("statistics corpus directory ", path, " holds no files"));
  }
  return files;
}

absl::StatusOr<torch::Tensor> ComputeSecondMoment(
    const Gpt2Model& model, int64_t layer, const std::vector<std::vector<int64_t>>& rows,
    int64_t batch_tokens, const std::function<void(const CovarianceProgress&)>& on_progress,
    const std::function<bool()>& cancelled) {
  const int64_t m = model.config().mlp_width();
  int64_t total = 0;
  for (const auto& row : rows) total += static_cast<int64_t>(row.size());
  const size_t per_batch = static_cast<size_t>(
      std::max<int64_t>(1, batch_tokens / std::max<int64_t>(1, model.config().n_positions)));
  const Clock::time_point start = Clock::now();
  torch::Tensor moment = torch::zeros({m, m}, torch::kFloat64);  // [M, M] sum of k k^T
  int64_t done = 0;
  for (size_t first = 0; first < rows.size(); first += per_batch) {
    if (cancelled && cancelled()) {
      return absl::CancelledError(absl::StrCat("statistics at layer ", layer, " cancelled after ",
                                               done, " of ", total, " tokens"));
    }
    const size_t last = std::min(rows.size(), first + per_batch);
    RETURN_IF_ERROR(GuardTorch("statistics forward pass", [&] {
      torch::NoGradGuard no_grad;
      const PromptBatch batch = PadRight(rows, first, last);
      Interventions hooks;
      hooks.Capture({HookPoint::kMlpIn, layer});
      ForwardOptions options;
      options.interventions = &hooks;
      options.stop_after_layer = layer;
      model.Forward(batch.ToInput(model.device()), options);
      torch::Tensor keys = hooks.Captured({HookPoint::kMlpIn, layer});  // [B, T, M]
      torch::Tensor real = batch.mask.reshape({-1}).nonzero().squeeze(1).to(keys.device());
      torch::Tensor k = keys.reshape({-1, m}).index_select(0, real).to(torch::kCPU,
                                                                         torch::kFloat64);
      moment.addmm_(k.t(), k);  // [M, N] x [N, M]
      done += k.size(0);
    }));
    if (on_progress) {
      CovarianceProgress progress;
      progress.layer = layer;
      progress.tokens_done = done;
      progress.tokens_total = total;
      progress.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
      progress.eta_s = done > 0 ? progress.elapsed_s * static_cast<double>(total - done) / done : 0;
      on_progress(progress);
    }
  }
  if (done == 0) return absl::FailedPreconditionError("statistics corpus has no tokens");
  return moment / static_cast<double>(done);
}

absl::StatusOr<torch::Tensor> RegularisedCholesky(const torch::Tensor& moment, double* ridge) {
  return GuardTorch("Cholesky factor of the key covariance", [&]() -> absl::StatusOr<torch::Tensor> {
    const double scale = std::max(moment.diagonal().mean().item<double>(), 1e-30);
    torch::Tensor eye = torch::eye(moment.size(0), moment.options());
    for (double factor = 0.0; factor <= 1e-2; factor = factor == 0.0 ? 1e-10 : factor * 10) {
      auto [lower, info] = torch::linalg_cholesky_ex(moment + (factor * scale) * eye);
      if (info.item<int64_t>() == 0) {
        *ridge = factor * scale;
        return lower;
      }
    }
    return absl::FailedPreconditionError(
        "the key covariance is not positive definite even with a ridge of 1e-2 of its mean "
        "diagonal (corpus too small for the key width?)");
  });
}

CorpusCovariance::CorpusCovariance(const Gpt2Model& model, const Gpt2Tokenizer& tokenizer,
                                   CorpusCovarianceOptions options)
    : model_(model), tokenizer_(tokenizer), options_(std::move(options)) {}

absl::StatusOr<const CorpusCovariance::Corpus*> CorpusCovariance::LoadCorpus() {
  if (corpus_ != nullptr) return corpus_.get();
  ASSIGN_OR_RETURN(auto files, ListCorpusFiles(options_.corpus_path));
  auto corpus = std::make_unique<Corpus>();
  const int64_t context = model_.config().n_positions;
  const int64_t limit = options_.max_tokens > 0 ? options_.max_tokens : INT64_MAX;
  Sha256 sha;
  for (const auto& [name, full_path] : files) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(full_path));
    const std::string length = std::to_string(text.size());
    sha.Update(name);
    sha.Update(std::string_view("\0", 1));
    sha.Update(length);
    sha.Update(std::string_view("\0", 1));
    sha.Update(text);
    if (corpus->token_count >= limit) continue;  // checksum covers every file
    auto ids = tokenizer_.Encode(text);
    if (!ids.ok()) {
      return absl::Status(ids.status().code(), absl::StrCat("statistics corpus file ", full_path,
                                                            ": ", ids.status().message()));
    }
    for (size_t pos = 0; pos < ids->size() && corpus->token_count < limit; pos += context) {
      const int64_t take = std::min<int64_t>(
          {context, static_cast<int64_t>(ids->size() - pos), limit - corpus->token_count});
      corpus->rows.emplace_back(ids->begin() + pos, ids->begin() + pos + take);
      corpus->token_count += take;
    }
  }
  if (corpus->token_count == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("statistics corpus ", options_.corpus_path, " is empty (no tokens)"));
  }
  corpus->checksum = sha.HexDigest();
  corpus_ = std::move(corpus);
  return corpus_.get();
}

absl::StatusOr<std::string> CorpusCovariance::CachePath(int64_t layer) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (options_.state_dir.empty()) return std::string();
  ASSIGN_OR_RETURN(const Corpus* corpus, LoadCorpus());
  return (fs::path(options_.state_dir) / "stats" / SafeName(options_.model_checksum) /
          absl::StrCat("layer", layer, "-", corpus->checksum.substr(0, 16), "-",
                       corpus->token_count, ".safetensors"))
      .string();
}

absl::StatusOr<std::shared_ptr<const CovarianceStats>> CorpusCovariance::Get(int64_t layer) {
  return Get(layer, CovarianceCallOptions{});
}

std::shared_ptr<const CovarianceStats> CorpusCovariance::Cached(int64_t layer) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_layer_.find(layer);
  return it == by_layer_.end() ? nullptr : it->second;
}

absl::StatusOr<std::shared_ptr<const CovarianceStats>> CorpusCovariance::Get(
    int64_t layer, const CovarianceCallOptions& call) {
  if (layer < 0 || layer >= model_.config().n_layer) {
    return absl::FailedPreconditionError(absl::StrCat("no statistics for layer ", layer,
                                                      ": the model has ",
                                                      model_.config().n_layer, " layers"));
  }
  if (!options_.state_dir.empty() && SafeName(options_.model_checksum).empty()) {
    return absl::FailedPreconditionError(
        "statistics cache needs the model checksum (CorpusCovarianceOptions.model_checksum)");
  }
  if (!call.recompute) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_layer_.find(layer);
    if (it != by_layer_.end()) return it->second;
  }
  return ComputeOrLoad(layer, call);
}

absl::StatusOr<std::shared_ptr<const CovarianceStats>> CorpusCovariance::ComputeOrLoad(
    int64_t layer, const CovarianceCallOptions& call) {
  ASSIGN_OR_RETURN(std::string path, CachePath(layer));
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = by_layer_.find(layer);
  if (it != by_layer_.end() && !call.recompute) return it->second;
  ASSIGN_OR_RETURN(const Corpus* corpus, LoadCorpus());
  const int64_t m = model_.config().mlp_width();
  const std::map<std::string, std::string> meta = {
      {"format", kFormat},
      {"model_checksum", options_.model_checksum},
      {"layer", std::to_string(layer)},
      {"corpus_checksum", corpus->checksum},
      {"token_count", std::to_string(corpus->token_count)},
      {"mlp_width", std::to_string(m)}};
  auto stats = std::make_shared<CovarianceStats>();
  stats->layer = layer;
  stats->token_count = corpus->token_count;
  stats->cache_path = path;
  stats->source = absl::StrCat("corpus ", options_.corpus_path, ", ", corpus->token_count,
                               " tokens");
  if (!path.empty() && !call.recompute) stats->moment = ReadCachedMoment(path, meta, m);
  stats->loaded_from_cache = stats->moment.defined();
  if (!stats->loaded_from_cache) {
    ASSIGN_OR_RETURN(stats->moment,
                     ComputeSecondMoment(model_, layer, corpus->rows, options_.batch_tokens,
                                         call.on_progress ? call.on_progress : options_.on_progress,
                                         call.cancelled ? call.cancelled : options_.cancelled));
    if (!path.empty()) {
      std::error_code ec;
      fs::create_directories(fs::path(path).parent_path(), ec);
      if (ec) {
        return absl::InternalError(
            absl::StrCat("cannot create statistics directory for ", path, ": ", ec.message()));
      }
      std::map<std::string, std::string> written = meta;
      written["corpus_path"] = options_.corpus_path;
      RETURN_IF_ERROR(WriteSafetensors(path, {{kMomentName, stats->moment.view(torch::kInt64)}},
                                       written));
    }
  }
  ASSIGN_OR_RETURN(stats->cholesky, RegularisedCholesky(stats->moment, &stats->ridge));
  by_layer_[layer] = stats;
  return std::shared_ptr<const CovarianceStats>(stats);
}

}  // namespace romed
