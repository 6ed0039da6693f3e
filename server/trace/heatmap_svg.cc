#include "server/trace/heatmap_svg.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/trace/heatmap_style.h"

namespace romed {
namespace {

// Geometry in px.
constexpr int kCellHeight = 20;
constexpr int kCharWidth = 7;  // of 12px sans-serif, generously
constexpr int kTop = 58;       // title and subtitle above the grid
constexpr int kBarGap = 14, kBarWidth = 12, kBarLabels = 46, kPanelGap = 28;
constexpr int kBottom = 52;    // tick labels and axis label below the grid
constexpr const char* kFont = "font-family=\"Helvetica, Arial, sans-serif\"";

int CellWidth(int64_t layers) {
  return std::clamp(static_cast<int>(480 / std::max<int64_t>(layers, 1)), 12, 40);
}

std::string PanelTitle(TraceKind kind) {
  switch (kind) {
    case TraceKind::kState:
      return "Restoring state after corrupted input";
    case TraceKind::kMlp:
      return "Restoring MLP after corrupted input";
    case TraceKind::kAttn:
      return "Restoring attention after corrupted input";
  }
  return "";
}

std::string AxisLabel(const TraceResult& trace, TraceKind kind) {
  if (kind == TraceKind::kState || trace.window <= 1) return "single restored layer";
  return absl::StrCat("center of interval of ", trace.window, " restored ",
                      kind == TraceKind::kMlp ? "MLP" : "attention", " layers");
}

std::string Subtitle(const TraceResult& trace, const PanelScale& scale) {
  return absl::StrFormat("%s from %.3f (white, corrupted) to %.3f", AnswerLabel(trace),
                         scale.low, scale.high);
}

// A colour-bar label with enough decimals that the three labels of a bar
// spanning `range` differ (0.00 / 0.01 / 0.01 for a range of 0.014 would not).
std::string BarLabel(double value, double range) {
  const int decimals =
      std::clamp(static_cast<int>(std::ceil(-std::log10(std::max(range, 1e-6)))) + 1, 2, 4);
  return absl::StrFormat("%.*f", decimals, value);
}

std::string Text(double x, double y, std::string_view body, std::string_view extra = "") {
  return absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" %s %s>%s</text>\n", x, y, kFont,
                         std::string(extra), XmlEscape(body));
}

// One panel whose top-left corner is (x0, 0); returns its SVG.
std::string Panel(const TraceResult& trace, const ScoreGrid& grid, int x0, int label_width,
                  int gradient_id) {
  const auto T = static_cast<int64_t>(grid.values.size());
  const int64_t L = trace.num_layers;
  const int cell = CellWidth(L);
  const int gx = x0 + label_width, gy = kTop;
  const int width = static_cast<int>(L) * cell, height = static_cast<int>(T) * kCellHeight;
  const PanelScale scale = ScaleOf(trace, grid);
  std::string out;
  absl::StrAppend(&out, Text(x0, 20, PanelTitle(grid.kind),
                             "font-size=\"13\" font-weight=\"bold\" fill=\"#222\""));
  absl::StrAppend(&out, Text(x0, 38, Subtitle(trace, scale), "font-size=\"11\" fill=\"#555\""));
  const std::vector<std::string> labels = TokenLabels(trace);
  for (int64_t t = 0; t < T; ++t) {
    const int y = gy + static_cast<int>(t) * kCellHeight;
    for (int64_t l = 0; l < L; ++l) {
      const Rgb color = HeatmapColor(grid.kind, scale.Fraction(grid.values[t][l]));
      absl::StrAppend(&out, absl::StrFormat(
                                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                                "<title>%s layer %d: %.4f</title></rect>\n",
                                gx + static_cast<int>(l) * cell, y, cell, kCellHeight,
                                HexColor(color), XmlEscape(labels[t]), l, grid.values[t][l]));
    }
    const bool subject = t >= trace.subject_begin && t < trace.subject_end;
    absl::StrAppend(&out, Text(gx - 6, y + kCellHeight / 2.0 + 4, labels[t],
                               subject ? "font-size=\"12\" text-anchor=\"end\" font-weight=\"bold\" "
                                         "fill=\"#111\" xml:space=\"preserve\""
                                       : "font-size=\"12\" text-anchor=\"end\" fill=\"#333\" "
                                         "xml:space=\"preserve\""));
  }
  absl::StrAppend(&out, absl::StrFormat("<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                                        "fill=\"none\" stroke=\"#888\" stroke-width=\"1\"/>\n",
                                        gx, gy, width, height));
  // Layer ticks: at most ~12 labels.
  const int64_t step = std::max<int64_t>(1, (L + 11) / 12);
  for (int64_t l = 0; l < L; l += step) {
    const double x = gx + (static_cast<double>(l) + 0.5) * cell;
    absl::StrAppend(&out, absl::StrFormat("<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                                          "stroke=\"#888\"/>\n",
                                          x, gy + height, x, gy + height + 4));
    absl::StrAppend(&out, Text(x, gy + height + 16, absl::StrCat(l),
                               "font-size=\"11\" text-anchor=\"middle\" fill=\"#333\""));
  }
  absl::StrAppend(&out, Text(gx + width / 2.0, gy + height + 36, AxisLabel(trace, grid.kind),
                             "font-size=\"12\" text-anchor=\"middle\" fill=\"#222\""));
  // Colour bar: low at the bottom, high at the top.
  const int bx = gx + width + kBarGap;
  absl::StrAppend(&out, absl::StrFormat("<defs><linearGradient id=\"bar%d\" x1=\"0\" y1=\"1\" "
                                        "x2=\"0\" y2=\"0\">",
                                        gradient_id));
  for (int i = 0; i <= 10; ++i) {
    absl::StrAppend(&out, absl::StrFormat("<stop offset=\"%.1f\" stop-color=\"%s\"/>", i / 10.0,
                                          HexColor(HeatmapColor(grid.kind, i / 10.0))));
  }
  absl::StrAppend(&out, "</linearGradient></defs>\n");
  absl::StrAppend(&out, absl::StrFormat("<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                                        "fill=\"url(#bar%d)\" stroke=\"#888\"/>\n",
                                        bx, gy, kBarWidth, height, gradient_id));
  for (int i = 0; i <= 2; ++i) {
    const double value = scale.low + (scale.high - scale.low) * i / 2.0;
    const double y = gy + height - height * i / 2.0;
    absl::StrAppend(&out, Text(bx + kBarWidth + 4, y + 4, BarLabel(value, scale.high - scale.low),
                               "font-size=\"10\" fill=\"#333\""));
  }
  return out;
}

}  // namespace

