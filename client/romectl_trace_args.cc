#include "client/romectl_trace_args.h"

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::vector<std::string>, kinds, {},
          "trace: what to restore, comma-separated from state,mlp,attn (empty = all three)");
ABSL_FLAG(int32_t, window, 0,
          "trace: layers restored together for mlp/attn, 1..layers (unset = 10 of 48 scaled "
          "to depth)");
ABSL_FLAG(double, noise, 3,
          "trace: noise sigma as a multiple of the std of subject-token embeddings");
ABSL_FLAG(double, noise_sigma, 0, "trace: absolute noise sigma (instead of --noise)");
ABSL_FLAG(int32_t, samples, 10, "trace: noise samples averaged per score, 1..64");
ABSL_FLAG(std::string, answer, "",
          "trace: the answer traced, with its leading space (\" Vienna\"); empty = the clean "
          "top-1 token");
ABSL_FLAG(std::string, sever, "none",
          "trace: none, mlp or attn: freeze later MLP/attention outputs at the restored token");
ABSL_FLAG(std::string, svg, "",
          "trace: also write the heatmaps as an SVG file here; eval --sequential: the plot of "
          "scores and retention against the number of edits");
ABSL_FLAG(std::string, facts, "",
          "trace: average over known facts: a known_1000-style JSON file, or 'model' for the "
          "server model's own");
ABSL_FLAG(bool, store_site, false,
          "trace --facts: store the recommended edit site as the model's default for edit");
ABSL_FLAG(std::string, color, "auto",
          "trace: heatmap colours: auto (a terminal without NO_COLOR), always, never");

ABSL_DECLARE_FLAG(std::string, prompt);
ABSL_DECLARE_FLAG(std::string, subject);
ABSL_DECLARE_FLAG(uint64_t, seed);
ABSL_DECLARE_FLAG(std::string, session);
ABSL_DECLARE_FLAG(int64_t, n);
ABSL_DECLARE_FLAG(bool, progress);

namespace romed::client {
namespace {

absl::StatusOr<romed::v1::TraceKind> ParseKind(const std::string& name) {
  if (name == "state") return romed::v1::TRACE_KIND_STATE;
  if (name == "mlp") return romed::v1::TRACE_KIND_MLP;
  if (name == "attn") return romed::v1::TRACE_KIND_ATTN;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown kind '", name, "' in --kinds; use state, mlp and/or attn"));
}

absl::StatusOr<romed::v1::SeverMode> ParseSever(const std::string& name) {
  if (name == "none") return romed::v1::SEVER_MODE_NONE;
  if (name == "mlp") return romed::v1::SEVER_MODE_MLP;
  if (name == "attn") return romed::v1::SEVER_MODE_ATTN;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown --sever=", name, "; use none, mlp or attn"));
}

// The options every trace takes, for one prompt or for each fact.
absl::StatusOr<romed::v1::TraceRequest> BuildTraceOptions(
    const std::set<absl::string_view>& seen) {
  romed::v1::TraceRequest request;
  for (const std::string& name : absl::GetFlag(FLAGS_kinds)) {
    auto kind = ParseKind(name);
    if (!kind.ok()) return kind.status();
    request.add_kinds(*kind);
  }
  if (seen.count("window")) request.set_window(absl::GetFlag(FLAGS_window));
  if (seen.count("samples")) request.set_samples(absl::GetFlag(FLAGS_samples));
  if (seen.count("noise") && seen.count("noise_sigma")) {
    return absl::InvalidArgumentError("give --noise (a multiple) or --noise_sigma, not both");
  }
  if (seen.count("noise")) request.set_noise_multiplier(float(absl::GetFlag(FLAGS_noise)));
  if (seen.count("noise_sigma")) request.set_noise_sigma(float(absl::GetFlag(FLAGS_noise_sigma)));
  request.set_seed(absl::GetFlag(FLAGS_seed));
  request.set_session_id(absl::GetFlag(FLAGS_session));
  auto sever = ParseSever(absl::GetFlag(FLAGS_sever));
  if (!sever.ok()) return sever.status();
  request.set_sever(*sever);
  return request;
}

}  // namespace

const std::vector<FlagSpec>& TraceFlagSpecs() {
  static const auto* kFlags = new std::vector<FlagSpec>{
      {"kinds", "state,mlp,attn", false, {Command::kTrace}},
      {"window", "W", false, {Command::kTrace}},
      {"noise", "X", false, {Command::kTrace}},
      {"noise_sigma", "SIGMA", false, {Command::kTrace}},
      {"samples", "N", false, {Command::kTrace}},
      {"answer", "TEXT", false, {Command::kTrace}},
      {"sever", "none|mlp|attn", false, {Command::kTrace}},
      {"svg", "PATH", false, {Command::kTrace}},
      {"facts", "FILE|model", false, {Command::kTrace}},
      {"store_site", "", false, {Command::kTrace}},
      {"color", "auto|always|never", false, {Command::kTrace}},
      // Also listed by other commands; trace reads them too.
      {"n", "N", false, {Command::kTrace}},
      {"progress", "", false, {Command::kTrace}},
  };
  return *kFlags;
}

absl::StatusOr<TraceInvocation> BuildTraceInvocation(const std::set<absl::string_view>& seen) {
  TraceInvocation inv;
  inv.color = absl::GetFlag(FLAGS_color);
  if (inv.color != "auto" && inv.color != "always" && inv.color != "never") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --color=", inv.color, "; use auto, always or never"));
  }
  inv.progress = absl::GetFlag(FLAGS_progress);
  inv.svg_path = absl::GetFlag(FLAGS_svg);
  inv.facts = absl::GetFlag(FLAGS_facts);
  auto options = BuildTraceOptions(seen);
  if (!options.ok()) return options.status();
  if (!inv.facts.empty()) {
    for (absl::string_view single_only : {"prompt", "subject", "answer", "svg"}) {
      if (seen.count(single_only)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--", single_only, " traces one prompt; --facts takes prompts, subjects and "
            "answers from the facts"));
      }
    }
    if (seen.count("n")) inv.facts_request.set_n(static_cast<int32_t>(absl::GetFlag(FLAGS_n)));
    inv.facts_request.set_store_recommendation(absl::GetFlag(FLAGS_store_site));
    *inv.facts_request.mutable_options() = *std::move(options);
    return inv;
  }
  for (absl::string_view facts_only : {"n", "store_site"}) {
    if (seen.count(facts_only)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", facts_only, " needs --facts=FILE or --facts=model"));
    }
  }
  if (!seen.count("prompt") || !seen.count("subject")) {
    return absl::InvalidArgumentError(
        "trace needs --prompt and --subject (one prompt) or --facts=FILE|model (many facts)");
  }
  inv.request = *std::move(options);
  inv.request.set_prompt(absl::GetFlag(FLAGS_prompt));
  inv.request.set_subject(absl::GetFlag(FLAGS_subject));
  inv.request.set_answer(absl::GetFlag(FLAGS_answer));
  return inv;
}

}  // namespace romed::client
