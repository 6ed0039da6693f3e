#include "client/romectl_compare_args.h"

#include <cstdint>
#include <climits>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, a, "", "compare: variant a, a session id; empty = the original model");
ABSL_FLAG(std::string, b, "", "compare: variant b, a session id; empty = the original model");
ABSL_FLAG(bool, kl, false,
          "compare: also show KL(a || b) of the next-token distributions per prompt");

ABSL_DECLARE_FLAG(int64_t, max_new_tokens);
ABSL_DECLARE_FLAG(int64_t, top_k);
ABSL_DECLARE_FLAG(float, temperature);
ABSL_DECLARE_FLAG(float, top_p);
ABSL_DECLARE_FLAG(uint64_t, seed);
ABSL_DECLARE_FLAG(std::vector<std::string>, stop);
ABSL_DECLARE_FLAG(bool, ignore_eos);
ABSL_DECLARE_FLAG(std::string, color);

namespace romed::client {

const std::vector<FlagSpec>& CompareFlagSpecs() {
  static const auto* kFlags = new std::vector<FlagSpec>{
      {"a", "SESSION", false, {Command::kCompare}},
      {"b", "SESSION", false, {Command::kCompare}},
      {"prompt", "TEXT", true, {Command::kCompare}},
      {"target", "TEXT", true, {Command::kCompare}},
      {"max_new_tokens", "N", false, {Command::kCompare}},
      {"top_k", "K", false, {Command::kCompare}},
      {"kl", "", false, {Command::kCompare}},
      {"temperature", "T", false, {Command::kCompare}},
      {"top_p", "P", false, {Command::kCompare}},
      {"seed", "N", false, {Command::kCompare}},
      {"stop", "TEXT", true, {Command::kCompare}},
      {"ignore_eos", "", false, {Command::kCompare}},
      {"color", "auto|always|never", false, {Command::kCompare}},
  };
  return *kFlags;
}

absl::StatusOr<CompareInvocation> BuildCompareInvocation(
    const std::set<absl::string_view>& seen,
    const std::map<absl::string_view, std::vector<std::string>>& repeated) {
  CompareInvocation inv;
  inv.color = absl::GetFlag(FLAGS_color);
  if (inv.color != "auto" && inv.color != "always" && inv.color != "never") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --color=", inv.color, "; use auto, always or never"));
  }
  const auto values = [&](absl::string_view name) {
    auto it = repeated.find(name);
    return it == repeated.end() ? std::vector<std::string>() : it->second;
  };
  romed::v1::CompareRequest& r = inv.request;
  for (const std::string& prompt : values("prompt")) r.add_prompts(prompt);
  if (r.prompts_size() == 0) {
    return absl::InvalidArgumentError(
        "compare needs at least one --prompt (repeat the flag for several)");
  }
  for (const std::string& target : values("target")) r.add_targets(target);
  r.mutable_a()->set_session_id(absl::GetFlag(FLAGS_a));
  r.mutable_b()->set_session_id(absl::GetFlag(FLAGS_b));
  r.set_max_new_tokens(seen.count("max_new_tokens") ? absl::GetFlag(FLAGS_max_new_tokens)
                                                    : kCompareDefaultNewTokens);
  const int64_t top_k = absl::GetFlag(FLAGS_top_k);
  if (top_k < INT32_MIN || top_k > INT32_MAX) {
    return absl::InvalidArgumentError(absl::StrCat("--top_k=", top_k, " is out of range"));
  }
  r.set_top_k_next(static_cast<int32_t>(top_k));
  r.set_kl(absl::GetFlag(FLAGS_kl));
  r.mutable_sampling()->set_temperature(absl::GetFlag(FLAGS_temperature));
  r.mutable_sampling()->set_top_p(absl::GetFlag(FLAGS_top_p));
  r.mutable_sampling()->set_seed(absl::GetFlag(FLAGS_seed));
  for (const std::string& stop : absl::GetFlag(FLAGS_stop)) r.add_stop(stop);
  r.set_ignore_eos(absl::GetFlag(FLAGS_ignore_eos));
  return inv;
}

}  // namespace romed::client
