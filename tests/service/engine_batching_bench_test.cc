// A measurement, not a check (DISABLED_ unless asked for): N concurrent
// greedy Generate requests, each on its own thread, against the same N run
// through the batcher (--max_batch_size=N), on a gpt2-shaped checkpoint
// (C 768, L 12, H 12; byte-level vocabulary). Run with
//   engine_test --gtest_also_run_disabled_tests --gtest_filter='*Bench*'
// Optional: ROMED_BENCH_THREADS (default 2), ROMED_BENCH_CLIENTS (default 8).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/engine/engine.h"
#include "server/model/checkpoint.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_model.h"

namespace romed {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::atoi(value) : fallback;
}

// Seconds for `clients` concurrent requests of `new_tokens` tokens each.
double TimeConcurrent(Engine& engine, int clients, int new_tokens) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      TextGenerateRequest request;
      request.prompt = "Request number " + std::to_string(i) + " asks for text";
      request.max_new_tokens = new_tokens;
      request.ignore_eos = true;
      EXPECT_OK(engine.Generate(request).status());
    });
  }
  for (std::thread& t : threads) t.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(EngineBatchingBench, DISABLED_PerRequestThreadsVersusOneBatch) {
  torch::set_num_threads(EnvInt("ROMED_BENCH_THREADS", 2));
  const int clients = EnvInt("ROMED_BENCH_CLIENTS", 8);
  const int new_tokens = 32;
  Gpt2Config config = testing::TinyConfig();
  config.n_embd = 768;
  config.n_layer = 12;
  config.n_head = 12;
  config.n_positions = 256;
  const std::string dir = testing::WriteTinyCheckpoint(config);
  for (int batch : {1, clients}) {
    ASSERT_OK_AND_ASSIGN(Checkpoint checkpoint, LoadCheckpoint(dir));
    EngineOptions options;
    options.max_batch_size = batch;
    options.batch_window = absl::Milliseconds(5);
    options.limits.max_concurrent_requests = clients;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Engine> engine,
                         Engine::Create(std::move(checkpoint), options));
    TimeConcurrent(*engine, 1, 4);  // warm-up
    const double seconds = TimeConcurrent(*engine, clients, new_tokens);
    std::printf("max_batch_size=%d clients=%d threads=%d: %.2f s, %.1f tokens/s\n", batch,
                clients, torch::get_num_threads(), seconds, clients * new_tokens / seconds);
  }
}

}  // namespace
}  // namespace romed
