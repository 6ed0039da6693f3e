// The paper's causal-trace figure as a standalone SVG: one panel per traced
// kind, side by side (state purple, MLP green, attention red), tokens down,
// layers across, subject tokens starred, axis labels and a colour bar from
// the low score (white) to the panel's highest score.
//
//   std::string svg = RenderTraceSvg(result);   // write it to trace.svg
#ifndef ROMED_SERVER_TRACE_HEATMAP_SVG_H_
#define ROMED_SERVER_TRACE_HEATMAP_SVG_H_

#include <string>
#include <string_view>

#include "server/trace/trace_result.h"

namespace romed {

// A well-formed SVG 1.1 document. `prompt_caption`, if not empty, is shown
// above the panels. Token texts are XML-escaped.
std::string RenderTraceSvg(const TraceResult& trace, std::string_view prompt_caption = "");

// Escapes &, <, >, " and ' for XML text and attributes.
std::string XmlEscape(std::string_view text);

}  // namespace romed

#endif  // ROMED_SERVER_TRACE_HEATMAP_SVG_H_
