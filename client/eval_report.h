// `romectl eval`'s outputs: a table for people, one JSON object, CSV files
// and the sequential plot (eval_plot.h). Pure functions of an EvalReport.
//
// Units: JSON and CSV hold fractions (scores in [0, 1], magnitudes in
// [-1, 1]) and GE in bits; the text table prints 100x every value, as the
// paper's tables do (GE 626.6 there is 6.266 bits). A metric with no prompts
// is null in JSON, empty in CSV and "-" in the table.
#ifndef ROMED_CLIENT_EVAL_REPORT_H_
#define ROMED_CLIENT_EVAL_REPORT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "client/counterfact_dataset.h"
#include "client/eval_runner.h"

namespace romed::client {

// Where the cases came from: the path given and what reading it found.
struct EvalSource {
  std::string dataset;              // --dataset as given
  const CounterFactDataset* data;   // records read, bad records
};

// The retention threshold the report states (95%, the target).
inline constexpr double kRetentionThreshold = 0.95;

// Edits of the first checkpoint whose retention is below `threshold`;
// nullopt if none is (or no checkpoint measured any held fact).
std::optional<int64_t> RetentionFallsBelow(const EvalReport& report, double threshold);

// {"mode", "dataset", "model", "options", "records", "summary": {"unedited",
//  "edited", "final"}, "timing", "cases": [...], "checkpoints": [...],
//  "retention_below_95_after_edits"}.
nlohmann::json EvalReportToJson(const EvalReport& report, const EvalSource& source);

// One row per case: ids, error, edit timings, then es..ge before, after and
// (sequential) final, with a header row. RFC 4180 quoting.
std::string EvalCasesCsv(const EvalReport& report);

// Sequential: one row per checkpoint (edits, metrics, retention counts and
// shares, elapsed_s), with a header row.
std::string EvalCheckpointsCsv(const EvalReport& report);

// The whole report for people: what was run, the totals (unedited and edited
// rows; sequential: the checkpoint table and where retention falls below
// 95%), timings and throughput, and one line per case.
std::string FormatEvalReport(const EvalReport& report, const EvalSource& source);

// `path` with ".checkpoints" before its extension ("out.csv" ->
// "out.checkpoints.csv").
std::string CheckpointsCsvPath(const std::string& path);

}  // namespace romed::client

#endif  // ROMED_CLIENT_EVAL_REPORT_H_
