// decode_bench: decode and prefill throughput of a gpt2-shaped (124M, fp32)
// random model on the CPU, against the memory-bandwidth bound measured in
// the same run.
//
//   decode_bench [--threads=2] [--preset=gpt2] [--prompt_tokens=64]
//                [--new_tokens=32] [--batch=8] [--prefill_tokens=512]
//                [--copy_mib=512] [--reps=2] [--compare_blas=1]
//
// Conventions (printed with the figures):
//  - Bytes per decoded token: every parameter once (wte included, as the LM
//    head reads all of it), fp32. One decode step reads the weights once for
//    the whole batch, so the bound at batch B is B times the batch-1 bound.
//  - Bandwidth: the faster of a single-threaded std::memcpy and a torch
//    copy_ on --threads threads between two --copy_mib buffers, counting
//    read + write bytes (2 x size per copy). This is what a streaming kernel
//    can move; decoding only reads, so the bound is if anything generous.
//  - Decode tokens/s: tokens after the first (which comes from the prefill)
//    over the time after the first, greedy, through Generator (sampling,
//    detokenisation and the KV cache included).
//  - --compare_blas=1 also times both decode runs with ROMED_BLAS_DECODE=1
//    (the forward pass's few-row products through OpenBLAS instead of its
//    own kernels, gpt2_model.cc), just before the default runs.
//  - OpenMP waiting: unless OMP_WAIT_POLICY is already set, the bench
//    re-executes itself with OMP_WAIT_POLICY=passive. libgomp reads the
//    variable once, when it is loaded (before main), so setenv() in main is
//    too late; spinning workers made a decode step several times slower on a
//    shared 2-vCPU VM. Run with OMP_WAIT_POLICY=active to see the other side.
#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/core/openmp_wait.h"
#include "server/model/blas_info.h"
#include "server/model/generator.h"
#include "server/model/gpt2_model.h"
#include "server/model/tokenizer.h"

namespace romed {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct BenchOptions {
  int threads = 2;               // at::set_num_threads
  std::string preset = "gpt2";   // model shape
  int64_t prompt_tokens = 64;    // prompt of the decode runs
  int64_t new_tokens = 32;       // generated per row in the decode runs
  int64_t batch = 8;             // the batched decode run
  int64_t prefill_tokens = 512;  // prompt of the prefill run
  int64_t copy_mib = 512;        // size of each buffer of the bandwidth test
  int reps = 2;                  // timed repetitions (best is reported)
  bool compare_blas = true;      // also time decoding with ROMED_BLAS_DECODE=1
};

// Parses --name=value flags over the defaults; exits on an unknown flag.
BenchOptions ParseFlags(int argc, char** argv) {
  BenchOptions options;
  std::map<std::string, std::string> flags;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::fprintf(stderr, "usage: decode_bench [--flag=value]... (see decode_bench.cc)\n");
      std::exit(2);
    }
    flags[arg.substr(2, eq - 2)] = arg.substr(eq + 1);
  }
  for (const auto& [name, value] : flags) {
    if (name == "threads")
      options.threads = std::stoi(value);
    else if (name == "preset")
      options.preset = value;
    else if (name == "prompt_tokens")
      options.prompt_tokens = std::stoll(value);
    else if (name == "new_tokens")
      options.new_tokens = std::stoll(value);
    else if (name == "batch")
      options.batch = std::stoll(value);
    else if (name == "prefill_tokens")
      options.prefill_tokens = std::stoll(value);
    else if (name == "copy_mib")
      options.copy_mib = std::stoll(value);
    else if (name == "reps")
      options.reps = std::stoi(value);
    else if (name == "compare_blas")
      options.compare_blas = value != "0";
    else {
      std::fprintf(stderr, "unknown flag --%s\n", name.c_str());
      std::exit(2);
    }
  }
  return options;
}

