// compare_bench: Engine::Compare (both variants in one batch) against two
// separate Engine::Generate calls, one per variant, in the same run; and
// Compare with targets, top-k and KL against 2 Generate + 2 Score calls.
//
//   compare_bench [--threads=2] [--fact_model_dir=models/fact] [--new_tokens=16]
//                 [--reps=7] [--prompts=1] [--medium=1] [--medium_new_tokens=16]
//                 [--medium_reps=3]
//
// Conventions (printed with the figures):
//  - Variant a is the original model, b a session holding one random
//    rank-one delta at the model's middle-to-top layer (the fact model's
//    edit layer 3; gpt2-medium's layer 8). The cost of a delta does not
//    depend on its values.
//  - Greedy decoding of --new_tokens tokens, ignore_eos (every call decodes
//    the same number of tokens). EngineOptions::max_batch_size = 1, so a
//    Generate runs at once on the caller's thread (no batching window).
//  - Each repetition times the baseline pair and the Compare back to back
//    (interleaved, so machine load affects both alike); the figures are the
//    medians over --reps repetitions, after one warm-up of each.
//  - gpt2-medium shape: 24 layers, C 1024, M 4096, V 50257, random weights,
//    a byte-level tokenizer padded to 50257 ids (as edit_bench).
//  - Then the decode time per step of GenerateBatch alone: 1 row, 2 rows on
//    the base model, 2 rows on different edit views (Compare's decode).
// Target (issue #6): Compare <= 0.6x the two Generate calls.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/core/openmp_wait.h"
#include "server/engine/engine.h"
#include "server/model/checkpoint.h"

namespace romed {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct BenchOptions {
  int threads = 2;
  std::string fact_model_dir = "models/fact";
  int new_tokens = 16;
  int reps = 7;
  int prompts = 1;
  bool medium = true;
  int medium_new_tokens = 16;
  int medium_reps = 3;
};

BenchOptions ParseFlags(int argc, char** argv) {
  BenchOptions o;
  if (const char* dir = std::getenv("ROMED_FACT_MODEL_DIR")) o.fact_model_dir = dir;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::fprintf(stderr, "usage: compare_bench [--flag=value]... (see compare_bench.cc)\n");
      std::exit(2);
    }
    const std::string name = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
    if (name == "threads") o.threads = std::stoi(value);
    else if (name == "fact_model_dir") o.fact_model_dir = value;
    else if (name == "new_tokens") o.new_tokens = std::stoi(value);
    else if (name == "reps") o.reps = std::stoi(value);
    else if (name == "prompts") o.prompts = std::stoi(value);
    else if (name == "medium") o.medium = value != "0";
    else if (name == "medium_new_tokens") o.medium_new_tokens = std::stoi(value);
    else if (name == "medium_reps") o.medium_reps = std::stoi(value);
    else {
      std::fprintf(stderr, "unknown flag --%s\n", name.c_str());
      std::exit(2);
    }
  }
  return o;
}

template <typename T>
T OrDie(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, value.status().ToString().c_str());
    std::exit(1);
  }
  return *std::move(value);
}

void OrDie(const absl::Status& status, const char* what) {
  if (!status.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, status.ToString().c_str());
    std::exit(1);
  }
}

