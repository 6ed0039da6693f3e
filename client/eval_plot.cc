#include "client/eval_plot.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace romed::client {
namespace {

// Figure geometry, in SVG user units (pixels).
constexpr double kWidth = 820, kHeight = 470;
constexpr double kLeft = 72, kRight = 230, kTop = 56, kBottom = 64;
constexpr double kPlotW = kWidth - kLeft - kRight, kPlotH = kHeight - kTop - kBottom;

struct Series {
  const char* name;
  const char* color;
  double stroke_width;
  const char* dash;  // "" = solid
  double opacity;
  std::function<std::optional<double>(const Checkpoint&)> value;  // fraction
};

std::vector<Series> AllSeries() {
  return {
      // ES first and wide, so PS drawn on top of it stays visible where they agree.
      {"ES efficacy", "#1f77b4", 6.0, "", 0.45,
       [](const Checkpoint& c) { return c.edited.es; }},
      {"PS paraphrase", "#ff7f0e", 2.0, "", 1.0, [](const Checkpoint& c) { return c.edited.ps; }},
      {"NS neighbourhood", "#2ca02c", 2.0, "", 1.0,
       [](const Checkpoint& c) { return c.edited.ns; }},
      {"S (harmonic mean)", "#222222", 2.5, "", 1.0,
       [](const Checkpoint& c) { return c.edited.s; }},
      {"retention, other facts", "#9467bd", 2.5, "7,4", 1.0,
       [](const Checkpoint& c) { return c.Retention().Share(); }},
  };
}

std::string Escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

// A 1-2-5 step giving at most ~8 ticks over [0, max].
double TickStep(double max) {
  const double raw = std::max(1.0, max / 8);
  const double magnitude = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * magnitude >= raw) return m * magnitude;
  }
  return 10 * magnitude;
}

// Data -> figure coordinates. x: [0, max_x] edits; y: [y_low, 1], from 0
// when a value is low, else zoomed in to a multiple of 10% (at most 90%, so
// the 95% line shows).
struct Frame {
  double max_x = 1;
  double y_low = 0;
  double X(double edits) const { return kLeft + kPlotW * edits / max_x; }
  double Y(double fraction) const { return kTop + kPlotH * (1 - fraction) / (1 - y_low); }
};

double YLow(const std::vector<Checkpoint>& checkpoints, const std::vector<Series>& series) {
  double lowest = 1;
  for (const Checkpoint& c : checkpoints) {
    for (const Series& s : series) {
      if (std::optional<double> v = s.value(c)) lowest = std::min(lowest, *v);
    }
  }
  return std::clamp(std::floor(lowest * 10) / 10, 0.0, 0.9);
}

std::string Axes(const Frame& frame) {
  std::string out;
  const double low = std::round(100 * frame.y_low);
  const double y_step = TickStep(100 - low) > 1 ? TickStep(100 - low) : 1;
  for (double p = low; p <= 100 + 1e-9; p += y_step) {
    const double y = frame.Y(p / 100.0);
    absl::StrAppend(&out, absl::StrFormat(
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"12\">%g%%</text>\n",
        kLeft, y, kLeft + kPlotW, y, kLeft - 8, y + 4, p));
  }
  const double step = TickStep(frame.max_x);
  for (double t = 0; t <= frame.max_x + 1e-9; t += step) {
    const double x = frame.X(t);
    absl::StrAppend(&out, absl::StrFormat(
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#f0f0f0\"/>\n"
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#444\"/>\n"
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">%g</text>\n",
        x, kTop, x, kTop + kPlotH, x, kTop + kPlotH, x, kTop + kPlotH + 5, x,
        kTop + kPlotH + 20, t));
  }
  absl::StrAppend(&out, absl::StrFormat(
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
      "stroke=\"#444\"/>\n",
      kLeft, kTop, kPlotW, kPlotH));
  // The 95% reference line.
  absl::StrAppend(&out, absl::StrFormat(
      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
      "stroke-dasharray=\"3,3\"/>\n"
      "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#d62728\">95%%</text>\n",
      kLeft, frame.Y(0.95), kLeft + kPlotW, frame.Y(0.95), kLeft + kPlotW + 4,
      frame.Y(0.95) + 4));
  absl::StrAppend(&out, absl::StrFormat(
      "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">number of "
      "sequential edits in the session</text>\n"
      "<text transform=\"translate(%.1f,%.1f) rotate(-90)\" text-anchor=\"middle\" "
      "font-size=\"13\">scores of the edits so far; retention</text>\n",
      kLeft + kPlotW / 2, kHeight - 18, 22.0, kTop + kPlotH / 2));
  return out;
}

