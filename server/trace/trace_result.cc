#include "server/trace/trace_result.h"

namespace romed {

std::string_view TraceKindName(TraceKind kind) {
  switch (kind) {
    case TraceKind::kState:
      return "state";
    case TraceKind::kMlp:
      return "mlp";
    case TraceKind::kAttn:
      return "attn";
  }
  return "unknown";
}

std::optional<TraceKind> ParseTraceKind(std::string_view name) {
  for (TraceKind kind : {TraceKind::kState, TraceKind::kMlp, TraceKind::kAttn}) {
    if (TraceKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

std::string_view SeverModeName(SeverMode mode) {
  switch (mode) {
    case SeverMode::kNone:
      return "none";
    case SeverMode::kMlp:
      return "mlp";
    case SeverMode::kAttn:
      return "attn";
  }
  return "unknown";
}

std::string_view NoiseBasisName(NoiseBasis basis) {
  switch (basis) {
    case NoiseBasis::kAbsolute:
      return "absolute";
    case NoiseBasis::kSubjectEmbeddings:
      return "subject_embeddings";
    case NoiseBasis::kVocabularyEmbeddings:
      return "vocabulary_embeddings";
  }
  return "unknown";
}

const ScoreGrid* TraceResult::Find(TraceKind kind) const {
  for (const ScoreGrid& grid : scores) {
    if (grid.kind == kind) return &grid;
  }
  return nullptr;
}

}  // namespace romed