// A session holding one random rank-one delta at `layer`.
std::string SessionWithOneDelta(Engine& engine, int64_t layer) {
  const auto session = OrDie(engine.CreateSession({}), "create session");
  const Gpt2Config& config = engine.model().config();
  OrDie(engine.sessions()
            .PushEdit(session->info.id,
                      [&](const SessionState&) -> absl::StatusOr<EditEntry> {
                        torch::Generator gen = at::detail::createCPUGenerator(3);
                        EditEntry entry;
                        entry.request.rewrites.push_back({"{} is in", "bench", " x", ""});
                        RewriteResultRecord record;
                        record.rewrite = entry.request.rewrites.front();
                        record.layer = layer;
                        record.fact_token = "last";
                        entry.results.push_back(record);
                        entry.deltas.push_back(RankOneDelta{
                            layer, torch::randn({4 * config.n_embd}, gen),
                            torch::randn({config.n_embd}, gen) * 0.1});
                        return entry;
                      })
            .status(),
        "push delta");
  return session->info.id;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times `baseline` and `compare` interleaved; prints medians and the ratio.
void TimePair(const char* what, int reps, const std::function<void()>& baseline,
              const std::function<void()>& compare) {
  baseline();  // warm-up
  compare();
  std::vector<double> base_s, compare_s;
  for (int r = 0; r < reps; ++r) {
    Clock::time_point t = Clock::now();
    baseline();
    base_s.push_back(Since(t));
    t = Clock::now();
    compare();
    compare_s.push_back(Since(t));
  }
  const double b = Median(base_s), c = Median(compare_s);
  std::printf("  %-44s baseline %8.4f s   Compare %8.4f s   ratio %.3f%s\n", what, b, c, c / b,
              c / b <= 0.6 ? "" : "  (target <= 0.6 not met)");
}

// Where a Compare's decode time goes: one GenerateBatch of 1 row, of 2 rows
// on the base model, and of 2 rows on different edit views (Compare's A/B).
void TimeDecodeRows(Engine& engine, const std::string& session, const std::string& prompt,
                    int new_tokens, int reps) {
  // Non-owning shared_ptrs (aliasing constructor): the engine outlives the generator.
  Generator generator(std::shared_ptr<const Gpt2Model>(std::shared_ptr<const Gpt2Model>(),
                                                       &engine.model()),
                      std::shared_ptr<const Gpt2Tokenizer>(std::shared_ptr<const Gpt2Tokenizer>(),
                                                           &engine.tokenizer()));
  romed::GenerateRequest base;
  base.prompt_ids = OrDie(engine.Tokenize(prompt), "tokenize").ids;
  base.max_new_tokens = new_tokens;
  base.stop_at_eos = false;
  romed::GenerateRequest edited = base;
  edited.edits = OrDie(engine.SessionView(session), "session view");
  const std::vector<std::pair<const char*, std::vector<romed::GenerateRequest>>> cases = {
      {"1 row", {base}},
      {"2 rows, base model", {base, base}},
      {"2 rows, base + edited", {base, edited}}};
  std::printf("  decode (GenerateBatch, %d tokens):", new_tokens);
  for (const auto& [what, rows] : cases) {
    std::vector<double> times;
    for (int r = 0; r <= reps; ++r) {
      const Clock::time_point t = Clock::now();
      OrDie(generator.GenerateBatch(rows), "generate batch");
      if (r > 0) times.push_back(Since(t));
    }
    std::printf("  %s %.2f ms/step;", what, 1e3 * Median(times) / new_tokens);
  }
  std::printf("\n");
}

void BenchEngine(const char* name, Engine& engine, int64_t layer, int new_tokens, int reps,
                 int num_prompts) {
  const std::string session = SessionWithOneDelta(engine, layer);
  const std::vector<std::string> all_prompts = {
      "Dora Zope is originally from", "The mother tongue of Ivo Marr is",
      "Lena Kirsch works as a", "Ada Brenner plays the"};
  std::vector<std::string> prompts;
  for (int i = 0; i < num_prompts; ++i) prompts.push_back(all_prompts[i % all_prompts.size()]);
  const std::vector<std::string> targets = {" Vienna", " Lisbon"};
  std::printf("%s: %d prompt(s), %d new tokens, b = one delta at layer %lld, %d reps\n", name,
              num_prompts, new_tokens, static_cast<long long>(layer), reps);

  const auto generate_both = [&] {
    for (const std::string& prompt : prompts) {
      for (const std::string& id : {std::string(), session}) {
        TextGenerateRequest g;
        g.prompt = prompt;
        g.max_new_tokens = new_tokens;
        g.ignore_eos = true;
        g.session_id = id;
        OrDie(engine.Generate(g), "generate");
      }
    }
  };
  const auto score_both = [&] {
    for (const std::string& prompt : prompts) {
      for (const std::string& id : {std::string(), session}) {
        TextScoreRequest s;
        s.prompt = prompt;
        s.continuations = targets;
        s.session_id = id;
        OrDie(engine.Score(s), "score");
      }
    }
  };
  TextCompareRequest compare;
  compare.session_b = session;
  compare.prompts = prompts;
  compare.max_new_tokens = new_tokens;
  compare.ignore_eos = true;
  TimePair("generations: Generate per prompt x variant", reps, generate_both,
           [&] { OrDie(engine.Compare(compare), "compare"); });

  TextCompareRequest full = compare;
  full.targets = targets;
  full.top_k = 5;
  full.kl = true;
  TimePair("+ 2 targets, top-5, KL: + Score per prompt x var.", reps,
           [&] {
             generate_both();
             score_both();
           },
           [&] { OrDie(engine.Compare(full), "compare"); });
  TimeDecodeRows(engine, session, prompts[0], new_tokens, reps);
}

EngineOptions BenchEngineOptions() {
  EngineOptions options;
  options.max_batch_size = 1;
  options.limits.max_new_tokens = 1024;
  return options;
}

void BenchFactModel(const BenchOptions& o) {
  absl::StatusOr<Checkpoint> checkpoint = LoadCheckpoint(o.fact_model_dir);
  if (!checkpoint.ok()) {
    std::printf("fact model: skipped (%s)\n", checkpoint.status().ToString().c_str());
    return;
  }
  const int64_t layer = checkpoint->config.n_layer - 1;
  auto engine =
      OrDie(Engine::Create(*std::move(checkpoint), BenchEngineOptions()), "engine (fact model)");
  BenchEngine("fact model", *engine, layer, o.new_tokens, o.reps, o.prompts);
}

// A byte-level tokenizer with GPT-2's 50257 ids (bytes 0..255, decodable
// fillers "x<id>", "<|endoftext|>" = 50256), so a random 50257-vocabulary
// model can generate (as edit_bench).
std::shared_ptr<const Gpt2Tokenizer> PaddedByteTokenizer() {
  TokenizerFiles files = ByteLevelTokenizerFiles();
  nlohmann::json vocab = nlohmann::json::parse(files.vocab_json);
  vocab.erase("<|endoftext|>");
  for (int id = 256; id < 50256; ++id) vocab["x" + std::to_string(id)] = id;
  vocab["<|endoftext|>"] = 50256;
  return OrDie(Gpt2Tokenizer::FromText(vocab.dump(), files.merges_txt), "tokenizer");
}

void BenchMedium(const BenchOptions& o) {
  Checkpoint checkpoint;
  checkpoint.config = OrDie(Gpt2Config::Preset("gpt2-medium"), "gpt2-medium config");
  const Clock::time_point t = Clock::now();
  checkpoint.weights = Gpt2Weights::Random(checkpoint.config, 1);
  checkpoint.tokenizer = PaddedByteTokenizer();
  checkpoint.checksum = "compare-bench-gpt2-medium-random";
  std::printf("gpt2-medium shape, random weights (%.1f s to build)\n", Since(t));
  auto engine =
      OrDie(Engine::Create(std::move(checkpoint), BenchEngineOptions()), "engine (medium)");
  BenchEngine("gpt2-medium shape", *engine, 8, o.medium_new_tokens, o.medium_reps, o.prompts);
}

int Main(int argc, char** argv) {
  const BenchOptions o = ParseFlags(argc, argv);
  torch::set_num_threads(o.threads);
  std::printf("compare_bench: %d threads; medians; ratio = Compare / baseline (target <= 0.6)\n",
              o.threads);
  BenchFactModel(o);
  if (o.medium) BenchMedium(o);
  return 0;
}

}  // namespace
}  // namespace romed

int main(int argc, char** argv) {
  romed::EnsurePassiveOpenMpWaiting(argv, "compare_bench");
  return romed::Main(argc, argv);
}
