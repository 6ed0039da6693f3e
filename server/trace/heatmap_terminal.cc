#include "server/trace/heatmap_terminal.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/trace/heatmap_style.h"

namespace romed {
namespace {

// Shades from empty to full, two columns per cell.
constexpr const char* kShades[] = {"  ", "░░", "▒▒", "▓▓", "██"};

std::string Cell(TraceKind kind, double fraction, bool color) {
  if (color) {
    const Rgb rgb = HeatmapColor(kind, fraction);
    return absl::StrFormat("\x1b[48;2;%d;%d;%dm  \x1b[0m", rgb.r, rgb.g, rgb.b);
  }
  const double f = std::clamp(std::isfinite(fraction) ? fraction : 0.0, 0.0, 1.0);
  return kShades[std::min(4, static_cast<int>(std::floor(f * 5)))];
}

std::string Pad(const std::string& label, int64_t width) {
  return label + std::string(std::max<int64_t>(0, width - DisplayWidth(label)), ' ');
}

}  // namespace

std::string RenderTraceTerminal(const TraceResult& trace, const TerminalHeatmapOptions& options) {
  const std::vector<std::string> labels = TokenLabels(trace);
  int64_t width = 5;
  for (const std::string& label : labels) width = std::max(width, DisplayWidth(label));
  std::string out;
  for (const ScoreGrid& grid : trace.scores) {
    const PanelScale scale = ScaleOf(trace, grid);
    absl::StrAppend(&out, absl::StrFormat(
                              "%s restored (window %d): %s, low %.3f .. high %.3f (clean %.3f)\n",
                              std::string(TraceKindName(grid.kind)),
                              grid.kind == TraceKind::kState ? 1 : trace.window,
                              AnswerLabel(trace), scale.low, scale.high, trace.high_score));
    // Layer header: every layer's number above its cell for shallow models,
    // every fifth layer's for deeper ones.
    std::string ticks(2 * trace.num_layers + 4, ' ');
    const int64_t step = trace.num_layers <= 10 ? 1 : 5;
    for (int64_t l = 0; l < trace.num_layers; l += step) {
      const std::string number = absl::StrCat(l);
      ticks.replace(2 * l, number.size(), number);
    }
    absl::StrAppend(&out, Pad("layer", width + 1), ticks.substr(0, ticks.find_last_not_of(' ') + 1),
                    "\n");
    for (size_t t = 0; t < grid.values.size(); ++t) {
      std::string row = Pad(labels[t], width + 1);
      for (double value : grid.values[t]) {
        absl::StrAppend(&row, Cell(grid.kind, scale.Fraction(value), options.color));
      }
      absl::StrAppend(&out, row, "\n");
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace romed
