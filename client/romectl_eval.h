// `romectl eval`: reads a CounterFact-format dataset, runs an EvalRunner
// against the server and writes the report (eval_report.h): the text table
// on `out` (or one JSON object with --json), bad records and a progress bar
// on `err`, and the --json=PATH, --csv and --svg files.
#ifndef ROMED_CLIENT_ROMECTL_EVAL_H_
#define ROMED_CLIENT_ROMECTL_EVAL_H_

#include <ostream>

#include "client/romectl_args.h"
#include "client/romed_client.h"

namespace romed::client {

// Exit status: kExitOk when the run finished (bad records and refused cases
// are counted in the report, not failures); kExitRpcError when the dataset
// cannot be read or is not a JSON array, when no record is usable, when the
// server fails the run (UNAVAILABLE, RESOURCE_EXHAUSTED, ...), or when an
// output file cannot be written.
int RunEval(const Invocation& invocation, const RomedClient& client, const CallOptions& call,
            std::ostream& out, std::ostream& err);

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_EVAL_H_
