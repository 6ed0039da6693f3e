#include "server/trace/heatmap_style.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace romed {
namespace {

// Three stops per map, sampled from matplotlib's sequential maps.
struct ColorMap {
  Rgb light, middle, dark;
};

ColorMap MapOf(TraceKind kind) {
  switch (kind) {
    case TraceKind::kState:
      return {{252, 251, 253}, {158, 154, 200}, {63, 0, 125}};
    case TraceKind::kMlp:
      return {{247, 252, 245}, {116, 196, 118}, {0, 68, 27}};
    case TraceKind::kAttn:
      return {{255, 245, 240}, {251, 106, 74}, {103, 0, 13}};
  }
  return {};
}

// Whether `piece` (2-4 bytes starting with a lead byte) is one well-formed
// UTF-8 character: continuation bytes, no overlong form, no surrogate, at
// most U+10FFFF. (The tokenizer has the same check; this library must not
// depend on it, so the client can link it without libtorch.)
bool IsOneUtf8Character(const std::string& piece) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(piece[i]); };
  if (byte(0) >= 0xf8) return false;
  uint32_t code = byte(0) & (piece.size() == 2 ? 0x1f : piece.size() == 3 ? 0x0f : 0x07);
  for (size_t i = 1; i < piece.size(); ++i) {
    if ((byte(i) & 0xc0) != 0x80) return false;
    code = (code << 6) | (byte(i) & 0x3f);
  }
  const uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < smallest[piece.size()] || code > 0x10ffff) return false;
  return !(code >= 0xd800 && code <= 0xdfff);
}

// Bytes in a well-formed UTF-8 character starting at text[i] (1 for ASCII),
// or 0 if text[i] does not start one.
size_t Utf8CharacterLength(std::string_view text, size_t i) {
  const auto byte = static_cast<unsigned char>(text[i]);
  if (byte < 0x80) return 1;
  const size_t length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 0;
  if (length == 0 || i + length > text.size()) return 0;
  return IsOneUtf8Character(std::string(text.substr(i, length))) ? length : 0;
}

std::string ByteEscape(unsigned char byte) {
  char buffer[8];
  std::snprintf(buffer, sizeof(buffer), "\\x%02x", byte);
  return buffer;
}

int Mix(int a, int b, double f) { return static_cast<int>(std::lround(a + (b - a) * f)); }

Rgb MixRgb(Rgb a, Rgb b, double f) { return {Mix(a.r, b.r, f), Mix(a.g, b.g, f), Mix(a.b, b.b, f)}; }

}  // namespace

Rgb HeatmapColor(TraceKind kind, double fraction) {
  const double f = std::clamp(std::isfinite(fraction) ? fraction : 0.0, 0.0, 1.0);
  const ColorMap map = MapOf(kind);
  return f < 0.5 ? MixRgb(map.light, map.middle, f * 2) : MixRgb(map.middle, map.dark, f * 2 - 1);
}

std::string HexColor(Rgb color) {
  char buffer[8];
  std::snprintf(buffer, sizeof(buffer), "#%02x%02x%02x", color.r, color.g, color.b);
  return buffer;
}

std::string EscapeInvalidUtf8(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const size_t length = Utf8CharacterLength(text, i);
    if (length == 0) {
      out += ByteEscape(static_cast<unsigned char>(text[i]));
      ++i;
    } else {
      out += text.substr(i, length);
      i += length;
    }
  }
  return out;
}

std::vector<std::string> TokenLabels(const TraceResult& trace) {
  std::vector<std::string> labels;
  for (size_t t = 0; t < trace.tokens.size(); ++t) {
    std::string text = t < trace.token_texts.size() ? trace.token_texts[t]
                                                    : absl::StrCat("#", trace.tokens[t]);
    std::string label;
    for (size_t i = 0; i < text.size();) {
      const auto byte = static_cast<unsigned char>(text[i]);
      const size_t length = Utf8CharacterLength(text, i);
      if (byte == '\n') {
        label += "\\n";
      } else if (length == 0 || byte < 0x20 || byte == 0x7f) {
        label += ByteEscape(byte);
      } else {
        label += text.substr(i, length);
        i += length;
        continue;
      }
      ++i;
    }
    const auto position = static_cast<int64_t>(t);
    if (position >= trace.subject_begin && position < trace.subject_end) label += "*";
    labels.push_back(std::move(label));
  }
  return labels;
}

int64_t DisplayWidth(const std::string& label) {
  int64_t width = 0;
  for (char c : label) {
    if ((static_cast<unsigned char>(c) & 0xc0) != 0x80) ++width;
  }
  return width;
}

double PanelScale::Fraction(double value) const { return (value - low) / (high - low); }

PanelScale ScaleOf(const TraceResult& trace, const ScoreGrid& grid) {
  PanelScale scale;
  scale.low = trace.low_score;
  double top = trace.low_score;
  for (const auto& row : grid.values) {
    for (double value : row) top = std::max(top, value);
  }
  scale.high = std::max(top, scale.low + 1e-6);
  return scale;
}

std::string AnswerLabel(const TraceResult& trace) {
  if (trace.answer_text.empty()) return absl::StrCat("p(token ", trace.answer_token, ")");
  return absl::StrCat("p(", trace.answer_text, ")");
}

}  // namespace romed
