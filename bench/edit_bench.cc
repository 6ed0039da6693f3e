// edit_bench: time per ROME edit, split into key / value / update, on the
// fact model (if given) and on a gpt2-medium-shaped random model; plus the
// covariance statistics' throughput against plain forward throughput over
// the same rows, in the same run.
//
//   edit_bench [--threads=2] [--fact_model_dir=DIR] [--fact_edits=5]
//              [--medium_steps=3] [--skip_medium=0]
//
// Conventions (printed with the figures):
//  - The fact model edits use fact_token last at the top layer (ROME.md
//    section 8) and C from its stats_corpus.txt (computed once, timed apart).
//  - gpt2-medium shape (24 layers, C 1024, M 4096, V 50257, random weights,
//    a byte-level tokenizer padded to 50257 ids), ROME's released site
//    (layer 8, subject_last), C = I. The value optimisation runs
//    --medium_steps loss evaluations to stay within a few minutes on 2
//    threads; the 20-step time is extrapolated from the per-step time.
//  - Statistics throughput: ComputeSecondMoment (forward up to the layer,
//    key capture, float64 k^T k) against full forwards without hooks.
//  - Delta overhead: greedy decode tokens/s (best of 7) with 0, 10 and 100
//    random rank-one deltas at the edit layer (target: 100 deltas cost < 5%),
//    and the resident memory of 50 EditViews of 100 deltas each per delta
//    against the factor size (M + C) * 4 bytes (target: within 10%).
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/core/openmp_wait.h"
#include "server/edit/rome.h"
#include "server/model/checkpoint.h"
#include "server/model/generator.h"
#include "server/model/gpt2_model.h"
#include "server/model/tokenizer.h"

namespace romed {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct BenchOptions {
  int threads = 2;
  std::string fact_model_dir;
  int fact_edits = 5;
  int medium_steps = 3;
  bool skip_medium = false;
};

BenchOptions ParseFlags(int argc, char** argv) {
  BenchOptions o;
  if (const char* dir = std::getenv("ROMED_FACT_MODEL_DIR")) o.fact_model_dir = dir;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const size_t eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::fprintf(stderr, "usage: edit_bench [--flag=value]... (see edit_bench.cc)\n");
      std::exit(2);
    }
    const std::string name = arg.substr(2, eq - 2), value = arg.substr(eq + 1);
    if (name == "threads") o.threads = std::stoi(value);
    else if (name == "fact_model_dir") o.fact_model_dir = value;
    else if (name == "fact_edits") o.fact_edits = std::stoi(value);
    else if (name == "medium_steps") o.medium_steps = std::stoi(value);
    else if (name == "skip_medium") o.skip_medium = value != "0";
    else {
      std::fprintf(stderr, "unknown flag --%s\n", name.c_str());
      std::exit(2);
    }
  }
  return o;
}

void PrintEdit(const char* what, const RomeResult& r) {
  std::printf("  %-28s key %7.3f s  value %7.3f s (%2zu evals)  update %6.3f s  total %7.3f s"
              "  p(new) %.3f -> %.3f\n",
              what, r.timings.key_s, r.timings.value_s, r.loss_curve.size(), r.timings.update_s,
              r.timings.total_s, r.before.p_new, r.after.p_new);
}