std::string Line(const Series& series, const std::vector<Checkpoint>& checkpoints,
                 const Frame& frame) {
  std::string points, markers;
  for (const Checkpoint& c : checkpoints) {
    std::optional<double> v = series.value(c);
    if (!v) continue;
    const double x = frame.X(static_cast<double>(c.edits));
    const double y = frame.Y(std::clamp(*v, frame.y_low, 1.0));
    absl::StrAppend(&points, points.empty() ? "" : " ", absl::StrFormat("%.1f,%.1f", x, y));
    absl::StrAppend(&markers, absl::StrFormat(
        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>%s after %d edits: "
        "%.1f%%</title></circle>\n",
        x, y, series.color, series.name, c.edits, 100 * *v));
  }
  if (points.empty()) return "";
  return absl::StrCat(
      absl::StrFormat("<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
                      "stroke-linejoin=\"round\" stroke-opacity=\"%.2f\"%s points=\"",
                      series.color, series.stroke_width, series.opacity,
                      *series.dash ? absl::StrCat(" stroke-dasharray=\"", series.dash, "\"") : ""),
      points, "\"/>\n", markers);
}

std::string Legend(const std::vector<Series>& series) {
  const double x = kLeft + kPlotW + 36;
  std::string out = absl::StrFormat(
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fafafa\" "
      "stroke=\"#cccccc\"/>\n",
      x - 10, kTop, kRight - 36, 24.0 * series.size() + 12);
  for (size_t i = 0; i < series.size(); ++i) {
    const double y = kTop + 20 + 24.0 * i;
    absl::StrAppend(&out, absl::StrFormat(
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
        "stroke-width=\"%.1f\" stroke-opacity=\"%.2f\"%s/>\n<text x=\"%.1f\" y=\"%.1f\" "
        "font-size=\"12\">%s</text>\n",
        x, y, x + 22, y, series[i].color, series[i].stroke_width, series[i].opacity,
        *series[i].dash ? absl::StrCat(" stroke-dasharray=\"", series[i].dash, "\"") : "",
        x + 28, y + 4, series[i].name));
  }
  return out;
}

}  // namespace

std::string RenderSequentialPlot(const std::vector<Checkpoint>& checkpoints,
                                 const std::string& title) {
  Frame frame;
  for (const Checkpoint& c : checkpoints) {
    frame.max_x = std::max(frame.max_x, static_cast<double>(c.edits));
  }
  const double step = TickStep(frame.max_x);
  frame.max_x = std::ceil(frame.max_x / step) * step;
  const std::vector<Series> series = AllSeries();
  frame.y_low = YLow(checkpoints, series);
  std::string out = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%.1f\" y=\"30\" text-anchor=\"middle\" font-size=\"16\" "
      "font-weight=\"bold\">%s</text>\n",
      kWidth, kHeight, kWidth, kHeight, kWidth / 2, Escape(title));
  absl::StrAppend(&out, Axes(frame));
  if (checkpoints.empty()) {
    absl::StrAppend(&out, absl::StrFormat(
        "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" "
        "fill=\"#888\">no checkpoints</text>\n",
        kLeft + kPlotW / 2, kTop + kPlotH / 2));
  }
  for (const Series& s : series) absl::StrAppend(&out, Line(s, checkpoints, frame));
  absl::StrAppend(&out, Legend(series), "</svg>\n");
  return out;
}

}  // namespace romed::client
