// trace_bench: a full three-kind causal trace (state, MLP, attention) of a
// 10-token prompt, batched (server/trace) against the paper's loop of one
// batch-of-(S+1) forward per (kind, token, layer) (tests/trace/
// reference_trace.cc), in the same run, on
//  1. a gpt2-medium-shaped random model (C 1024, H 16, V 50257) with
//     --layers of its 24 layers (default 2: on the 2 shared cores the
//     reference loop takes ~80 s per layer, and the run must stay < 3 min), and
//  2. the fact model, if ROMED_FACT_MODEL_DIR names one (its known facts'
//     first prompt).
// Prints forwards, batch sizes, times, the speed-up and max |score diff|.
//
//   trace_bench [--layers=2] [--threads=2] [--samples=10] [--max_batch_rows=256]
//               [--profile=0] [--reference=1] [--repeats=2] [--block_overhead_macs=X]
// Batched times are the best of --repeats runs (the machine is shared).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "nlohmann/json.hpp"
#include "server/core/openmp_wait.h"
#include "server/model/checkpoint.h"
#include "server/model/gpt2_model.h"
#include "server/trace/causal_trace.h"
#include "server/trace/noise.h"
#include "server/trace/subject_locator.h"
#include "tests/trace/reference_trace.h"

namespace romed {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct BenchOptions {
  int64_t layers = 2;            // layers of the gpt2-medium-shaped model (of 24)
  int threads = 2;               // at::set_num_threads
  int64_t samples = 10;          // noise samples (the paper's 10)
  int64_t max_batch_rows = 256;  // TraceOptions::max_batch_rows
  bool profile = false;          // print the time of every batched forward
  bool reference = true;         // run the reference loop (--reference=0: batched only)
  int repeats = 2;               // batched traces: best of this many runs
  double block_overhead_macs = -1;  // TraceOptions::block_overhead_macs; < 0: its default
};

BenchOptions ParseFlags(int argc, char** argv) {
  BenchOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      const size_t n = std::strlen(name);
      return arg.compare(0, n, name) == 0 ? arg.c_str() + n : nullptr;
    };
    if (const char* v = value("--layers=")) {
      options.layers = std::atoll(v);
    } else if (const char* v = value("--threads=")) {
      options.threads = std::atoi(v);
    } else if (const char* v = value("--samples=")) {
      options.samples = std::atoll(v);
    } else if (const char* v = value("--profile=")) {
      options.profile = std::atoi(v) != 0;
    } else if (const char* v = value("--reference=")) {
      options.reference = std::atoi(v) != 0;
    } else if (const char* v = value("--block_overhead_macs=")) {
      options.block_overhead_macs = std::atof(v);
    } else if (const char* v = value("--repeats=")) {
      options.repeats = std::max(1, std::atoi(v));
    } else if (const char* v = value("--max_batch_rows=")) {
      options.max_batch_rows = std::atoll(v);
    } else {
      std::fprintf(stderr, "trace_bench: unknown flag %s\n", arg.c_str());
      std::exit(2);
    }
  }
  return options;
}