// Statistics vs plain forward throughput over the same rows.
void BenchStatistics(const Gpt2Model& model, const std::vector<std::vector<int64_t>>& rows,
                     int64_t layer) {
  int64_t tokens = 0;
  for (const auto& row : rows) tokens += static_cast<int64_t>(row.size());
  Clock::time_point t = Clock::now();
  auto moment = ComputeSecondMoment(model, layer, rows, /*batch_tokens=*/4096);
  const double stats_s = Since(t);
  if (!moment.ok()) {
    std::printf("  statistics failed: %s\n", moment.status().ToString().c_str());
    return;
  }
  t = Clock::now();
  {
    torch::NoGradGuard no_grad;
    const size_t per_batch = std::max<int64_t>(1, 4096 / model.config().n_positions);
    for (size_t first = 0; first < rows.size(); first += per_batch) {
      const size_t last = std::min(rows.size(), first + per_batch);
      std::vector<std::vector<int64_t>> part(rows.begin() + first, rows.begin() + last);
      size_t width = 0;
      for (const auto& r : part) width = std::max(width, r.size());
      torch::Tensor ids = torch::zeros({static_cast<int64_t>(part.size()), static_cast<int64_t>(width)}, torch::kInt64);
      torch::Tensor mask = torch::zeros_like(ids);
      for (size_t i = 0; i < part.size(); ++i) {
        ids[i].slice(0, 0, part[i].size()).copy_(torch::tensor(part[i], torch::kInt64));
        mask[i].slice(0, 0, part[i].size()).fill_(1);
      }
      model.Forward({ids, mask});
    }
  }
  const double forward_s = Since(t);
  std::printf("  statistics at layer %lld: %lld tokens, %.0f tokens/s; plain full forward %.0f "
              "tokens/s; ratio %.2f (target >= 0.8)\n",
              static_cast<long long>(layer), static_cast<long long>(tokens), tokens / stats_s,
              tokens / forward_s, forward_s / stats_s);
}

// Bytes malloc has handed out and not taken back (glibc mallinfo2: arena
// in use + mmapped blocks). Unlike the resident set it does not hide new
// allocations behind pages freed earlier in the run.
int64_t AllocatedBytes() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
}

// `n` random rank-one deltas at `layer`: u [M] unit, lambda [C] of norm `scale`.
std::vector<RankOneDelta> RandomDeltas(const Gpt2Config& config, int64_t layer, int n,
                                       uint64_t seed, double scale = 1e-3) {
  torch::manual_seed(seed);
  std::vector<RankOneDelta> deltas;
  for (int i = 0; i < n; ++i) {
    torch::Tensor u = torch::randn({config.mlp_width()});
    torch::Tensor lambda = torch::randn({config.n_embd});
    deltas.push_back({layer, u / u.norm(), lambda * (scale / lambda.norm().item<double>())});
  }
  return deltas;
}

// Greedy decode tokens/s on a session holding 0, 10 and 100 deltas at
// `layer` (best of 7 runs each), and the memory an EditView takes per delta
// against the factor size (M + C) * 4 bytes.
void BenchDeltaOverhead(const std::shared_ptr<const Gpt2Model>& model,
                        const std::shared_ptr<const Gpt2Tokenizer>& tok, int64_t layer,
                        int new_tokens) {
  Generator generator(model, tok);
  GenerateRequest request;
  request.prompt_ids = *tok->Encode("The mother tongue of Dora Zope is");
  request.max_new_tokens = new_tokens;
  request.stop_at_eos = false;
  double base_tps = 0;
  for (int n : {0, 10, 100}) {
    request.edits = n == 0 ? nullptr
                           : EditView::Build(RandomDeltas(model->config(), layer, n, 7),
                                             model->device(), model->dtype());
    double best = 0;
    for (int run = 0; run < 7; ++run) {
      Clock::time_point t = Clock::now();
      auto result = generator.Generate(request);
      if (!result.ok()) {
        std::printf("  generate failed: %s\n", result.status().ToString().c_str());
        return;
      }
      best = std::max(best, static_cast<double>(result->ids.size()) / Since(t));
    }
    if (n == 0) base_tps = best;
    std::printf("  generate, %3d deltas at layer %lld: %7.1f tokens/s (time per token %+.1f%% vs "
                "no deltas)\n",
                n, static_cast<long long>(layer), best, 100.0 * (base_tps / best - 1.0));
  }
  const Gpt2Config& c = model->config();
  const int views = 50, per_view = 100;
  const int64_t before = AllocatedBytes();
  std::vector<std::shared_ptr<const EditView>> held;
  for (int v = 0; v < views; ++v) {
    held.push_back(EditView::Build(RandomDeltas(c, layer, per_view, 100 + v), model->device(),
                                   model->dtype()));
  }
  const double measured = double(AllocatedBytes() - before) / (views * per_view);
  const double factor = double(c.mlp_width() + c.n_embd) * 4;
  std::printf("  memory: %d views x %d deltas: %.0f bytes allocated per delta vs %.0f bytes of "
              "factors (u [M] + lambda [C], float32): %.2fx\n",
              views, per_view, measured, factor, measured / factor);
}

