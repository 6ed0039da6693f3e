// The heatmaps: well-formed SVG with one panel per kind, and a terminal
// block with one row per token and the subject starred.
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/trace/heatmap_style.h"
#include "server/trace/heatmap_svg.h"
#include "server/trace/heatmap_terminal.h"

namespace romed {
namespace {

using ::testing::HasSubstr;

TraceResult Example() {
  TraceResult trace;
  trace.token_texts = {"The", " Space", " Need", "le", " is", " in", " <&>"};
  trace.tokens.assign(trace.token_texts.size(), 0);
  trace.subject_begin = 1;
  trace.subject_end = 4;
  trace.num_layers = 6;
  trace.window = 3;
  trace.low_score = 0.05;
  trace.high_score = 0.9;
  trace.answer_text = " Seattle";
  for (TraceKind kind : {TraceKind::kState, TraceKind::kMlp, TraceKind::kAttn}) {
    ScoreGrid grid{kind, {}};
    for (size_t t = 0; t < trace.tokens.size(); ++t) {
      std::vector<double> row;
      for (int64_t l = 0; l < 6; ++l) row.push_back(0.05 + 0.1 * ((t + l) % 9));
      grid.values.push_back(row);
    }
    trace.scores.push_back(grid);
  }
  return trace;
}

// True if every element opened is closed in order (a small well-formedness
// check: tags balance, attributes quoted, no stray '<' or '&').
bool TagsBalance(const std::string& xml, std::string* error) {
  std::vector<std::string> open;
  size_t i = 0;
  while ((i = xml.find('<', i)) != std::string::npos) {
    size_t end = xml.find('>', i);
    if (end == std::string::npos) return *error = "unterminated tag", false;
    std::string tag = xml.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.empty()) return *error = "empty tag", false;
    if (tag[0] == '?' || tag[0] == '!') continue;
    if (tag.find('<') != std::string::npos) return *error = "'<' inside " + tag, false;
    if (std::count(tag.begin(), tag.end(), '"') % 2 != 0) return *error = "quote in " + tag, false;
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) return *error = "mismatched " + tag, false;
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(tag.substr(0, tag.find_first_of(" \n")));
    }
  }
  if (std::regex_search(xml, std::regex("&(?!amp;|lt;|gt;|quot;|apos;)"))) {
    return *error = "unescaped &", false;
  }
  if (!open.empty()) return *error = "unclosed " + open.back(), false;
  return true;
}

TEST(HeatmapSvgTest, IsWellFormedWithThreePanels) {
  std::string svg = RenderTraceSvg(Example(), "The Space Needle is in");
  std::string error;
  EXPECT_TRUE(TagsBalance(svg, &error)) << error;
  EXPECT_THAT(svg, HasSubstr("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_THAT(svg, HasSubstr("id=\"state\""));
  EXPECT_THAT(svg, HasSubstr("id=\"mlp\""));
  EXPECT_THAT(svg, HasSubstr("id=\"attn\""));
  std::regex panel("class=\"panel\"");
  EXPECT_EQ(std::distance(std::sregex_iterator(svg.begin(), svg.end(), panel),
                          std::sregex_iterator()),
            3);
  // 7 tokens x 6 layers x 3 panels cells.
  std::regex cell("<rect x=\"\\d+\" y=\"\\d+\" width=\"\\d+\" height=\"20\" fill=\"#");
  EXPECT_EQ(std::distance(std::sregex_iterator(svg.begin(), svg.end(), cell),
                          std::sregex_iterator()),
            7 * 6 * 3);
  EXPECT_THAT(svg, HasSubstr(" Space*"));
  EXPECT_THAT(svg, HasSubstr(" &lt;&amp;&gt;"));
  EXPECT_THAT(svg, HasSubstr("center of interval of 3 restored MLP layers"));
  EXPECT_THAT(svg, HasSubstr("linearGradient"));  // colour bars
}

TEST(HeatmapSvgTest, LowIsWhiteishAndTheTopIsTheDarkestShade) {
  EXPECT_EQ(HexColor(HeatmapColor(TraceKind::kState, 0)), "#fcfbfd");
  EXPECT_EQ(HexColor(HeatmapColor(TraceKind::kMlp, 1)), "#00441b");
  EXPECT_EQ(HexColor(HeatmapColor(TraceKind::kAttn, 2)), "#67000d");  // clamped
}

TEST(HeatmapTerminalTest, OneRowPerTokenWithTheSubjectStarred) {
  TraceResult trace = Example();
  std::string text = RenderTraceTerminal(trace, {/*color=*/false});
  std::istringstream lines(text);
  std::string line;
  std::vector<std::string> rows;
  while (std::getline(lines, line)) rows.push_back(line);
  // Per kind: a title, a layer header, 7 token rows, a blank line.
  ASSERT_EQ(rows.size(), 3u * (2 + 7 + 1));
  EXPECT_THAT(rows[0], HasSubstr("state"));
  EXPECT_THAT(rows[2], ::testing::StartsWith("The "));
  EXPECT_THAT(rows[3], ::testing::StartsWith(" Space* "));
  EXPECT_THAT(rows[5], ::testing::StartsWith("le* "));
  EXPECT_THAT(rows[6], ::testing::StartsWith(" is "));
  EXPECT_THAT(rows[8], ::testing::StartsWith(" <&> "));
  std::string colored = RenderTraceTerminal(trace);
  EXPECT_THAT(colored, HasSubstr("\x1b[48;2;"));
}

}  // namespace
}  // namespace romed