// Traces `input` both ways and prints the comparison.
void Compare(const std::string& name, const Gpt2Model& model, const TraceInput& input,
             const BenchOptions& bench) {
  TraceOptions options;
  options.samples = bench.samples;
  options.max_batch_rows = bench.max_batch_rows;
  if (bench.block_overhead_macs >= 0) options.block_overhead_macs = bench.block_overhead_macs;
  options.noise = {NoiseScale::Mode::kAbsolute, 0.0};
  auto std = VocabularyEmbeddingStd(model);
  options.noise.value = 3.0 * std.value();
  const int64_t window = DefaultTraceWindow(model.config().n_layer);
  std::printf("\n== %s: L %lld, C %lld, V %lld, T %zu, subject [%lld, %lld), S %lld, window %lld\n",
              name.c_str(), static_cast<long long>(model.config().n_layer),
              static_cast<long long>(model.config().n_embd),
              static_cast<long long>(model.config().vocab_size), input.tokens.size(),
              static_cast<long long>(input.subject_begin),
              static_cast<long long>(input.subject_end), static_cast<long long>(bench.samples),
              static_cast<long long>(window));

  {  // Warm-up: the allocator's first large blocks are not what we measure.
    torch::Tensor tokens = torch::tensor(input.tokens).view({1, -1}).expand({64, -1});
    ForwardOptions forward;
    forward.last_position_logits = true;
    model.Forward({tokens, torch::Tensor()}, forward);
  }
  // The same batching with every forward starting at the embedding and at
  // most max_batch_rows per forward (block_overhead_macs huge: the fewest
  // forwards), timed interleaved with the planned trace (the machine's load
  // drifts), best of --repeats each.
  TraceOptions fewest = options;
  fewest.block_overhead_macs = 1e30;
  absl::StatusOr<TraceResult> batched = absl::UnknownError("not run");
  absl::StatusOr<TraceResult> joined = absl::UnknownError("not run");
  double batched_s = 1e30, joined_s = 1e30;
  for (int run = 0; run < bench.repeats; ++run) {
    Clock::time_point start = Clock::now();
    joined = CausalTrace(model, input, fewest);
    joined_s = std::min(joined_s, SecondsSince(start));
    start = Clock::now();
    Clock::time_point last = start;
    if (bench.profile && run == 0) {
      options.progress = [&](int64_t done, int64_t total) {
        std::printf("  forward %lld/%lld: %.3f s\n", static_cast<long long>(done),
                    static_cast<long long>(total), SecondsSince(last));
        last = Clock::now();
      };
    } else {
      options.progress = nullptr;
    }
    batched = CausalTrace(model, input, options);
    batched_s = std::min(batched_s, SecondsSince(start));
    if (!batched.ok()) break;
  }
  if (!batched.ok()) {
    std::printf("batched trace failed: %s\n", batched.status().ToString().c_str());
    return;
  }
  if (joined.ok()) {
    std::printf("fewest forwards, all from the embedding: %lld forwards, %lld token-rows, %.2f s "
                "(the planned trace is %.2fx faster)\n",
                static_cast<long long>(joined->cost.forwards),
                static_cast<long long>(joined->cost.token_rows), joined_s, joined_s / batched_s);
  }
  torch::Tensor noise = SubjectNoise(bench.samples, input.subject_end - input.subject_begin,
                                     model.config().n_embd, options.noise.value, options.seed,
                                     torch::TensorOptions().dtype(model.dtype()));
  Clock::time_point start = Clock::now();
  int64_t reference_forwards = 0, reference_rows = 0;
  double max_diff = 0;
  for (const ScoreGrid& grid : batched->scores) {
    if (!bench.reference) break;
    testing::ReferenceTrace reference = testing::RunReferenceTrace(
        model, input.tokens, input.subject_begin, input.subject_end, grid.kind, window, noise,
        -1, SeverMode::kNone, nullptr);
    reference_forwards += reference.forwards;
    reference_rows += reference.rows;
    for (size_t t = 0; t < grid.values.size(); ++t) {
      for (size_t l = 0; l < grid.values[t].size(); ++l) {
        max_diff = std::max(max_diff, std::abs(grid.values[t][l] - reference.scores[t][l]));
      }
    }
  }
  const double reference_s = SecondsSince(start);
  const TraceCost& cost = batched->cost;
  std::printf("clean p %.4f, corrupted p %.4f\n", batched->high_score, batched->low_score);
  std::printf("reference: %6lld forwards, batch %lld rows x %zu positions, %lld rows, %8.2f s\n",
              static_cast<long long>(reference_forwards),
              static_cast<long long>(bench.samples + 1), input.tokens.size(),
              static_cast<long long>(reference_rows), reference_s);
  std::printf("batched:   %6lld forwards, batches up to %lld rows, %lld rows, %lld token-rows "
              "(%lld of %lld cells skipped), %8.2f s\n",
              static_cast<long long>(cost.forwards), static_cast<long long>(cost.max_batch_rows),
              static_cast<long long>(cost.rows), static_cast<long long>(cost.token_rows),
              static_cast<long long>(cost.skipped), static_cast<long long>(cost.restorations),
              batched_s);
  std::printf("speed-up %.1fx; token-rows %.1fx fewer; max |batched - reference| = %.2e\n",
              reference_s / batched_s,
              static_cast<double>(reference_rows * static_cast<int64_t>(input.tokens.size())) /
                  static_cast<double>(cost.token_rows),
              max_diff);
}

