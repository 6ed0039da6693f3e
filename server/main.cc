// romed: the gRPC server. Flags -> options, load the model, serve, drain.
//
//   romed --model=models/fact --port=50051 --metrics_port=9090
//
// Startup: the gRPC port opens first with grpc.health.v1 NOT_SERVING, the
// model loads (model RPCs answer UNAVAILABLE meanwhile), then health turns
// SERVING and one log line states what is served. A missing or corrupt model
// prints the loader's message and exits 1. SIGTERM/SIGINT: health turns
// NOT_SERVING, running RPCs get --drain_seconds to finish, exit 0.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <torch/torch.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/core/openmp_wait.h"
#include "server/engine/device.h"
#include "server/engine/engine.h"
#include "server/metrics/metrics.h"
#include "server/model/blas_info.h"
#include "server/model/checkpoint.h"
#include "server/service/grpc_server.h"
#include "server/service/model_editor_service.h"

#ifndef ROMED_VERSION
#define ROMED_VERSION "dev"
#endif

ABSL_FLAG(std::string, model, "models/fact", "Hugging Face GPT-2 model directory (required)");
ABSL_FLAG(std::string, host, "127.0.0.1", "Address the gRPC and metrics ports listen on");
ABSL_FLAG(int, port, 50051, "gRPC port (0 picks a free one)");
ABSL_FLAG(int, metrics_port, 9090, "Prometheus /metrics port; 0 disables");
ABSL_FLAG(std::string, state_dir, "state", "Directory for durable state (created)");
ABSL_FLAG(std::string, stats_corpus, "",
          "Text file or directory for Edit's covariance statistics; empty = "
          "<model>/stats_corpus.txt");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N");
ABSL_FLAG(std::string, dtype, "float32", "Compute dtype: float32, float16 or bfloat16");
ABSL_FLAG(int, threads, 0, "Intra-op threads; 0 = one per hardware thread");
ABSL_FLAG(int64_t, max_prompt_tokens, 1024, "Longest prompt in tokens");
ABSL_FLAG(int64_t, max_new_tokens, 512, "Largest max_new_tokens per Generate");
ABSL_FLAG(int64_t, max_stop_sequences, 8, "Most stop sequences per Generate");
ABSL_FLAG(int64_t, max_continuations, 64, "Most continuations per Score");
ABSL_FLAG(int64_t, max_concurrent_requests, 16,
          "Generate/Score requests running at once; more get RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_sessions, 1000, "Most sessions at once");
ABSL_FLAG(int64_t, max_edits_per_session, 1000, "Most edit stack entries per session");
ABSL_FLAG(int64_t, max_concurrent_heavy_jobs, 1, "Edit / Trace / ComputeStats jobs at once");
ABSL_FLAG(int64_t, max_receive_message_bytes, 4 << 20,
          "Largest request message; larger ones get RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_batch_size, 8,
          "Concurrent Generate requests decoded together in one batch; 1 = one thread per "
          "request");
ABSL_FLAG(int, batch_window_ms, 2, "How long a batch waits for more requests (ms)");
ABSL_FLAG(int, drain_seconds, 10, "On SIGTERM/SIGINT, how long running RPCs may finish");

namespace romed {
namespace {

// One plain stderr line with a UTC timestamp.
void Log(const std::string& line) {
  const std::string stamp =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone());
  std::fprintf(stderr, "%s romed: %s\n", stamp.c_str(), line.c_str());
}

int Fail(const std::string& message) {
  Log(absl::StrCat("error: ", message));
  return 1;
}

std::string HostPort(const std::string& host, int port) {
  const bool ipv6 = host.find(':') != std::string::npos && host.front() != '[';
  return ipv6 ? absl::StrCat("[", host, "]:", port) : absl::StrCat(host, ":", port);
}

EngineOptions EngineOptionsFromFlags() {
  EngineOptions options;
  options.limits.max_prompt_tokens = absl::GetFlag(FLAGS_max_prompt_tokens);
  options.limits.max_new_tokens = absl::GetFlag(FLAGS_max_new_tokens);
  options.limits.max_stop_sequences = absl::GetFlag(FLAGS_max_stop_sequences);
  options.limits.max_continuations = absl::GetFlag(FLAGS_max_continuations);
  options.limits.max_concurrent_requests = absl::GetFlag(FLAGS_max_concurrent_requests);
  options.limits.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  options.limits.max_edits_per_session = absl::GetFlag(FLAGS_max_edits_per_session);
  options.limits.max_concurrent_heavy_jobs = absl::GetFlag(FLAGS_max_concurrent_heavy_jobs);
  options.max_batch_size = absl::GetFlag(FLAGS_max_batch_size);
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.stats_corpus = absl::GetFlag(FLAGS_stats_corpus);
  options.batch_window = absl::Milliseconds(absl::GetFlag(FLAGS_batch_window_ms));
  return options;
}

// Waits for SIGTERM/SIGINT on its own thread (the signals are blocked in
// every other thread). Before the model is served a signal exits at once:
// there is nothing to drain and loading cannot be interrupted.
class ShutdownSignal {
 public:
  ShutdownSignal() {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);  // inherited by later threads
    thread_ = std::thread([this] { WaitForSignal(); });
    thread_.detach();
  }

  void MarkServing() {
    std::lock_guard<std::mutex> lock(mu_);
    serving_ = true;
  }

  // Blocks until a signal arrives; returns its name.
  std::string Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return signal_ != 0; });
    return signal_ == SIGTERM ? "SIGTERM" : "SIGINT";
  }

 private:
  void WaitForSignal() {
    int sig = 0;
    sigwait(&signals_, &sig);
    std::lock_guard<std::mutex> lock(mu_);
    if (!serving_) {
      Log(absl::StrCat("received signal ", sig, " before serving; exiting"));
      std::_Exit(128 + sig);
    }
    signal_ = sig;
    cv_.notify_all();
  }

  sigset_t signals_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool serving_ = false;  // guarded by mu_
  int signal_ = 0;        // guarded by mu_
};

