#include "client/romectl_compare.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/romectl_commands.h"
#include "client/romectl_format.h"

namespace romed::client {
namespace {

constexpr size_t kLabelWidth = 16;
constexpr size_t kMinColumn = 12;
constexpr size_t kMaxColumn = 40;
constexpr char kRed[] = "\x1b[31m";
constexpr char kGreen[] = "\x1b[1;32m";
constexpr char kReset[] = "\x1b[0m";

bool UseColor(const std::string& color, const std::ostream& out) {
  if (color != "auto") return color == "always";
  return &out == &std::cout && isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr;
}

std::string Quoted(const std::string& text) { return DumpJson(nlohmann::json(text)); }

// UTF-8 code points of `s`, each as its bytes (layout counts code points).
std::vector<std::string> CodePoints(const std::string& s) {
  std::vector<std::string> out;
  for (unsigned char c : s) {
    if ((c & 0xC0) == 0x80 && !out.empty()) {
      out.back() += static_cast<char>(c);
    } else {
      out.emplace_back(1, static_cast<char>(c));
    }
  }
  return out;
}

// One table cell: text, and where (in code points) its differing part starts.
struct Cell {
  std::string text;
  size_t highlight_from = std::string::npos;  // npos = nothing differs
};

// The cell's code points [begin, end), with the differing part coloured.
std::string RenderPiece(const std::vector<std::string>& points, size_t begin, size_t end,
                        size_t highlight_from, const char* colour) {
  std::string out;
  bool on = false;
  for (size_t i = begin; i < end; ++i) {
    if (colour != nullptr && !on && i >= highlight_from) {
      out += colour;
      on = true;
    }
    out += points[i];
  }
  if (on) out += kReset;
  return out;
}

// Prints one labelled row of two cells, wrapping each at `width` code points.
void AppendRow(const std::string& label, const Cell& a, const Cell& b, bool differs,
               size_t width, bool color, std::string* out) {
  const std::vector<std::string> pa = CodePoints(a.text), pb = CodePoints(b.text);
  const size_t lines = std::max<size_t>(
      1, std::max((pa.size() + width - 1) / width, (pb.size() + width - 1) / width));
  for (size_t line = 0; line < lines; ++line) {
    const std::string head = line == 0 ? label : "";
    absl::StrAppend(out, differs && line == 0 ? "* " : "  ", head,
                    std::string(kLabelWidth > head.size() ? kLabelWidth - head.size() : 1, ' '));
    const size_t begin = line * width;
    const size_t a_end = std::min(pa.size(), begin + width);
    const size_t b_end = std::min(pb.size(), begin + width);
    const size_t a_len = a_end > begin ? a_end - begin : 0;
    if (a_len > 0) {
      absl::StrAppend(out, RenderPiece(pa, begin, a_end, a.highlight_from, color ? kRed : nullptr));
    }
    if (b_end > begin) {
      absl::StrAppend(out, std::string(width - a_len + 2, ' '),
                      RenderPiece(pb, begin, b_end, b.highlight_from, color ? kGreen : nullptr));
    }
    absl::StrAppend(out, "\n");
  }
}

// Cells of the two generations, highlighted from the first differing code
// point (inside the quotes).
std::pair<Cell, Cell> GenerationCells(const std::string& a, const std::string& b) {
  const std::vector<std::string> pa = CodePoints(a), pb = CodePoints(b);
  size_t common = 0;
  while (common < pa.size() && common < pb.size() && pa[common] == pb[common]) ++common;
  Cell ca{Quoted(a)}, cb{Quoted(b)};
  if (a != b) {
    // Quoting adds the opening quote and may escape characters before the
    // difference; re-quote the common prefix to find where it ends.
    std::string prefix;
    for (size_t i = 0; i < common; ++i) prefix += pa[i];
    const size_t start = CodePoints(Quoted(prefix)).size() - 1;  // without the closing quote
    ca.highlight_from = start;
    cb.highlight_from = start;
  }
  return {ca, cb};
}

std::string ProbabilityText(const romed::v1::ContinuationScore& score) {
  return absl::StrFormat("p %.4f  logp %.4f", std::exp(score.total_logprob()),
                         score.total_logprob());
}

std::string VariantName(const std::string& session, int64_t deltas) {
  if (session.empty()) return "original model";
  return absl::StrCat("session ", session, " (", deltas, deltas == 1 ? " delta)" : " deltas)");
}

// The width of both value columns: the longest cell, within bounds.
size_t ColumnWidth(const romed::v1::CompareResponse& response) {
  size_t width = kMinColumn;
  for (const romed::v1::CompareRow& row : response.rows()) {
    for (const std::string* g : {&row.generation_a(), &row.generation_b()}) {
      width = std::max(width, CodePoints(Quoted(*g)).size());
    }
    for (const auto* targets : {&row.targets_a(), &row.targets_b()}) {
      for (const auto& t : *targets) width = std::max(width, ProbabilityText(t).size());
    }
    for (const auto* tops : {&row.top_a(), &row.top_b()}) {
      for (const auto& t : *tops) {
        width = std::max(width, CodePoints(Quoted(VocabTokenText(t.token()))).size() + 7);
      }
    }
  }
  return std::min(width, kMaxColumn);
}

void AppendPrompt(const romed::v1::CompareRow& row, int index, size_t width, bool color,
                  std::string* out) {
  absl::StrAppend(out, "\n[", index + 1, "] ", Quoted(row.prompt()), "  (", row.prompt_tokens(),
                  " tokens)\n");
  absl::StrAppend(out, std::string(2 + kLabelWidth, ' '), "a", std::string(width + 1, ' '),
                  "b\n");
  if (row.finish_a() != romed::v1::FINISH_REASON_UNSPECIFIED) {
    auto [a, b] = GenerationCells(row.generation_a(), row.generation_b());
    AppendRow("generation", a, b, row.generation_a() != row.generation_b(), width, color, out);
  }
  for (int j = 0; j < row.targets_a_size() && j < row.targets_b_size(); ++j) {
    Cell a{ProbabilityText(row.targets_a(j))}, b{ProbabilityText(row.targets_b(j))};
    const bool differs = a.text != b.text;
    if (differs) a.highlight_from = b.highlight_from = 0;
    AppendRow(Quoted(row.targets_a(j).continuation()), a, b, differs, width, color, out);
  }
  const int top = std::max(row.top_a_size(), row.top_b_size());
  for (int k = 0; k < top; ++k) {
    Cell cells[2];
    int64_t ids[2] = {-1, -1};
    const google::protobuf::RepeatedPtrField<romed::v1::NextToken>* lists[2] = {&row.top_a(),
                                                                               &row.top_b()};
    for (int v = 0; v < 2; ++v) {
      if (k >= lists[v]->size()) continue;
      const romed::v1::NextToken& t = (*lists[v])[k];
      ids[v] = t.id();
      cells[v].text = absl::StrFormat("%s %.4f", Quoted(VocabTokenText(t.token())), t.prob());
    }
    const bool differs = ids[0] != ids[1];
    if (differs) cells[0].highlight_from = cells[1].highlight_from = 0;
    AppendRow(absl::StrCat("top ", k + 1), cells[0], cells[1], differs, width, color, out);
  }
}

}  // namespace

std::string VocabTokenText(const std::string& token) {
  // GPT-2's bytes_to_unicode: printable bytes stand for themselves; the other
  // 68 bytes, in increasing order, are code points 256, 257, ...
  static const std::vector<int>* const kShifted = [] {
    auto* shifted = new std::vector<int>;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
      if (!printable) shifted->push_back(b);
    }
    return shifted;
  }();
  std::string out;
  for (const std::string& point : CodePoints(token)) {
    // Decode one code point (at most 2 bytes matter here: < U+0800).
    const unsigned char c0 = point[0];
    int cp = -1;
    if (point.size() == 1) cp = c0;
    if (point.size() == 2) cp = ((c0 & 0x1F) << 6) | (static_cast<unsigned char>(point[1]) & 0x3F);
    if (cp >= 256 && cp < 256 + static_cast<int>(kShifted->size())) {
      out += static_cast<char>((*kShifted)[cp - 256]);
    } else if (cp >= 0 && cp < 256) {
      out += static_cast<char>(cp);
    } else {
      out += point;
    }
  }
  return out;
}

