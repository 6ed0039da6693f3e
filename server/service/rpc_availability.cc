#include "server/service/rpc_availability.h"

#include "absl/strings/str_cat.h"

namespace romed {
namespace {

struct RpcEntry {
  std::string_view rpc;
  std::string_view missing;  // empty = served
};

constexpr RpcEntry kRpcs[] = {
    {"GetModelInfo", ""},  {"Tokenize", ""},         {"Generate", ""},
    {"GenerateStream", ""}, {"Score", ""},           {"CreateSession", ""},
    {"GetSession", ""},    {"ListSessions", ""},     {"DeleteSession", ""},
    {"Trace", ""},         {"TraceStream", ""},      {"Edit", ""},
    {"Revert", ""},        {"ListEdits", ""},        {"Compare", ""},
    {"ComputeStats", ""},  {"TraceFacts", ""},       {"ExportSession", ""},
    {"ImportSession", ""}, {"ExportModel", ""},
};

}  // namespace

std::map<std::string, std::string> RpcStatusTable() {
  std::map<std::string, std::string> table;
  for (const RpcEntry& e : kRpcs) {
    // Debian's abseil has its own absl::string_view: StrCat takes std::string.
    table[std::string(e.rpc)] =
        e.missing.empty()
            ? "available"
            : absl::StrCat("UNIMPLEMENTED: not implemented yet (", std::string(e.missing), ")");
  }
  return table;
}

absl::Status NotImplementedYet(std::string_view rpc_view) {
  const std::string rpc(rpc_view);
  for (const RpcEntry& e : kRpcs) {
    if (e.rpc == rpc && !e.missing.empty()) {
      return absl::UnimplementedError(
          absl::StrCat(rpc, ": not implemented yet (", std::string(e.missing), ")"));
    }
  }
  return absl::UnimplementedError(absl::StrCat(rpc, ": not implemented"));
}

}  // namespace romed