std::string DescribeStartup(const EngineInfo& info, const std::string& address,
                            const std::string& metrics, double load_s) {
  return absl::StrFormat(
      "serving model %s (%s, %d parameters, L=%d C=%d H=%d V=%d context=%d, checksum %.12s) "
      "dtype=%s device=%s blas=%s threads=%d max_batch_size=%d on %s, metrics %s; "
      "loaded in %.2f s",
      info.model_dir, info.architecture, info.num_parameters, info.config.n_layer,
      info.config.n_embd, info.config.n_head, info.config.vocab_size, info.config.n_positions,
      info.checksum, info.dtype, info.device, info.blas, info.threads, info.max_batch_size,
      address, metrics, load_s);
}

int Run() {
  ShutdownSignal shutdown;  // first: every thread created later inherits the mask

  auto device = ParseDevice(absl::GetFlag(FLAGS_device));
  if (!device.ok()) return Fail(std::string(device.status().message()));
  auto dtype = ParseDtype(absl::GetFlag(FLAGS_dtype));
  if (!dtype.ok()) return Fail(std::string(dtype.status().message()));
  const EngineOptions engine_options = EngineOptionsFromFlags();
  const int threads = absl::GetFlag(FLAGS_threads);
  if (threads < 0) return Fail("--threads must be >= 0");
  torch::set_num_threads(threads > 0 ? threads
                                     : std::max(1u, std::thread::hardware_concurrency()));

  std::error_code ec;
  std::filesystem::create_directories(absl::GetFlag(FLAGS_state_dir), ec);
  if (ec) {
    return Fail(absl::StrCat("cannot create --state_dir=", absl::GetFlag(FLAGS_state_dir), ": ",
                             ec.message()));
  }

  auto registry = std::make_shared<prometheus::Registry>();
  ServingMetrics metrics(*registry);
  std::unique_ptr<prometheus::Exposer> exposer;
  std::string metrics_where = "disabled";
  if (const int metrics_port = absl::GetFlag(FLAGS_metrics_port); metrics_port != 0) {
    metrics_where = absl::StrCat("http://", HostPort(absl::GetFlag(FLAGS_host), metrics_port),
                                 "/metrics");
    try {
      exposer = std::make_unique<prometheus::Exposer>(
          HostPort(absl::GetFlag(FLAGS_host), metrics_port));
    } catch (const std::exception& e) {
      return Fail(absl::StrCat("cannot serve metrics on ", metrics_where, ": ", e.what()));
    }
    exposer->RegisterCollectable(registry);
  }

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  const int64_t max_receive = absl::GetFlag(FLAGS_max_receive_message_bytes);
  ModelEditorService service(ServerFacts{max_receive, ROMED_VERSION}, &metrics);
  GrpcServerOptions server_options;
  server_options.listen_address =
      HostPort(absl::GetFlag(FLAGS_host), absl::GetFlag(FLAGS_port));
  server_options.max_receive_message_bytes = max_receive;
  auto started = StartGrpcServer(server_options, &service);
  if (!started.ok()) return Fail(std::string(started.status().message()));
  grpc::Server& server = *started->server;
  const std::string address = HostPort(absl::GetFlag(FLAGS_host), started->port);
  Log(absl::StrCat("listening on ", address, " (NOT_SERVING); loading ",
                   absl::GetFlag(FLAGS_model)));

  const auto load_start = std::chrono::steady_clock::now();
  auto checkpoint = LoadCheckpoint(absl::GetFlag(FLAGS_model), LoadOptions{*device, *dtype});
  if (!checkpoint.ok()) {
    server.Shutdown();
    return Fail(absl::StrCat("cannot load --model=", absl::GetFlag(FLAGS_model), ": ",
                             checkpoint.status().ToString()));
  }
  auto engine = Engine::Create(*std::move(checkpoint), engine_options, &metrics);
  if (!engine.ok()) {
    server.Shutdown();
    return Fail(engine.status().ToString());
  }
  std::shared_ptr<Engine> shared_engine = *std::move(engine);
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  const EngineInfo info = shared_engine->Info();
  metrics.SetModelInfo({absl::GetFlag(FLAGS_model), info.checksum, info.dtype, info.device,
                        info.blas});
  service.SetEngine(shared_engine);
  shutdown.MarkServing();
  SetServing(server, true);
  Log(DescribeStartup(info, address, metrics_where, load_s));

  const std::string signal_name = shutdown.Wait();
  const int drain = absl::GetFlag(FLAGS_drain_seconds);
  Log(absl::StrCat(signal_name, ": NOT_SERVING, draining for up to ", drain, " s"));
  SetServing(server, false);
  server.Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(drain));
  server.Wait();
  Log("stopped");
  return 0;
}

}  // namespace
}  // namespace romed

int main(int argc, char** argv) {
  romed::EnsurePassiveOpenMpWaiting(argv, "romed");
  absl::SetProgramUsageMessage(
      "romed --model=DIR [--host=127.0.0.1] [--port=50051] [--metrics_port=9090] ...\n"
      "Serves romed.v1.ModelEditor for a Hugging Face GPT-2 checkpoint.");
  absl::ParseCommandLine(argc, argv);
  return romed::Run();
}