void RandomMedium(const BenchOptions& bench) {
  Gpt2Config config = Gpt2Config::Preset("gpt2-medium").value();
  config.n_layer = bench.layers;
  Gpt2Model model(config, Gpt2Weights::Random(config, 1));
  TraceInput input;
  input.tokens = {464, 4687, 49470, 318, 287, 9436, 286, 262, 1748, 286};  // 10 ids
  input.subject_begin = 1;
  input.subject_end = 3;
  Compare("gpt2-medium-shaped random (" + std::to_string(bench.layers) + " of 24 layers)", model,
          input, bench);
}

void FactModel(const BenchOptions& bench) {
  const char* dir = std::getenv("ROMED_FACT_MODEL_DIR");
  if (dir == nullptr || *dir == '\0') {
    std::printf("\n== fact model: skipped (set ROMED_FACT_MODEL_DIR)\n");
    return;
  }
  auto checkpoint = LoadCheckpoint(dir);
  if (!checkpoint.ok()) {
    std::printf("\n== fact model: %s\n", checkpoint.status().ToString().c_str());
    return;
  }
  std::ifstream file(std::string(dir) + "/known_facts.json");
  std::stringstream text;
  text << file.rdbuf();
  nlohmann::json facts = nlohmann::json::parse(text.str(), nullptr, false);
  if (facts.is_discarded() || facts.empty()) {
    std::printf("\n== fact model: no known_facts.json\n");
    return;
  }
  Gpt2Model model(checkpoint->config, checkpoint->weights);
  // The first known fact of at least 10 tokens whose subject locates (the
  // issue's prompt length). The fact model's prompts are shorter, so each
  // is tried after a sentence of the previous fact (another subject), as in
  // its two-sentence training documents.
  TraceInput best;
  std::string best_prompt, previous;
  for (const auto& fact : facts) {
    std::string subject = fact["subject"];
    std::string prompt = fact["prompt"];
    const std::string sentence = prompt + " " + fact["attribute"].get<std::string>() + ".";
    if (!previous.empty() && previous.find(subject) == std::string::npos) {
      prompt = previous + " " + prompt;
    }
    previous = sentence;
    auto located = LocateSubject(*checkpoint->tokenizer, prompt, subject);
    if (!located.ok() || located->tokens.size() <= best.tokens.size()) continue;
    best.tokens = located->tokens;
    best.subject_begin = located->subject_begin;
    best.subject_end = located->subject_end;
    best_prompt = prompt;
    if (best.tokens.size() >= 10) break;
  }
  if (!best.tokens.empty()) {
    Compare("fact model: \"" + best_prompt + "\" (" + std::to_string(best.tokens.size()) +
                " tokens)",
            model, best, bench);
    return;
  }
}

}  // namespace
}  // namespace romed

int main(int argc, char** argv) {
  romed::EnsurePassiveOpenMpWaiting(argv, "trace_bench");  // as romed does (openmp_wait.h)
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows when piped
  romed::BenchOptions bench = romed::ParseFlags(argc, argv);
  at::set_num_threads(bench.threads);
  torch::NoGradGuard no_grad;
  romed::RandomMedium(bench);
  romed::FactModel(bench);
  return 0;
}