void BenchFactModel(const BenchOptions& o) {
  auto checkpoint = LoadCheckpoint(o.fact_model_dir);
  if (!checkpoint.ok()) {
    std::printf("fact model: %s\n", checkpoint.status().ToString().c_str());
    return;
  }
  auto shared_model = std::make_shared<const Gpt2Model>(checkpoint->config, checkpoint->weights);
  const Gpt2Model& model = *shared_model;
  const Gpt2Tokenizer& tok = *checkpoint->tokenizer;
  const int64_t layer = model.config().n_layer - 1;
  std::printf("fact model %s (L %lld, C %lld, M %lld, V %lld), layer %lld, fact_token last\n",
              o.fact_model_dir.c_str(), static_cast<long long>(model.config().n_layer),
              static_cast<long long>(model.config().n_embd),
              static_cast<long long>(model.config().mlp_width()),
              static_cast<long long>(model.config().vocab_size), static_cast<long long>(layer));

  CorpusCovarianceOptions stats_options;
  stats_options.corpus_path = o.fact_model_dir + "/stats_corpus.txt";
  CorpusCovariance covariance(model, tok, stats_options);
  Clock::time_point t = Clock::now();
  auto stats = covariance.Get(layer);
  if (!stats.ok()) {
    std::printf("  statistics: %s\n", stats.status().ToString().c_str());
    return;
  }
  std::printf("  covariance: %lld tokens in %.2f s (ridge %g)\n",
              static_cast<long long>((*stats)->token_count), Since(t), (*stats)->ridge);
  {
    std::ifstream in(stats_options.corpus_path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto ids = tok.Encode(text);
    std::vector<std::vector<int64_t>> rows;
    for (size_t p = 0; ids.ok() && p < ids->size(); p += model.config().n_positions) {
      rows.emplace_back(ids->begin() + p,
                        ids->begin() + std::min(ids->size(), p + model.config().n_positions));
    }
    BenchStatistics(model, rows, layer);
  }

  std::ifstream in(o.fact_model_dir + "/counterfact.json");
  nlohmann::json cases = nlohmann::json::parse(in);
  RomeOptions options = DefaultRomeOptions(model.config());
  options.layer = layer;
  options.fact_token = FactToken::kLast;
  ContextTemplateCache templates;
  double key = 0, value = 0, update = 0, total = 0;
  int n = 0, effective = 0;
  for (const auto& c : cases) {
    if (n == o.fact_edits) break;
    const auto& rw = c["requested_rewrite"];
    RewriteRequest request{rw["prompt"], rw["subject"], rw["target_new"]["str"],
                           rw["target_true"]["str"]};
    auto result = ComputeRomeEdit(model, tok, nullptr, request, options, covariance, &templates);
    if (!result.ok()) {
      std::printf("  edit failed: %s\n", result.status().ToString().c_str());
      return;
    }
    if (n == 0) {
      std::printf("  first edit (context templates generated, %.3f s)\n", result->timings.templates_s);
    }
    PrintEdit(request.subject.c_str(), *result);
    key += result->timings.key_s;
    value += result->timings.value_s;
    update += result->timings.update_s;
    total += result->timings.total_s;
    effective += result->after.p_new > result->after.p_true;
    ++n;
  }
  if (n > 0) {
    std::printf("  mean over %d edits: key %.3f s, value %.3f s, update %.4f s, total %.3f s; "
                "P(new) > P(true) after %d/%d\n",
                n, key / n, value / n, update / n, total / n, effective, n);
  }
  BenchDeltaOverhead(shared_model, checkpoint->tokenizer, layer, /*new_tokens=*/48);
}

// A byte-level tokenizer with GPT-2's 50257 ids: bytes are 0..255, filler
// tokens "x<id>" (never produced by Encode, decodable) fill 256..50255, and
// "<|endoftext|>" is 50256. Lets a random 50257-vocabulary model sample.
std::unique_ptr<Gpt2Tokenizer> PaddedByteTokenizer() {
  TokenizerFiles files = ByteLevelTokenizerFiles();
  nlohmann::json vocab = nlohmann::json::parse(files.vocab_json);
  vocab.erase("<|endoftext|>");
  for (int id = 256; id < 50256; ++id) vocab["x" + std::to_string(id)] = id;
  vocab["<|endoftext|>"] = 50256;
  auto tok = Gpt2Tokenizer::FromText(vocab.dump(), files.merges_txt);
  if (!tok.ok()) {
    std::fprintf(stderr, "tokenizer: %s\n", tok.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*tok);
}

void BenchMedium(const BenchOptions& o) {
  auto config = Gpt2Config::Preset("gpt2-medium");
  Clock::time_point t = Clock::now();
  auto shared_model = std::make_shared<const Gpt2Model>(*config, Gpt2Weights::Random(*config, 1));
  const Gpt2Model& model = *shared_model;
  std::shared_ptr<const Gpt2Tokenizer> tok = PaddedByteTokenizer();
  std::printf("gpt2-medium shape, random weights (%.1f s to build), layer 8, subject_last, C = I, "
              "%d value evaluations\n", Since(t), o.medium_steps);
  RomeOptions options = DefaultRomeOptions(model.config());
  options.mom2_adjustment = false;
  options.v_num_grad_steps = o.medium_steps;
  options.early_stop_loss = 0.0;  // run every step (timing)
  IdentityCovariance identity(model.config().mlp_width());
  ContextTemplateCache templates;
  RewriteRequest request{"The mother tongue of {} is", "Danielle Darrieux", "English", "French"};
  auto result = ComputeRomeEdit(model, *tok, nullptr, request, options, identity, &templates);
  if (!result.ok()) {
    std::printf("  edit failed: %s\n", result.status().ToString().c_str());
    return;
  }
  std::printf("  context templates: %.2f s (once per model)\n", result->timings.templates_s);
  PrintEdit("first edit", *result);
  auto again = ComputeRomeEdit(model, *tok, nullptr, request, options, identity, &templates);
  if (!again.ok()) return;
  PrintEdit("second edit (templates cached)", *again);
  const double per_step = again->timings.value_s / static_cast<double>(again->loss_curve.size());
  std::printf("  value: %.2f s per evaluation -> ~%.1f s for ROME's 20; edit total at 20 steps "
              "~%.1f s (key %.2f + value + update %.3f)\n",
              per_step, 20 * per_step,
              again->timings.key_s + 20 * per_step + again->timings.update_s, again->timings.key_s,
              again->timings.update_s);
  BenchDeltaOverhead(shared_model, tok, options.layer, /*new_tokens=*/16);
}

int Main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures survive a timeout
  const BenchOptions o = ParseFlags(argc, argv);
  at::set_num_threads(o.threads);
  at::set_num_interop_threads(1);
  std::printf("edit_bench: %d threads (CPU, float32)\n", o.threads);
  if (!o.fact_model_dir.empty()) BenchFactModel(o);
  else std::printf("fact model: none (--fact_model_dir or ROMED_FACT_MODEL_DIR)\n");
  if (!o.skip_medium) BenchMedium(o);
  return 0;
}

}  // namespace
}  // namespace romed

int main(int argc, char** argv) {
  // Spinning OpenMP threads (libtorch's and OpenBLAS's) made decoding with
  // deltas 8x slower on a shared machine: sleep between regions, as romed does.
  romed::EnsurePassiveOpenMpWaiting(argv, "edit_bench");
  return romed::Main(argc, argv);
}
