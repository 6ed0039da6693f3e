#include "server/model/checkpoint.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/core/status_macros.h"
#include "server/core/torch_guard.h"
#include "server/model/safetensors.h"

namespace romed {
namespace {

using Json = nlohmann::json;

constexpr char kConfigFile[] = "config.json";
constexpr char kWeightsFile[] = "model.safetensors";
constexpr char kIndexFile[] = "model.safetensors.index.json";
constexpr char kVocabFile[] = "vocab.json";
constexpr char kMergesFile[] = "merges.txt";
constexpr char kPrefix[] = "transformer.";
constexpr char kLmHead[] = "lm_head.weight";

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty() || dir.back() == '/') return dir + name;
  return absl::StrCat(dir, "/", name);
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Prefixes a phase's error with "loading <phase>: ", keeping its code.
absl::Status InPhase(const char* phase, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("loading ", phase, ": ", status.message()));
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!FileExists(path)) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    return absl::PermissionDeniedError(absl::StrCat(path, ": cannot open for reading"));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) return absl::UnavailableError(absl::StrCat(temp, ": write failed"));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot rename ", temp, " onto it: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

// UTF-8 bytes of one code point below U+10000 (bytes_to_unicode() needs
// only the first two byte lengths).
std::string EncodeUtf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
  return out;
}

// ---- Phase 1: config ---------------------------------------------------------

absl::StatusOr<Gpt2Config> LoadConfig(const std::string& path, const std::string& text) {
  if (!Json::accept(text)) return absl::DataLossError(absl::StrCat(path, ": not valid JSON"));
  absl::StatusOr<Gpt2Config> config = Gpt2Config::FromJson(text);
  if (config.ok()) {
    absl::Status valid = config->Validate();
    if (!valid.ok()) config = valid;
  }
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(path, ": ", config.status().message()));
  }
  return config;
}

// ---- Phase 2: tokenizer ------------------------------------------------------

absl::StatusOr<std::shared_ptr<const Gpt2Tokenizer>> LoadTokenizer(const std::string& dir,
                                                                   const Gpt2Config& config) {
  const std::string vocab_path = JoinPath(dir, kVocabFile);
  ASSIGN_OR_RETURN(std::unique_ptr<Gpt2Tokenizer> tokenizer,
                   Gpt2Tokenizer::FromFiles(vocab_path, JoinPath(dir, kMergesFile)));
  // The embedding has config.vocab_size rows; every token id indexes it.
  if (tokenizer->vocab_size() > config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        vocab_path, ": holds ", tokenizer->vocab_size(), " token ids, but config.json has ",
        "vocab_size ", config.vocab_size, " (every token id must be < vocab_size)"));
  }
  return std::shared_ptr<const Gpt2Tokenizer>(std::move(tokenizer));
}

// ---- Phase 3: tensors --------------------------------------------------------

// The weight file(s) of a checkpoint, and where each tensor lives in them.
struct WeightFiles {
  // model.safetensors, or the index for a sharded checkpoint: what error
  // messages name when a tensor is missing.
  std::string listing_path;
  std::vector<std::unique_ptr<SafetensorsFile>> files;  // sorted by path
  struct Location {
    const SafetensorsFile* file;
    std::string stored_name;  // as in the file, maybe with "transformer."
  };
  std::map<std::string, Location> tensors;  // by name without prefix
};

// Shard file names from model.safetensors.index.json, sorted and unique.
absl::StatusOr<std::vector<std::string>> ReadShardIndex(const std::string& index_path) {
  ASSIGN_OR_RETURN(std::string text, ReadTextFile(index_path));
  Json index = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded()) return absl::DataLossError(absl::StrCat(index_path, ": not valid JSON"));
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return absl::DataLossError(absl::StrCat(index_path, ": no \"weight_map\" object"));
  }
  std::set<std::string> shards;
  for (const auto& [name, file] : index["weight_map"].items()) {
    if (!file.is_string() || file.get<std::string>().find('/') != std::string::npos) {
      return absl::DataLossError(absl::StrCat(index_path, ": weight_map entry \"", name,
                                              "\" is not a file name in the directory"));
    }
    shards.insert(file.get<std::string>());
  }
  return std::vector<std::string>(shards.begin(), shards.end());
}

