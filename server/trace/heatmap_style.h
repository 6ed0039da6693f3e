// What the SVG and terminal heatmaps share: the paper's colour maps (state
// purple, MLP green, attention red; white at the low score), token labels
// (subject tokens starred) and the scale of one panel.
#ifndef ROMED_SERVER_TRACE_HEATMAP_STYLE_H_
#define ROMED_SERVER_TRACE_HEATMAP_STYLE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/trace/trace_result.h"

namespace romed {

struct Rgb {
  int r = 255, g = 255, b = 255;
};

// The colour of `fraction` in [0, 1] (clamped) on `kind`'s map, which runs
// from near-white to the darkest shade (matplotlib's Purples / Greens / Reds).
Rgb HeatmapColor(TraceKind kind, double fraction);

// "#rrggbb".
std::string HexColor(Rgb color);

// Token labels for display: the token's text with control characters and
// invalid UTF-8 shown as escapes, "*" appended to subject tokens. [T]
std::vector<std::string> TokenLabels(const TraceResult& trace);

// `text` with every byte that is not part of a well-formed UTF-8 character
// written as "\xNN" (GPT-2 tokens may split a character): valid UTF-8,
// e.g. for a proto string field. Valid text comes back unchanged.
std::string EscapeInvalidUtf8(std::string_view text);

// Width of a UTF-8 label in terminal columns (one per code point).
int64_t DisplayWidth(const std::string& label);

// A panel's colour scale: [low_score, max(scores, low + tiny)], as the paper's
// plots (vmin = low score, vmax = the grid's maximum).
struct PanelScale {
  double low = 0, high = 1;
  double Fraction(double value) const;
};
PanelScale ScaleOf(const TraceResult& trace, const ScoreGrid& grid);

// "p( Paris)" or "p(token 42)" when the answer text is unknown.
std::string AnswerLabel(const TraceResult& trace);

}  // namespace romed

#endif  // ROMED_SERVER_TRACE_HEATMAP_STYLE_H_
