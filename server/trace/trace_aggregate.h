// Averages causal traces over many facts (the paper's figure 2 table) and
// recommends where ROME should edit.
//
// Each trace's token rows are sorted into position classes exactly as the
// reference notebook does (subject tokens [b, e), T tokens):
//   first subject token    b
//   middle subject tokens  b+1 .. e-2   (each row counts once)
//   last subject token     e-1          (= b for a one-token subject)
//   first token after      e            (absent if the subject ends the prompt)
//   further tokens         e+1 .. T-2
//   last token             T-1          (may also be "first token after")
// and each class x layer cell averages the indirect effect score - low.
//
// The edit site is the (class, layer) where the windowed MLP effect peaks,
// over the classes ROME can key on: first subject token -> fact_token
// "subject_first", last subject token -> "subject_last", last token -> "last".
#ifndef ROMED_SERVER_TRACE_TRACE_AGGREGATE_H_
#define ROMED_SERVER_TRACE_TRACE_AGGREGATE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/trace/trace_result.h"

namespace romed {

enum class PositionClass {
  kFirstSubject = 0,
  kMiddleSubject,
  kLastSubject,
  kFirstAfter,
  kFurther,
  kLastToken,
};
inline constexpr int kNumPositionClasses = 6;

// "first subject token", "middle subject tokens", ...
std::string_view PositionClassName(PositionClass position);

// One kind's averaged table.
struct KindTable {
  TraceKind kind = TraceKind::kState;
  std::vector<std::vector<double>> effect;  // [6][L] mean indirect effect (0 where count is 0)
  std::vector<int64_t> count;               // [6] token rows averaged per class
};

struct AggregateTable {
  int64_t num_facts = 0;
  int64_t num_layers = 0;  // L
  int64_t window = 1;
  double mean_high = 0;  // mean clean p(answer)
  double mean_low = 0;   // mean corrupted p(answer)
  std::vector<KindTable> kinds;  // the first trace's kinds, in its order

  const KindTable* Find(TraceKind kind) const;
};

// InvalidArgumentError if `traces` is empty, or the traces disagree on the
// number of layers or lack a kind of the first trace.
absl::StatusOr<AggregateTable> AggregateTraces(const std::vector<TraceResult>& traces);

struct SiteRecommendation {
  std::string fact_token;  // "subject_first", "subject_last" or "last"
  PositionClass position = PositionClass::kLastSubject;
  int64_t layer = 0;
  double effect = 0;  // the averaged windowed MLP indirect effect there
  int64_t num_facts = 0;
  int64_t window = 1;
};

// The argmax described above (ties prefer subject_last, then subject_first).
// FailedPreconditionError if the table has no MLP kind or no fact has any of
// the three classes.
absl::StatusOr<SiteRecommendation> RecommendEditSite(const AggregateTable& table);

// {"fact_token": "last", "layer": 3, "effect": 0.91, "num_facts": 50,
//  "window": 1, "kind": "mlp"}. Stored per model by the server.
std::string RecommendationToJson(const SiteRecommendation& site);
// Inverse; InvalidArgumentError on malformed JSON or an unknown fact_token.
absl::StatusOr<SiteRecommendation> RecommendationFromJson(std::string_view json);

// The table as text: one block per kind, classes down, layers across.
std::string FormatAggregateTable(const AggregateTable& table);

}  // namespace romed

#endif  // ROMED_SERVER_TRACE_TRACE_AGGREGATE_H_
