// romed-random-model: writes a randomly initialised GPT-2 checkpoint in the
// Hugging Face layout (config.json, model.safetensors, vocab.json,
// merges.txt) for any GPT-2 shape. Benchmarks and tests use it.
//
//   romed-random-model --config=gpt2 --byte_level --out=/tmp/gpt2-random
//   romed-random-model --config=gpt2-xl --n_layer=4 --vocab_json=vocab.json
//       --merges=merges.txt --out=/tmp/xl4 --dtype=f16 --seed=7
//
// The weights follow GPT-2's initialisation (Gpt2Weights::Random) and are a
// pure function of the shape and --seed. The output directory is filled under
// a temporary name beside it and renamed into place, so a failed run leaves
// nothing behind.
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/core/status_macros.h"
#include "server/model/checkpoint.h"
#include "server/model/gpt2_config.h"
#include "server/model/gpt2_weights.h"
#include "server/model/tokenizer.h"

ABSL_FLAG(std::string, config, "gpt2", "Shape preset: gpt2, gpt2-medium, gpt2-large or gpt2-xl.");
ABSL_FLAG(int64_t, n_layer, 0, "Override L, the number of blocks (0 keeps the preset's).");
ABSL_FLAG(int64_t, n_embd, 0, "Override C, the model width (0 keeps the preset's).");
ABSL_FLAG(int64_t, n_head, 0, "Override H, the number of heads; must divide C (0 keeps).");
ABSL_FLAG(int64_t, n_positions, 0, "Override P, the context length (0 keeps the preset's).");
ABSL_FLAG(int64_t, n_inner, 0, "Override M, the MLP width (0 keeps the preset's: 4C).");
ABSL_FLAG(int64_t, vocab_size, 0,
          "Override V (0: the tokenizer's size; it may be larger, never smaller).");
ABSL_FLAG(std::string, vocab_json, "", "vocab.json to copy (required unless --byte_level).");
ABSL_FLAG(std::string, merges, "", "merges.txt to copy (required unless --byte_level).");
ABSL_FLAG(bool, byte_level, false,
          "Write the byte-level tokenizer (256 byte tokens + <|endoftext|>, no merges).");
ABSL_FLAG(std::string, out, "", "Output directory; must not exist or be empty (see --force).");
ABSL_FLAG(bool, force, false, "Replace a non-empty --out.");
ABSL_FLAG(uint64_t, seed, 1, "Seed of the random initialisation.");
ABSL_FLAG(std::string, dtype, "f32", "Stored dtype: f32, f16 or bf16.");

namespace romed {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<torch::Dtype> ParseDtype(const std::string& name) {
  if (name == "f32") return torch::kFloat32;
  if (name == "f16") return torch::kFloat16;
  if (name == "bf16") return torch::kBFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("--dtype=", name, " is not one of f32, f16, bf16"));
}

absl::StatusOr<std::string> ReadFile(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("--", flag, "=", path, ": cannot read"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The tokenizer files to write, checked by parsing them.
absl::StatusOr<TokenizerFiles> ChooseTokenizer() {
  const std::string vocab_path = absl::GetFlag(FLAGS_vocab_json);
  const std::string merges_path = absl::GetFlag(FLAGS_merges);
  if (absl::GetFlag(FLAGS_byte_level)) {
    if (!vocab_path.empty() || !merges_path.empty()) {
      return absl::InvalidArgumentError("--byte_level excludes --vocab_json and --merges");
    }
    return ByteLevelTokenizerFiles();
  }
  if (vocab_path.empty() || merges_path.empty()) {
    return absl::InvalidArgumentError(
        "give a tokenizer: --vocab_json=FILE and --merges=FILE, or --byte_level");
  }
  TokenizerFiles files;
  ASSIGN_OR_RETURN(files.vocab_json, ReadFile("vocab_json", vocab_path));
  ASSIGN_OR_RETURN(files.merges_txt, ReadFile("merges", merges_path));
  return files;
}

void Override(int64_t value, int64_t* field) {
  if (value != 0) *field = value;
}

// The preset with the flags' overrides; V defaults to the tokenizer's size.
absl::StatusOr<Gpt2Config> BuildConfig(const Gpt2Tokenizer& tokenizer) {
  ASSIGN_OR_RETURN(Gpt2Config config, Gpt2Config::Preset(absl::GetFlag(FLAGS_config)));
  Override(absl::GetFlag(FLAGS_n_layer), &config.n_layer);
  Override(absl::GetFlag(FLAGS_n_embd), &config.n_embd);
  Override(absl::GetFlag(FLAGS_n_head), &config.n_head);
  Override(absl::GetFlag(FLAGS_n_positions), &config.n_positions);
  Override(absl::GetFlag(FLAGS_n_inner), &config.n_inner);
  config.vocab_size = tokenizer.vocab_size();
  Override(absl::GetFlag(FLAGS_vocab_size), &config.vocab_size);
  if (config.vocab_size < tokenizer.vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--vocab_size=", config.vocab_size, " is smaller than the tokenizer's ",
        tokenizer.vocab_size(), " tokens (every token id must be < vocab_size)"));
  }
  if (tokenizer.eos_id() >= 0) config.bos_token_id = config.eos_token_id = tokenizer.eos_id();
  RETURN_IF_ERROR(config.Validate());
  return config;
}

