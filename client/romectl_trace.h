// `romectl trace`: one prompt through TraceStream, drawn as the paper's
// heatmaps (terminal, and SVG with --svg), or many facts through TraceFacts,
// printed as the paper's averaged table with the recommended edit site.
// Progress goes to stderr (--noprogress hides it); stdout holds the result
// (one JSON object with --json).
#ifndef ROMED_CLIENT_ROMECTL_TRACE_H_
#define ROMED_CLIENT_ROMECTL_TRACE_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/romectl_args.h"
#include "client/romed_client.h"
#include "server/trace/trace_aggregate.h"
#include "server/trace/trace_result.h"

namespace romed::client {

// Runs inv.trace against `client`; returns romectl's exit status (2 when a
// --facts file cannot be read, 1 for an RPC error).
int RunTrace(const Invocation& inv, const RomedClient& client, const CallOptions& call,
             std::ostream& out, std::ostream& err);

// Facts of a known_1000-style JSON file: an array of objects with "prompt",
// "subject" and "prediction" (or "attribute", given a leading space).
// INVALID_ARGUMENT naming the file and entry when it is unreadable or not
// that format.
absl::StatusOr<std::vector<romed::v1::TraceFact>> ReadFactsFile(const std::string& path);

// {"tokens", "token_ids", "subject_begin", "subject_end", "answer",
//  "answer_id", "high_score", "low_score", "n_layer", "window", "samples",
//  "seed", "noise_sigma", "noise_basis", "sever", "time_s", "forwards",
//  "grids": [{"kind", "window", "scores": [[per layer] per token]}]}
nlohmann::json TraceToJson(const TraceResult& trace, double time_s);
// The lines above the heatmaps: prompt, subject range, answer, clean and
// corrupted p, noise, samples.
std::string FormatTraceSummary(const TraceResult& trace);

// {"table": {"num_facts", "n_layer", "window", "mean_high", "mean_low",
//  "kinds": [{"kind", "classes": [{"position", "count", "effect": [...]}]}]},
//  "recommendation": {...} or null, "stored"}
nlohmann::json TraceFactsToJson(const AggregateTable& table,
                                const std::optional<SiteRecommendation>& site, bool stored);
// "recommended edit site: fact_token=last, layer 3 (...)".
std::string FormatRecommendation(const SiteRecommendation& site, bool stored);

// The `romectl info` line for the model's stored edit site:
// "edit_site    fact_token=last, layer 3 (...)\n".
std::string FormatStoredEditSite(const romed::v1::EditSiteRecommendation& site);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_TRACE_H_