absl::Status IndexTensors(WeightFiles& weights) {
  for (const auto& file : weights.files) {
    for (const auto& [stored, entry] : file->entries()) {
      std::string name = stored;
      if (absl::StartsWith(name, kPrefix)) name.erase(0, sizeof(kPrefix) - 1);
      auto [it, inserted] = weights.tensors.emplace(name, WeightFiles::Location{file.get(), stored});
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(
            file->path(), ": tensor \"", stored, "\" is also stored as \"",
            it->second.stored_name, "\" in ", it->second.file->path()));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<WeightFiles> OpenWeightFiles(const std::string& dir) {
  WeightFiles weights;
  std::vector<std::string> names;
  if (FileExists(JoinPath(dir, kIndexFile))) {
    weights.listing_path = JoinPath(dir, kIndexFile);
    ASSIGN_OR_RETURN(names, ReadShardIndex(weights.listing_path));
  } else if (FileExists(JoinPath(dir, kWeightsFile))) {
    weights.listing_path = JoinPath(dir, kWeightsFile);
    names = {kWeightsFile};
  } else {
    return absl::NotFoundError(absl::StrCat(dir, ": neither ", kWeightsFile, " nor ", kIndexFile,
                                            " (only safetensors checkpoints are supported)"));
  }
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(JoinPath(dir, name)));
    weights.files.push_back(std::move(file));
  }
  RETURN_IF_ERROR(IndexTensors(weights));
  return weights;
}

// Finds `name`, checks its stored dtype and shape before reading any data.
absl::StatusOr<WeightFiles::Location> FindTensor(const WeightFiles& weights,
                                                 const std::string& name,
                                                 const std::vector<int64_t>& shape, bool conv1d) {
  auto it = weights.tensors.find(name);
  if (it == weights.tensors.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        weights.listing_path, ": tensor \"", name, "\" is missing (looked for \"", name,
        "\" and \"", kPrefix, name, "\")"));
  }
  const WeightFiles::Location& where = it->second;
  const SafetensorsEntry& entry = where.file->entries().at(where.stored_name);
  if (entry.dtype != "F32" && entry.dtype != "F16" && entry.dtype != "BF16") {
    return absl::InvalidArgumentError(
        absl::StrCat(where.file->path(), ": tensor \"", where.stored_name, "\" is stored as ",
                     entry.dtype, "; expected F32, F16 or BF16"));
  }
  if (entry.shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        where.file->path(), ": tensor \"", where.stored_name, "\" has shape ",
        ShapeToString(entry.shape), ", expected ", ShapeToString(shape),
        conv1d ? " (Conv1D layout [in, out])" : ""));
  }
  return where;
}

absl::StatusOr<torch::Tensor> ReadConverted(const WeightFiles::Location& where,
                                            const LoadOptions& options) {
  ASSIGN_OR_RETURN(torch::Tensor stored, where.file->Read(where.stored_name));
  return GuardTorch(absl::StrCat(where.file->path(), ": converting \"", where.stored_name, "\""),
                    [&] { return stored.to(options.device, options.dtype); });
}