// Creates "<out>.tmp-XXXXXX" beside `out` after checking `out` may be
// written: absent, an empty directory, or anything with --force.
absl::StatusOr<std::string> MakeStagingDir(const fs::path& out, bool force) {
  std::error_code error;
  if (fs::exists(out, error) && !force &&
      !(fs::is_directory(out, error) && fs::is_empty(out, error))) {
    return absl::AlreadyExistsError(absl::StrCat(
        "--out=", out.string(), " exists and is not an empty directory (use --force to replace)"));
  }
  if (out.has_parent_path()) fs::create_directories(out.parent_path(), error);
  std::string staging = out.string() + ".tmp-XXXXXX";
  if (::mkdtemp(staging.data()) == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create a directory beside --out=", out.string()));
  }
  // mkdtemp makes it 0700; a model directory is for others to read too.
  fs::permissions(staging, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                               fs::perms::others_read | fs::perms::others_exec,
                  error);
  return staging;
}

absl::Status MoveIntoPlace(const std::string& staging, const fs::path& out) {
  std::error_code error;
  fs::remove_all(out, error);  // allowed by MakeStagingDir's check
  fs::rename(staging, out, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot rename ", staging, " to ", out.string(), ": ", error.message()));
  }
  return absl::OkStatus();
}

absl::Status Run() {
  const std::string out = absl::GetFlag(FLAGS_out);
  if (out.empty()) return absl::InvalidArgumentError("--out=DIR is required");
  ASSIGN_OR_RETURN(torch::Dtype dtype, ParseDtype(absl::GetFlag(FLAGS_dtype)));
  ASSIGN_OR_RETURN(TokenizerFiles tokenizer_files, ChooseTokenizer());
  ASSIGN_OR_RETURN(auto tokenizer,
                   Gpt2Tokenizer::FromText(tokenizer_files.vocab_json, tokenizer_files.merges_txt));
  ASSIGN_OR_RETURN(Gpt2Config config, BuildConfig(*tokenizer));
  ASSIGN_OR_RETURN(std::string staging, MakeStagingDir(out, absl::GetFlag(FLAGS_force)));

  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  Gpt2Weights weights = Gpt2Weights::Random(config, seed);
  absl::Status saved = SaveCheckpoint(staging, config, weights, tokenizer_files.vocab_json,
                                      tokenizer_files.merges_txt, dtype);
  if (saved.ok()) saved = MoveIntoPlace(staging, out);
  if (!saved.ok()) {
    std::error_code ignored;
    fs::remove_all(staging, ignored);
    return saved;
  }
  std::cout << absl::StrFormat(
      "wrote %s: L=%d C=%d H=%d M=%d P=%d V=%d, %.1fM parameters, %s, seed %d\n", out,
      config.n_layer, config.n_embd, config.n_head, config.mlp_width(), config.n_positions,
      config.vocab_size, weights.NumParameters() / 1e6, absl::GetFlag(FLAGS_dtype), seed);
  return absl::OkStatus();
}

}  // namespace
}  // namespace romed

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Writes a randomly initialised GPT-2 checkpoint in the Hugging Face layout.\n"
      "  romed-random-model --config=gpt2 --byte_level --out=DIR [--seed=N --dtype=f32]");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() > 1) {
    std::cerr << "romed-random-model: unexpected argument " << positional[1] << "\n";
    return 2;
  }
  absl::Status status = romed::Run();
  if (!status.ok()) {
    std::cerr << "romed-random-model: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
