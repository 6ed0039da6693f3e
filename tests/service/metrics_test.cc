// ServingMetrics on a private registry: families exist and counters move.
#include "server/metrics/metrics.h"

#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace romed {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, EveryFamilyIsExportedWithTheRomedPrefix) {
  prometheus::Registry registry;
  ServingMetrics metrics(registry);
  // Labelled families are exported once they have a series.
  metrics.RecordRequest("Generate", "OK", 0.1);
  metrics.SetModelInfo({"models/a", "abc", "float32", "cpu", "openblas"});
  const std::string text = metrics.ScrapeText();
  for (const char* family :
       {"romed_requests_total", "romed_request_duration_seconds", "romed_prompt_tokens_total",
        "romed_generated_tokens_total", "romed_time_to_first_token_seconds",
        "romed_inter_token_latency_seconds", "romed_model_info", "romed_inflight_requests"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + family)) << family;
  }
}

TEST(MetricsTest, CountersAndHistogramsMove) {
  prometheus::Registry registry;
  ServingMetrics metrics(registry);
  metrics.RecordRequest("Generate", "OK", 0.5);
  metrics.RecordRequest("Generate", "OK", 0.25);
  metrics.RecordRequest("Score", "INVALID_ARGUMENT", 0.001);
  metrics.AddPromptTokens(7);
  metrics.AddGeneratedTokens(3);
  metrics.ObserveTimeToFirstToken(0.1);
  metrics.ObserveInterTokenLatency(0.01);
  metrics.ObserveInterTokenLatency(0.02);
  const std::string text = metrics.ScrapeText();
  EXPECT_THAT(text, HasSubstr("romed_requests_total{code=\"OK\",method=\"Generate\"} 2"));
  EXPECT_THAT(text,
              HasSubstr("romed_requests_total{code=\"INVALID_ARGUMENT\",method=\"Score\"} 1"));
  EXPECT_THAT(text, HasSubstr("romed_request_duration_seconds_count{method=\"Generate\"} 2"));
  EXPECT_THAT(text, HasSubstr("romed_request_duration_seconds_sum{method=\"Generate\"} 0.75"));
  EXPECT_THAT(text, HasSubstr("romed_prompt_tokens_total 7"));
  EXPECT_THAT(text, HasSubstr("romed_generated_tokens_total 3"));
  EXPECT_THAT(text, HasSubstr("romed_time_to_first_token_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("romed_inter_token_latency_seconds_count 2"));
}

TEST(MetricsTest, InflightGaugeFollowsScopes) {
  prometheus::Registry registry;
  ServingMetrics metrics(registry);
  {
    ScopedInflight a(&metrics);
    ScopedInflight b(&metrics);
    EXPECT_THAT(metrics.ScrapeText(), HasSubstr("romed_inflight_requests 2"));
  }
  EXPECT_THAT(metrics.ScrapeText(), HasSubstr("romed_inflight_requests 0"));
  ScopedInflight none(nullptr);  // no metrics: a no-op
}

TEST(MetricsTest, ModelInfoIsOneSeriesWithTheModelsLabels) {
  prometheus::Registry registry;
  ServingMetrics metrics(registry);
  metrics.SetModelInfo({"models/a", "abc", "float32", "cpu", "openblas"});
  metrics.SetModelInfo({"models/b", "def", "bfloat16", "cpu", "openblas"});
  const std::string text = metrics.ScrapeText();
  EXPECT_THAT(text, HasSubstr("romed_model_info{blas=\"openblas\",checksum=\"def\","
                              "device=\"cpu\",dtype=\"bfloat16\",model=\"models/b\"} 1"));
  EXPECT_THAT(text, Not(HasSubstr("models/a")));
}

}  // namespace
}  // namespace romed