// lm_head.weight is optional; when present it must be wte (GPT-2 ties them).
absl::Status CheckTiedHead(const WeightFiles& weights, const Gpt2Weights& loaded,
                           const Gpt2Config& config, const LoadOptions& options) {
  if (weights.tensors.count(kLmHead) == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(WeightFiles::Location where,
                   FindTensor(weights, kLmHead, {config.vocab_size, config.n_embd}, false));
  ASSIGN_OR_RETURN(torch::Tensor head, ReadConverted(where, options));
  if (!torch::equal(head, loaded.wte)) {
    return absl::InvalidArgumentError(absl::StrCat(
        where.file->path(), ": tensor \"", where.stored_name,
        "\" differs from wte.weight; romed ties the LM head to the token embedding"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Gpt2Weights> LoadWeights(const WeightFiles& files, const Gpt2Config& config,
                                        const LoadOptions& options, std::string* stored_dtype) {
  Gpt2Weights weights;
  weights.Allocate(config);
  for (Gpt2Weights::Entry& entry : weights.Table(config)) {
    ASSIGN_OR_RETURN(WeightFiles::Location where,
                     FindTensor(files, entry.name, entry.shape, entry.conv1d));
    if (stored_dtype->empty()) *stored_dtype = where.file->entries().at(where.stored_name).dtype;
    ASSIGN_OR_RETURN(*entry.tensor, ReadConverted(where, options));
  }
  RETURN_IF_ERROR(CheckTiedHead(files, weights, config, options));
  RETURN_IF_ERROR(weights.Validate(config));
  return weights;
}

// Hex SHA-256 over config.json's text and each weight file's bytes, in file
// name order (files are sorted by path).
std::string Sha256Hex(const std::string& config_text, const WeightFiles& files) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, config_text.data(), config_text.size());
  for (const auto& file : files.files) {
    std::string_view bytes = file->contents();
    EVP_DigestUpdate(ctx, bytes.data(), bytes.size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx, digest, &length);
  EVP_MD_CTX_free(ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

}  // namespace

TokenizerFiles ByteLevelTokenizerFiles() {
  const std::vector<char32_t>& symbols = Gpt2Tokenizer::ByteToUnicode();
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int byte = 0; byte < 256; ++byte) vocab[EncodeUtf8(symbols[byte])] = byte;
  vocab["<|endoftext|>"] = 256;
  return TokenizerFiles{vocab.dump(), "#version: 0.2\n"};
}

absl::StatusOr<Checkpoint> LoadCheckpoint(const std::string& dir, const LoadOptions& options) {
  if (!IsDirectory(dir)) {
    return absl::NotFoundError(absl::StrCat("loading config: ", dir, ": no such directory"));
  }
  Checkpoint checkpoint;
  checkpoint.dir = dir;
  const std::string config_path = JoinPath(dir, kConfigFile);
  absl::StatusOr<std::string> config_text = ReadTextFile(config_path);
  RETURN_IF_ERROR(InPhase("config", config_text.status()));
  absl::StatusOr<Gpt2Config> config = LoadConfig(config_path, *config_text);
  RETURN_IF_ERROR(InPhase("config", config.status()));
  checkpoint.config = *config;

  auto tokenizer = LoadTokenizer(dir, checkpoint.config);
  RETURN_IF_ERROR(InPhase("tokenizer", tokenizer.status()));
  checkpoint.tokenizer = *std::move(tokenizer);
  for (auto [file, text] : {std::pair{kVocabFile, &checkpoint.tokenizer_files.vocab_json},
                            std::pair{kMergesFile, &checkpoint.tokenizer_files.merges_txt}}) {
    absl::StatusOr<std::string> read = ReadTextFile(JoinPath(dir, file));
    RETURN_IF_ERROR(InPhase("tokenizer", read.status()));
    *text = *std::move(read);
  }

  absl::StatusOr<WeightFiles> files = OpenWeightFiles(dir);
  RETURN_IF_ERROR(InPhase("tensors", files.status()));
  // Hashing reads every byte once; overlap it with copying the tensors out.
  std::future<std::string> checksum = std::async(
      std::launch::async, [&] { return Sha256Hex(*config_text, *files); });
  auto weights = LoadWeights(*files, checkpoint.config, options, &checkpoint.stored_dtype);
  checkpoint.checksum = checksum.get();
  RETURN_IF_ERROR(InPhase("tensors", weights.status()));
  checkpoint.weights = *std::move(weights);
  return checkpoint;
}

absl::Status SaveCheckpoint(const std::string& dir, const Gpt2Config& config,
                            const Gpt2Weights& weights, const std::string& vocab_json,
                            const std::string& merges_txt, torch::Dtype dtype) {
  if (!IsDirectory(dir)) return absl::NotFoundError(absl::StrCat(dir, ": no such directory"));
  RETURN_IF_ERROR(config.Validate());
  RETURN_IF_ERROR(weights.Validate(config));
  std::vector<std::pair<std::string, torch::Tensor>> named = weights.Named(config);
  RETURN_IF_ERROR(GuardTorch("converting weights for saving", [&] {
    for (auto& [name, tensor] : named) tensor = tensor.to(torch::kCPU, dtype);
  }));
  RETURN_IF_ERROR(WriteTextFile(JoinPath(dir, kConfigFile), config.ToJson()));
  RETURN_IF_ERROR(WriteSafetensors(JoinPath(dir, kWeightsFile), named, {{"format", "pt"}}));
  RETURN_IF_ERROR(WriteTextFile(JoinPath(dir, kVocabFile), vocab_json));
  return WriteTextFile(JoinPath(dir, kMergesFile), merges_txt);
}

}  // namespace romed
