#include "client/romectl_session_format.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

namespace romed::client {
namespace {

std::string FactTokenWord(romed::v1::FactToken token) {
  switch (token) {
    case romed::v1::FACT_TOKEN_SUBJECT_LAST:
      return "subject_last";
    case romed::v1::FACT_TOKEN_SUBJECT_FIRST:
      return "subject_first";
    case romed::v1::FACT_TOKEN_LAST:
      return "last";
    default:
      return "unspecified";
  }
}

std::string Plural(int64_t n, const std::string& word) {
  return absl::StrCat(n, " ", word, n == 1 ? "" : "s");
}

std::string Depth(const romed::v1::Session& s) {
  if (s.num_edits() == 0) return "no edits";
  return absl::StrCat(Plural(s.num_edits(), "edit"), " (top: ", s.last_edit_id(), ")");
}

std::string Labels(const romed::v1::Session& s) {
  std::vector<std::string> labels;
  for (const auto& [key, value] : s.labels()) labels.push_back(absl::StrCat(key, "=", value));
  std::sort(labels.begin(), labels.end());
  return absl::StrJoin(labels, ",");
}

std::string Hyperparameter(const romed::v1::EditRecord& e, const std::string& name) {
  auto it = e.hyperparameters().find(name);
  return it == e.hyperparameters().end() ? "?" : it->second;
}

void AppendRewrite(const romed::v1::RewriteResult& r, std::string* out) {
  const romed::v1::Rewrite& w = r.rewrite();
  absl::StrAppendFormat(out, "  \"%s\" [%s] -> \"%s\"%s\n", w.prompt(), w.subject(),
                        w.target_new(),
                        w.target_true().empty() ? "" : absl::StrCat(" (was \"", w.target_true(), "\")"));
  absl::StrAppendFormat(out, "    site      layer %d, fact_token %s\n", r.layer(),
                        FactTokenWord(r.fact_token()));
  absl::StrAppendFormat(out, "    p(new)    %.4f -> %.4f\n", r.p_new_before(), r.p_new_after());
  if (!w.target_true().empty()) {
    absl::StrAppendFormat(out, "    p(true)   %.4f -> %.4f\n", r.p_true_before(), r.p_true_after());
  }
  absl::StrAppendFormat(out, "    delta     ||u|| %.4g, ||lambda|| %.4g\n", r.delta_u_norm(),
                        r.delta_lambda_norm());
  if (r.loss_curve_size() > 0) {
    absl::StrAppendFormat(out, "    loss      %.4g -> %.4g in %d steps%s\n", r.loss_curve(0),
                          r.loss_curve(r.loss_curve_size() - 1), r.loss_curve_size(),
                          r.converged() ? " (converged)" : "");
  }
  absl::StrAppendFormat(out, "    C         %s\n",
                        r.covariance_source().empty()
                            ? (r.identity_covariance() ? "identity" : "statistics")
                            : r.covariance_source());
  absl::StrAppendFormat(out, "    time      key %.3f s, value %.3f s, update %.3f s, statistics %.3f s\n",
                        r.key_time_s(), r.value_time_s(), r.update_time_s(), r.covariance_time_s());
  if (r.target_already_predicted()) {
    absl::StrAppend(out, "    note      target_new already was the model's answer before this edit\n");
  }
}

void AppendEditRecord(const romed::v1::EditRecord& e, std::string* out) {
  absl::StrAppendFormat(out, "edit %d  %s  %.3f s  (site: %s, C: %s)\n", e.edit_id(),
                        FormatUnixTime(e.created_unix_s()), e.total_time_s(),
                        Hyperparameter(e, "site_source"), Hyperparameter(e, "covariance"));
  for (const romed::v1::RewriteResult& r : e.rewrites()) AppendRewrite(r, out);
}

}  // namespace

std::string FormatUnixTime(double unix_s) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                          absl::FromUnixMicros(static_cast<int64_t>(std::llround(unix_s * 1e6))),
                          absl::UTCTimeZone());
}

std::string FormatSession(const romed::v1::Session& s) {
  std::string out;
  auto line = [&out](const std::string& key, const std::string& value) {
    absl::StrAppendFormat(&out, "%-8s %s\n", key, value);
  };
  line("id", s.id());
  if (!s.name().empty()) line("name", s.name());
  if (s.labels_size() > 0) line("labels", Labels(s));
  if (!s.owner().empty()) line("owner", s.owner());
  line("created", FormatUnixTime(s.created_unix_s()));
  line("updated", FormatUnixTime(s.updated_unix_s()));
  line("edits", Depth(s));
  return out;
}

std::string FormatSessionList(const romed::v1::ListSessionsResponse& response) {
  if (response.sessions_size() == 0) return "no sessions\n";
  std::string out = absl::StrFormat("%-18s %6s  %-23s  %s\n", "ID", "EDITS", "CREATED", "NAME");
  for (const romed::v1::Session& s : response.sessions()) {
    std::string name = s.name();
    if (s.labels_size() > 0) absl::StrAppend(&name, name.empty() ? "" : " ", "[", Labels(s), "]");
    absl::StrAppendFormat(&out, "%-18s %6d  %-23s  %s\n", s.id(), s.num_edits(),
                          FormatUnixTime(s.created_unix_s()), name);
  }
  if (!response.next_page_token().empty()) {
    absl::StrAppend(&out, "more: --page_token=", response.next_page_token(), "\n");
  }
  return out;
}

std::string FormatEditResponse(const romed::v1::EditResponse& response) {
  std::string out;
  AppendEditRecord(response.edit(), &out);
  absl::StrAppend(&out, "session ", response.session().id(), ": ", Depth(response.session()),
                  "\n");
  return out;
}

std::string FormatRevert(const romed::v1::RevertResponse& response) {
  std::string what = response.reverted_edit_ids_size() == 0
                         ? "nothing to revert"
                         : absl::StrCat("reverted ", response.reverted_edit_ids_size() == 1
                                                          ? "edit "
                                                          : "edits ",
                                        absl::StrJoin(response.reverted_edit_ids(), ", "));
  return absl::StrCat(what, "; session ", response.session().id(), ": ",
                      Depth(response.session()), "\n");
}

std::string FormatEdits(const romed::v1::ListEditsResponse& response) {
  if (response.edits_size() == 0) return "no edits\n";
  std::string out;
  for (const romed::v1::EditRecord& e : response.edits()) AppendEditRecord(e, &out);
  return out;
}

std::string FormatStatsResult(const romed::v1::ComputeStatsProgress& last) {
  std::string out = absl::StrFormat(
      "statistics at layer %d: %d tokens of %s, %s\n", last.layer(), last.tokens_done(),
      last.corpus_path(),
      last.cached() ? "from the cache"
                    : absl::StrFormat("computed in %.1f s (%.0f tokens/s)", last.elapsed_s(),
                                      last.elapsed_s() > 0 ? last.tokens_done() / last.elapsed_s()
                                                           : 0.0));
  if (!last.cache_key().empty()) absl::StrAppend(&out, "cache: ", last.cache_key(), "\n");
  return out;
}

std::string FormatProgressBar(const romed::v1::ComputeStatsProgress& p, int width) {
  const double fraction =
      p.tokens_total() > 0 ? std::clamp(double(p.tokens_done()) / p.tokens_total(), 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(std::lround(fraction * width));
  return absl::StrFormat("[%s%s] %3d%%  %d/%d tokens  ETA %.0f s", std::string(filled, '#'),
                         std::string(width - filled, '.'), static_cast<int>(fraction * 100),
                         p.tokens_done(), p.tokens_total(), p.eta_s());
}

}  // namespace romed::client