// UTF-8 of one code point below U+0800 (all bytes_to_unicode() needs).
std::string Utf8(char32_t c) {
  if (c < 0x80) return std::string(1, static_cast<char>(c));
  return {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
}

// A byte-level vocabulary of `vocab_size` ids: the 256 byte symbols, filler
// tokens "t<id>" and "<|endoftext|>" last, as GPT-2's. Encoding is by bytes
// (no merges); decoding any id works, which is all generation needs.
std::shared_ptr<const Gpt2Tokenizer> FillerTokenizer(int64_t vocab_size) {
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  const std::vector<char32_t>& symbols = Gpt2Tokenizer::ByteToUnicode();
  for (int byte = 0; byte < 256; ++byte) vocab[Utf8(symbols[byte])] = byte;
  for (int64_t id = 256; id < vocab_size - 1; ++id) vocab["t" + std::to_string(id)] = id;
  vocab["<|endoftext|>"] = vocab_size - 1;
  auto tokenizer = Gpt2Tokenizer::FromText(vocab.dump(), "#version: 0.2\n");
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "tokenizer: %s\n", tokenizer.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*tokenizer);
}

// Read + write GB/s of copying `mib` MiB: the better of memcpy on one thread
// and torch copy_ on the intra-op pool.
double CopyBandwidthGBps(int64_t mib) {
  const int64_t n = mib * 1024 * 1024 / static_cast<int64_t>(sizeof(float));
  torch::Tensor src = torch::rand({n});
  torch::Tensor dst = torch::zeros({n});  // touched, so no page faults are timed
  const double bytes = 2.0 * n * sizeof(float);
  double best_memcpy = 0.0, best_torch = 0.0;
  for (int i = 0; i < 4; ++i) {
    Clock::time_point start = Clock::now();
    std::memcpy(dst.data_ptr<float>(), src.data_ptr<float>(), n * sizeof(float));
    best_memcpy = std::max(best_memcpy, bytes / SecondsSince(start) / 1e9);
    start = Clock::now();
    dst.copy_(src);
    best_torch = std::max(best_torch, bytes / SecondsSince(start) / 1e9);
  }
  std::printf(
      "copy bandwidth (read+write, %lld MiB): memcpy 1 thread %.2f GB/s, "
      "torch copy_ %d threads %.2f GB/s\n",
      static_cast<long long>(mib), best_memcpy, at::get_num_threads(), best_torch);
  return std::max(best_memcpy, best_torch);
}

std::vector<int64_t> PseudoRandomIds(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i)
    ids[i] = static_cast<int64_t>((seed * 7919 + i * 104729) % (vocab - 1));
  return ids;
}

struct RunTimes {
  double prefill_s = 0.0;  // time to the first token
  double decode_s = 0.0;   // time from the first token to the last
  int64_t decoded = 0;     // tokens after the first, all rows
};

// Best of `reps` greedy runs of `batch` rows (after one warm-up run).
RunTimes TimeGeneration(const Generator& generator, int64_t batch, int64_t prompt_tokens,
                        int64_t new_tokens, int64_t vocab, int reps) {
  std::vector<GenerateRequest> requests(batch);
  for (int64_t b = 0; b < batch; ++b) {
    requests[b].prompt_ids = PseudoRandomIds(prompt_tokens, vocab, b + 1);
    requests[b].max_new_tokens = new_tokens;
    requests[b].stop_at_eos = false;
  }
  RunTimes best;
  for (int rep = 0; rep <= reps; ++rep) {
    auto results = generator.GenerateBatch(requests);
    if (!results.ok()) {
      std::fprintf(stderr, "generate: %s\n", results.status().ToString().c_str());
      std::exit(1);
    }
    RunTimes times;
    for (const GenerateResult& r : *results) {
      times.prefill_s = std::max(times.prefill_s, r.time_to_first_token_s);
      times.decode_s = std::max(times.decode_s, r.total_time_s - r.time_to_first_token_s);
      times.decoded += static_cast<int64_t>(r.ids.size()) - 1;
    }
    if (rep == 0) continue;  // warm-up
    if (rep == 1 || times.decode_s < best.decode_s) {
      best.decode_s = times.decode_s;
      best.decoded = times.decoded;
    }
    if (rep == 1 || times.prefill_s < best.prefill_s) best.prefill_s = times.prefill_s;
  }
  return best;
}

