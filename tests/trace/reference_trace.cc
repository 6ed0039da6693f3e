#include "tests/trace/reference_trace.h"

#include <algorithm>

namespace romed::testing {
namespace {

using torch::indexing::Slice;

struct Setup {
  const Gpt2Model& model;
  torch::Tensor tokens;  // [S + 1, T]
  int64_t begin, end;
  const torch::Tensor& noise;
  const RowEdits* edits;
};

void AddNoise(const Setup& setup, Interventions& interventions) {
  interventions.AddHook({HookPoint::kEmbed, 0}, [&setup](const torch::Tensor& x) {
    torch::Tensor h = x.clone();
    h.index({Slice(1, torch::indexing::None), Slice(setup.begin, setup.end)}) += setup.noise;
    return h;
  });
}

// Full logits [S + 1, T, V].
torch::Tensor Run(const Setup& setup, const Interventions& interventions, ReferenceTrace& out) {
  ForwardOptions options;
  options.interventions = &interventions;
  options.edits = setup.edits;
  ++out.forwards;
  out.rows += setup.tokens.size(0);
  return setup.model.Forward({setup.tokens, torch::Tensor()}, options);
}

double CorruptedProbability(const torch::Tensor& logits, int64_t answer) {
  torch::Tensor probs = torch::softmax(logits.index({Slice(1, torch::indexing::None), -1}), 1);
  return probs.mean(0)[answer].item<double>();
}

// Hook copying row 0's value at token t into rows 1..S.
HookFn CopyCleanRow(int64_t t) {
  return [t](const torch::Tensor& x) {
    torch::Tensor h = x.clone();
    const int64_t S = h.size(0) - 1;
    h.narrow(0, 1, S).select(1, t).copy_(h[0][t]);
    return h;
  };
}

}  // namespace

ReferenceTrace RunReferenceTrace(const Gpt2Model& model, const std::vector<int64_t>& tokens,
                                 int64_t subject_begin, int64_t subject_end, TraceKind kind,
                                 int64_t window, const torch::Tensor& noise, int64_t answer,
                                 SeverMode sever, const RowEdits* edits) {
  torch::NoGradGuard no_grad;
  const auto T = static_cast<int64_t>(tokens.size());
  const int64_t L = model.config().n_layer, S = noise.size(0);
  Setup setup{model, torch::tensor(tokens, torch::kInt64).view({1, T}).expand({S + 1, T}),
              subject_begin, subject_end, noise, edits};
  ReferenceTrace out;
  {
    Interventions interventions;
    AddNoise(setup, interventions);
    torch::Tensor logits = Run(setup, interventions, out);
    torch::Tensor clean = torch::softmax(logits[0][T - 1], 0);
    out.answer = answer >= 0 ? answer : clean.argmax().item<int64_t>();
    out.high = clean[out.answer].item<double>();
    out.low = CorruptedProbability(logits, out.answer);
  }
  const HookPoint frozen = sever == SeverMode::kMlp ? HookPoint::kMlpOut : HookPoint::kAttnOut;
  out.scores.assign(T, std::vector<double>(L));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t l = 0; l < L; ++l) {
      // First pass for severing: the corrupted values to freeze.
      std::vector<torch::Tensor> corrupted(L);
      if (kind == TraceKind::kState && sever != SeverMode::kNone) {
        Interventions first;
        AddNoise(setup, first);
        for (int64_t layer = 0; layer < L; ++layer) first.Capture({frozen, layer});
        Run(setup, first, out);
        for (int64_t layer = 0; layer < L; ++layer) corrupted[layer] = first.Captured({frozen, layer});
      }
      Interventions interventions;
      AddNoise(setup, interventions);
      if (kind == TraceKind::kState) {
        interventions.AddHook({HookPoint::kResidPost, l}, CopyCleanRow(t));
        if (sever != SeverMode::kNone) {
          for (int64_t layer = 0; layer < L; ++layer) {
            torch::Tensor values = corrupted[layer];
            interventions.AddHook({frozen, layer}, [values, t, S](const torch::Tensor& x) {
              torch::Tensor h = x.clone();
              h.narrow(0, 1, S).select(1, t).copy_(values.narrow(0, 1, S).select(1, t));
              return h;
            });
          }
        }
      } else {
        const HookPoint point = kind == TraceKind::kMlp ? HookPoint::kMlpOut : HookPoint::kAttnOut;
        const int64_t first = std::max<int64_t>(0, l - window / 2);
        // The reference: range(max(0, l - w // 2), min(L, l - (-w // 2))) with
        // Python's floor division, i.e. up to l + ceil(w / 2).
        const int64_t last = std::min<int64_t>(L, l + (window + 1) / 2);
        for (int64_t layer = first; layer < last; ++layer) {
          interventions.AddHook({point, layer}, CopyCleanRow(t));
        }
      }
      out.scores[t][l] = CorruptedProbability(Run(setup, interventions, out), out.answer);
    }
  }
  return out;
}

}  // namespace romed::testing
