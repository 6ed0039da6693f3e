// The causal-trace heatmaps for a terminal: one block per traced kind,
// one row per token (subject tokens starred), one two-column cell per layer,
// coloured with 24-bit ANSI backgrounds on the kind's colour map, or drawn
// with shade characters when colour is off (pipes, NO_COLOR).
//
//   std::cout << RenderTraceTerminal(result, {.color = isatty(1)});
#ifndef ROMED_SERVER_TRACE_HEATMAP_TERMINAL_H_
#define ROMED_SERVER_TRACE_HEATMAP_TERMINAL_H_

#include <string>

#include "server/trace/trace_result.h"

namespace romed {

struct TerminalHeatmapOptions {
  bool color = true;  // ANSI 24-bit colour; false: " .:-=+*#%@"-style shades
};

std::string RenderTraceTerminal(const TraceResult& trace,
                                const TerminalHeatmapOptions& options = {});

}  // namespace romed

#endif  // ROMED_SERVER_TRACE_HEATMAP_TERMINAL_H_
