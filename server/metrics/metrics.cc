#include "server/metrics/metrics.h"

#include <prometheus/text_serializer.h>

namespace romed {
namespace {

// Request durations: 1 ms .. ~100 s (Generate on CPU can take tens of seconds).
prometheus::Histogram::BucketBoundaries RequestBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1.0,   2.5,    5.0,   10.0, 25.0,  50.0, 100.0};
}

// Per-token latencies: 0.5 ms .. 10 s.
prometheus::Histogram::BucketBoundaries TokenBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
          0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
}

// Causal traces of one prompt: 10 ms .. ~17 min (GPT-2 XL on CPU is slow).
prometheus::Histogram::BucketBoundaries TraceBuckets() {
  return {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0};
}

}  // namespace

ServingMetrics::ServingMetrics(prometheus::Registry& registry)
    : registry_(registry),
      requests_(prometheus::BuildCounter()
                    .Name("romed_requests_total")
                    .Help("Finished RPCs by method and gRPC status code.")
                    .Register(registry)),
      request_duration_(prometheus::BuildHistogram()
                            .Name("romed_request_duration_seconds")
                            .Help("Wall time of finished RPCs by method, seconds.")
                            .Register(registry)),
      prompt_tokens_(prometheus::BuildCounter()
                         .Name("romed_prompt_tokens_total")
                         .Help("Prompt tokens of admitted Generate and Score requests.")
                         .Register(registry)
                         .Add({})),
      generated_tokens_(prometheus::BuildCounter()
                            .Name("romed_generated_tokens_total")
                            .Help("Tokens produced by Generate and GenerateStream.")
                            .Register(registry)
                            .Add({})),
      time_to_first_token_(prometheus::BuildHistogram()
                               .Name("romed_time_to_first_token_seconds")
                               .Help("From admission to the first generated token, seconds.")
                               .Register(registry)
                               .Add({}, TokenBuckets())),
      inter_token_latency_(prometheus::BuildHistogram()
                               .Name("romed_inter_token_latency_seconds")
                               .Help("Between consecutive generated tokens of one request, seconds.")
                               .Register(registry)
                               .Add({}, TokenBuckets())),
      model_info_(prometheus::BuildGauge()
                      .Name("romed_model_info")
                      .Help("The loaded model (value 1; the labels carry the facts).")
                      .Register(registry)),
      inflight_(prometheus::BuildGauge()
                    .Name("romed_inflight_requests")
                    .Help("RPCs being handled now.")
                    .Register(registry)
                    .Add({})),
      edit_stage_duration_(prometheus::BuildHistogram()
                               .Name("romed_edit_stage_duration_seconds")
                               .Help("Time of ROME edits by stage (templates, covariance, key, "
                                     "value, update, score per rewrite; total per Edit), seconds.")
                               .Register(registry)),
      stats_tokens_(prometheus::BuildCounter()
                        .Name("romed_stats_tokens_total")
                        .Help("Tokens whose MLP keys covariance statistics have accumulated.")
                        .Register(registry)
                        .Add({})),
      trace_duration_(prometheus::BuildHistogram()
                          .Name("romed_trace_duration_seconds")
                          .Help("Compute time of one prompt's causal trace (Trace, TraceStream, "
                                "or one fact of TraceFacts), seconds.")
                          .Register(registry)
                          .Add({}, TraceBuckets())),
      trace_forward_passes_(prometheus::BuildCounter()
                                .Name("romed_trace_forward_passes_total")
                                .Help("Batched forward passes run by causal traces.")
                                .Register(registry)
                                .Add({})) {}

void ServingMetrics::RecordRequest(std::string_view method, std::string_view code,
                                   double seconds) {
  const std::string method_label(method);
  requests_.Add({{"method", method_label}, {"code", std::string(code)}}).Increment();
  request_duration_.Add({{"method", method_label}}, RequestBuckets()).Observe(seconds);
}

void ServingMetrics::IncrementInflight() { inflight_.Increment(); }
void ServingMetrics::DecrementInflight() { inflight_.Decrement(); }

void ServingMetrics::AddPromptTokens(int64_t n) { prompt_tokens_.Increment(double(n)); }
void ServingMetrics::AddGeneratedTokens(int64_t n) { generated_tokens_.Increment(double(n)); }
void ServingMetrics::ObserveTimeToFirstToken(double seconds) {
  time_to_first_token_.Observe(seconds);
}
void ServingMetrics::ObserveInterTokenLatency(double seconds) {
  inter_token_latency_.Observe(seconds);
}

void ServingMetrics::ObserveEditStage(std::string_view stage, double seconds) {
  edit_stage_duration_.Add({{"stage", std::string(stage)}}, RequestBuckets()).Observe(seconds);
}
void ServingMetrics::AddStatsTokens(int64_t n) { stats_tokens_.Increment(double(n)); }

void ServingMetrics::ObserveTrace(double seconds, int64_t forward_passes) {
  trace_duration_.Observe(seconds);
  trace_forward_passes_.Increment(double(forward_passes));
}

void ServingMetrics::SetModelInfo(const ModelInfoLabels& labels) {
  std::lock_guard<std::mutex> lock(model_info_mutex_);
  if (model_info_series_ != nullptr) model_info_.Remove(model_info_series_);
  model_info_series_ = &model_info_.Add({{"model", labels.model},
                                         {"checksum", labels.checksum},
                                         {"dtype", labels.dtype},
                                         {"device", labels.device},
                                         {"blas", labels.blas}});
  model_info_series_->Set(1.0);
}

std::string ServingMetrics::ScrapeText() const {
  return prometheus::TextSerializer().Serialize(registry_.Collect());
}

}  // namespace romed
