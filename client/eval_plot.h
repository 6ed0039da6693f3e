// The sequential evaluation's figure: scores of the cases edited so far and
// the retention of the other facts against the number of sequential edits,
// as a self-contained SVG (axes, ticks, grid, axis labels, legend, a dashed
// 95% reference line). The y axis runs from 0% when a value is low, else
// from the multiple of 10% below the lowest value (at most 90%) to 100%.
// Pure function; the caller writes the file.
#ifndef ROMED_CLIENT_EVAL_PLOT_H_
#define ROMED_CLIENT_EVAL_PLOT_H_

#include <string>
#include <vector>

#include "client/eval_runner.h"

namespace romed::client {

// One line per series (S, ES, PS, NS, retention; points at each
// checkpoint). `title` is escaped. An empty `checkpoints` gives a figure
// with axes and the message "no checkpoints".
std::string RenderSequentialPlot(const std::vector<Checkpoint>& checkpoints,
                                 const std::string& title);

}  // namespace romed::client

#endif  // ROMED_CLIENT_EVAL_PLOT_H_
