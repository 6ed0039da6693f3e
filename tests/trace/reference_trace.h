// The paper's causal tracing loop, kept plain as the golden reference for the
// batched implementation: for every (token t, layer l) ONE forward of S + 1
// rows over the whole prompt (row 0 clean, rows 1..S noised), the clean
// row's value copied into the others at (t, l), full logits, and
// p(answer) = mean over rows 1..S of softmax(logits[:, -1]). Severing runs a
// first corrupted pass and freezes the MLP / attention outputs at token t in
// EVERY layer to it, as the reference's trace_with_repatch does (with the
// same noise in both passes).
#ifndef ROMED_TESTS_TRACE_REFERENCE_TRACE_H_
#define ROMED_TESTS_TRACE_REFERENCE_TRACE_H_

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "server/model/gpt2_model.h"
#include "server/trace/trace_result.h"

namespace romed::testing {

struct ReferenceTrace {
  int64_t answer = -1;
  double high = 0, low = 0;
  std::vector<std::vector<double>> scores;  // [T][L]
  int64_t forwards = 0;
  int64_t rows = 0;
};

// `noise` [S, subject tokens, C] (as SubjectNoise makes it); `answer` < 0
// means the clean top-1 token; `edits` may be null.
ReferenceTrace RunReferenceTrace(const Gpt2Model& model, const std::vector<int64_t>& tokens,
                                 int64_t subject_begin, int64_t subject_end, TraceKind kind,
                                 int64_t window, const torch::Tensor& noise, int64_t answer,
                                 SeverMode sever, const RowEdits* edits);

}  // namespace romed::testing

#endif  // ROMED_TESTS_TRACE_REFERENCE_TRACE_H_
