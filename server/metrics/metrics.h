// ServingMetrics: every Prometheus family romed exports, declared in one
// place (names, help, labels, buckets) and registered on a caller-owned
// prometheus::Registry. There is no global instance: main.cc builds one and
// injects it by constructor into the engine and the service; tests build
// their own on a private registry and serialise it with ScrapeText().
//
//   family                                  type       labels
//   romed_requests_total                    counter    method, code
//   romed_request_duration_seconds          histogram  method
//   romed_prompt_tokens_total               counter
//   romed_generated_tokens_total            counter
//   romed_time_to_first_token_seconds       histogram
//   romed_inter_token_latency_seconds       histogram
//   romed_model_info                        gauge = 1  model, checksum, dtype, device, blas
//   romed_inflight_requests                 gauge
//   romed_trace_duration_seconds            histogram
//   romed_trace_forward_passes_total        counter
//   romed_edit_stage_duration_seconds       histogram  stage (templates, covariance,
//                                                      key, value, update, score, total)
//   romed_stats_tokens_total                counter    (keys accumulated by ComputeStats/Edit)
//
// `method` is the RPC name ("Generate"); `code` the canonical status name as
// gRPC spells it ("OK", "INVALID_ARGUMENT").
//
// Thread safety: every method may be called concurrently.
#ifndef ROMED_SERVER_METRICS_METRICS_H_
#define ROMED_SERVER_METRICS_METRICS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace romed {

// What romed_model_info reports (its labels).
struct ModelInfoLabels {
  std::string model;     // --model as given
  std::string checksum;  // hex SHA-256 of the checkpoint
  std::string dtype;     // "float32"
  std::string device;    // "cpu"
  std::string blas;      // DescribeBlas()
};

class ServingMetrics {
 public:
  // Registers every family on `registry`, which must outlive this object.
  explicit ServingMetrics(prometheus::Registry& registry);

  ServingMetrics(const ServingMetrics&) = delete;
  ServingMetrics& operator=(const ServingMetrics&) = delete;

  // One finished RPC: counts it under (method, code) and observes its duration.
  void RecordRequest(std::string_view method, std::string_view code, double seconds);

  // romed_inflight_requests; prefer ScopedInflight.
  void IncrementInflight();
  void DecrementInflight();

  void AddPromptTokens(int64_t n);
  void AddGeneratedTokens(int64_t n);
  void ObserveTimeToFirstToken(double seconds);
  void ObserveInterTokenLatency(double seconds);
  // One finished causal trace of one prompt (Trace, or one fact of
  // TraceFacts): its compute time and the forward passes it ran.
  void ObserveTrace(double seconds, int64_t forward_passes);

  // One ROME edit's time in `stage` (per rewrite; "total" per Edit call).
  void ObserveEditStage(std::string_view stage, double seconds);
  // Tokens whose keys covariance statistics have accumulated.
  void AddStatsTokens(int64_t n);

  // Sets romed_model_info{...} = 1 (replacing an earlier model's series).
  void SetModelInfo(const ModelInfoLabels& labels);

  // The registry in the Prometheus text exposition format (what /metrics
  // serves); for tests and debugging.
  std::string ScrapeText() const;

 private:
  prometheus::Registry& registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_duration_;
  prometheus::Counter& prompt_tokens_;
  prometheus::Counter& generated_tokens_;
  prometheus::Histogram& time_to_first_token_;
  prometheus::Histogram& inter_token_latency_;
  prometheus::Family<prometheus::Gauge>& model_info_;
  prometheus::Gauge* model_info_series_ = nullptr;  // guarded by model_info_mutex_
  std::mutex model_info_mutex_;
  prometheus::Gauge& inflight_;
  prometheus::Family<prometheus::Histogram>& edit_stage_duration_;
  prometheus::Counter& stats_tokens_;
  prometheus::Histogram& trace_duration_;
  prometheus::Counter& trace_forward_passes_;
};

// Counts one in-flight request for its lifetime; no-op if metrics is null.
class ScopedInflight {
 public:
  explicit ScopedInflight(ServingMetrics* metrics) : metrics_(metrics) {
    if (metrics_ != nullptr) metrics_->IncrementInflight();
  }
  ~ScopedInflight() {
    if (metrics_ != nullptr) metrics_->DecrementInflight();
  }
  ScopedInflight(const ScopedInflight&) = delete;
  ScopedInflight& operator=(const ScopedInflight&) = delete;

 private:
  ServingMetrics* metrics_;
};

}  // namespace romed

#endif  // ROMED_SERVER_METRICS_METRICS_H_