std::string FormatCompare(const romed::v1::CompareResponse& response, bool show_kl, bool color) {
  std::string out;
  absl::StrAppend(&out, "a  ", VariantName(response.session_a(), response.deltas_a()), "\n");
  absl::StrAppend(&out, "b  ", VariantName(response.session_b(), response.deltas_b()), "\n");
  absl::StrAppend(&out, response.rows_size(), response.rows_size() == 1 ? " prompt" : " prompts");
  if (response.generation_rows() > 0) {
    absl::StrAppend(&out, "; one batched decode of ", response.generation_rows(), " rows");
    if (response.scoring_rows() == 0 && response.rows_size() > 0 &&
        response.rows(0).targets_a_size() > 0) {
      absl::StrAppend(&out, " (targets scored from its prompt cache)");
    }
  }
  if (response.scoring_rows() > 0) {
    absl::StrAppend(&out, "; one scoring forward of ", response.scoring_rows(), " rows");
  }
  absl::StrAppend(&out, absl::StrFormat("; %.3f s\n", response.total_time_s()));
  const size_t width = ColumnWidth(response);
  for (int i = 0; i < response.rows_size(); ++i) {
    AppendPrompt(response.rows(i), i, width, color, &out);
    const romed::v1::CompareRow& row = response.rows(i);
    if (show_kl) {
      absl::StrAppend(&out, row.kl() > 0.0f ? "* " : "  ", "KL(a||b)",
                      std::string(kLabelWidth - 8, ' '), absl::StrFormat("%.6g nats\n", row.kl()));
    }
  }
  return out;
}

int RunCompare(const Invocation& inv, const RomedClient& client, const CallOptions& call,
               std::ostream& out, std::ostream& err) {
  absl::StatusOr<romed::v1::CompareResponse> response =
      client.Compare(inv.compare.request, call);
  if (!response.ok()) {
    err << FormatError(response.status()) << "\n";
    return kExitRpcError;
  }
  if (inv.json) {
    out << DumpJson(ProtoToJson(*response)) << "\n";
  } else {
    out << FormatCompare(*response, inv.compare.request.kl(), UseColor(inv.compare.color, out));
  }
  return kExitOk;
}

}  // namespace romed::client
