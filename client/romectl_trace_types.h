// What `romectl trace` was asked to do (romectl_trace_args.h fills it,
// romectl_trace.h runs it). Plain data, kept apart so romectl_args.h can
// hold one without including the trace command's code.
#ifndef ROMED_CLIENT_ROMECTL_TRACE_TYPES_H_
#define ROMED_CLIENT_ROMECTL_TRACE_TYPES_H_

#include <string>

#include "romed/v1/model_editor.pb.h"

namespace romed::client {

// The argument of --facts that names the server model's own known facts.
inline constexpr char kModelFacts[] = "model";

struct TraceInvocation {
  // One prompt (--prompt, --subject): the TraceStream request.
  romed::v1::TraceRequest request;
  // --facts: "" = one prompt; kModelFacts = the server's known facts; else a
  // local known-facts JSON file, read when the command runs.
  std::string facts;
  // The TraceFacts request (options, n, store_recommendation); its facts are
  // filled from `facts` when the command runs.
  romed::v1::TraceFactsRequest facts_request;
  std::string svg_path;  // --svg: also write the heatmaps here
  std::string color;     // --color: "auto" (a terminal without NO_COLOR), "always", "never"
  bool progress = true;  // --progress: a progress bar on stderr when it is a terminal
};

}  // namespace romed::client

#endif  // ROMED_CLIENT_ROMECTL_TRACE_TYPES_H_