// Decode tokens/s of `batch` rows (best of options.reps).
double DecodeTokensPerSecond(const Generator& generator, int64_t batch, const BenchOptions& options,
                             int64_t vocab) {
  const RunTimes times = TimeGeneration(generator, batch, options.prompt_tokens, options.new_tokens,
                                        vocab, options.reps);
  return times.decoded / times.decode_s;
}

int Main(int argc, char** argv) {
  EnsurePassiveOpenMpWaiting(argv, "decode_bench");
  const BenchOptions options = ParseFlags(argc, argv);
  at::set_num_threads(options.threads);
  torch::manual_seed(0);
  const Clock::time_point start = Clock::now();

  auto config = Gpt2Config::Preset(options.preset);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
    return 2;
  }
  auto model = std::make_shared<const Gpt2Model>(*config, Gpt2Weights::Random(*config, 1));
  const Generator generator(model, FillerTokenizer(config->vocab_size));
  const int64_t params = model->weights().NumParameters();
  const double bytes_per_token = 4.0 * params;
  std::printf(
      "model %s (random, fp32): %.1fM parameters, %.1f MB read per "
      "decode step\n",
      options.preset.c_str(), params / 1e6, bytes_per_token / 1e6);
  std::printf("threads %d (at::get_num_threads %d), OMP_WAIT_POLICY=%s, BLAS %s\n", options.threads,
              at::get_num_threads(),
              std::getenv("OMP_WAIT_POLICY") ? std::getenv("OMP_WAIT_POLICY") : "(unset)",
              DescribeBlas().c_str());

  const double bandwidth = CopyBandwidthGBps(options.copy_mib);
  const double bound_tps = bandwidth * 1e9 / bytes_per_token;
  std::printf("bandwidth bound at batch 1: %.2f tokens/s\n\n", bound_tps);

  const int64_t v = config->vocab_size;
  // BLAS-only runs first (when compared), then the default ones, so both see
  // the same minutes of machine load.
  double blas_b1_tps = 0.0, blas_bn_tps = 0.0;
  if (options.compare_blas) {
    setenv("ROMED_BLAS_DECODE", "1", 1);
    blas_b1_tps = DecodeTokensPerSecond(generator, 1, options, v);
    blas_bn_tps = DecodeTokensPerSecond(generator, options.batch, options, v);
    unsetenv("ROMED_BLAS_DECODE");
  }
  const double b1_tps = DecodeTokensPerSecond(generator, 1, options, v);
  const double bn_tps = DecodeTokensPerSecond(generator, options.batch, options, v);
  std::printf(
      "decode batch 1 (prompt %lld, %lld new): %.2f tokens/s (%.1f ms/token), "
      "ratio to bound %.2f\n",
      static_cast<long long>(options.prompt_tokens), static_cast<long long>(options.new_tokens),
      b1_tps, 1e3 / b1_tps, b1_tps / bound_tps);
  std::printf(
      "decode batch %lld: %.2f tokens/s (%.1f ms/step), %.2fx batch 1, "
      "ratio to batch-%lld bound %.2f\n",
      static_cast<long long>(options.batch), bn_tps, 1e3 * options.batch / bn_tps, bn_tps / b1_tps,
      static_cast<long long>(options.batch), bn_tps / (options.batch * bound_tps));
  if (options.compare_blas) {
    std::printf(
        "  same with ROMED_BLAS_DECODE=1: batch 1 %.2f tokens/s (ratio "
        "%.2f), batch %lld %.2f "
        "tokens/s\n",
        blas_b1_tps, blas_b1_tps / bound_tps, static_cast<long long>(options.batch), blas_bn_tps);
  }

  const RunTimes prefill = TimeGeneration(generator, 1, options.prefill_tokens, 1, v, options.reps);
  std::printf("prefill (%lld-token prompt): %.1f tokens/s (%.3f s)\n",
              static_cast<long long>(options.prefill_tokens),
              options.prefill_tokens / prefill.prefill_s, prefill.prefill_s);
  std::printf("\nRATIO decode_tps / bound_tps at batch 1: %.2f (target >= 0.70)\n",
              b1_tps / bound_tps);
  std::printf("total run time %.1f s\n", SecondsSince(start));
  return 0;
}

}  // namespace
}  // namespace romed

int main(int argc, char** argv) { return romed::Main(argc, argv); }