std::string XmlEscape(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string RenderTraceSvg(const TraceResult& trace, std::string_view prompt_caption) {
  int64_t longest = 1;
  for (const std::string& label : TokenLabels(trace)) longest = std::max(longest, DisplayWidth(label));
  const int label_width = static_cast<int>(longest) * kCharWidth + 12;
  const int cell = CellWidth(trace.num_layers);
  const int panel_width = label_width + static_cast<int>(trace.num_layers) * cell + kBarGap +
                          kBarWidth + kBarLabels + kPanelGap;
  // Titles need room too: ~8px per character at 13px bold, ~6.5px at 11px.
  int text_width = 0;
  for (const ScoreGrid& grid : trace.scores) {
    text_width = std::max<int>(text_width, static_cast<int>(PanelTitle(grid.kind).size()) * 8);
    text_width = std::max<int>(
        text_width, static_cast<int>(DisplayWidth(Subtitle(trace, ScaleOf(trace, grid))) * 6.5));
  }
  const int step = std::max(panel_width, text_width + kPanelGap);
  const int caption = prompt_caption.empty() ? 0 : 26;
  const auto T = static_cast<int>(trace.tokens.size());
  const int width = 16 + step * static_cast<int>(trace.scores.size());
  const int height = caption + kTop + T * kCellHeight + kBottom;
  std::string out = absl::StrFormat(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
      "viewBox=\"0 0 %d %d\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      width, height, width, height);
  if (caption > 0) {
    absl::StrAppend(&out, Text(16, 20,
                               absl::StrFormat("%s  \u2192  %s = %.3f clean, %.3f corrupted",
                                               std::string(prompt_caption), AnswerLabel(trace),
                                               trace.high_score, trace.low_score),
                               "font-size=\"14\" fill=\"#111\""));
  }
  for (size_t i = 0; i < trace.scores.size(); ++i) {
    absl::StrAppend(&out, absl::StrFormat("<g class=\"panel\" id=\"%s\" transform=\"translate(0,%d)\">\n",
                                          std::string(TraceKindName(trace.scores[i].kind)), caption));
    absl::StrAppend(&out, Panel(trace, trace.scores[i], 16 + step * static_cast<int>(i),
                                label_width, static_cast<int>(i)));
    absl::StrAppend(&out, "</g>\n");
  }
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

}  // namespace romed
