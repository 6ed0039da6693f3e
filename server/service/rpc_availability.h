// Which RPCs of romed.v1.ModelEditor this build serves, and for those it
// does not, what is missing. GetModelInfo reports the table (rpc_status) and
// every unserved RPC answers UNIMPLEMENTED with the same text, e.g.
//   "Edit: not implemented yet (issue #5: Edit and Revert)".
// When an issue lands, its RPCs move to available here.
#ifndef ROMED_SERVER_SERVICE_RPC_AVAILABILITY_H_
#define ROMED_SERVER_SERVICE_RPC_AVAILABILITY_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace romed {

// RPC name -> "available" or "UNIMPLEMENTED: <why>", for every RPC.
std::map<std::string, std::string> RpcStatusTable();

// UnimplementedError naming `rpc` and the issue it waits for.
absl::Status NotImplementedYet(std::string_view rpc);

}  // namespace romed

#endif  // ROMED_SERVER_SERVICE_RPC_AVAILABILITY_H_
