// What a causal trace produces (ROME.md section 2), as plain data: the
// aggregation, the heatmaps and the RPC layer read it without libtorch.
//
// Notation: T prompt tokens, L layers, S noise samples.
#ifndef ROMED_SERVER_TRACE_TRACE_RESULT_H_
#define ROMED_SERVER_TRACE_TRACE_RESULT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace romed {

// What is restored at (token t, layer l).
enum class TraceKind {
  kState,  // the residual stream leaving block l (resid_post), one layer
  kMlp,    // MLP outputs of a window of layers centred on l
  kAttn,   // attention outputs of a window of layers centred on l
};

// "state", "mlp", "attn".
std::string_view TraceKindName(TraceKind kind);
// Inverse of TraceKindName; nullopt for any other text.
std::optional<TraceKind> ParseTraceKind(std::string_view name);

// Severing (paper section 2.2): while restoring a state at (t, l), freeze
// the MLP (or attention) outputs at token t in the layers after l to their
// corrupted values. Applies to the state kind only.
enum class SeverMode { kNone, kMlp, kAttn };

// "none", "mlp", "attn".
std::string_view SeverModeName(SeverMode mode);

// Where the noise scale came from.
enum class NoiseBasis {
  kAbsolute,         // the caller gave sigma
  kSubjectEmbeddings,     // multiple x std of subject-token embeddings
  kVocabularyEmbeddings,  // multiple x std of all token embeddings
};

std::string_view NoiseBasisName(NoiseBasis basis);

// One kind's scores: values[t][l] = p(answer) averaged over the noise samples
// with that restoration in place. [T][L].
struct ScoreGrid {
  TraceKind kind = TraceKind::kState;
  std::vector<std::vector<double>> values;
};

// Work done, for logs, metrics and the benchmark.
struct TraceCost {
  int64_t forwards = 0;        // forward passes run (clean and corrupted included)
  int64_t rows = 0;            // batch rows over all forwards
  int64_t token_rows = 0;      // rows x positions run, over all forwards
  int64_t max_batch_rows = 0;  // largest batch of one forward
  int64_t restorations = 0;    // (kind, token, layer) cells
  int64_t skipped = 0;         // cells known to equal low_score without a forward
};

struct TraceResult {
  std::vector<int64_t> tokens;            // [T] prompt token ids
  std::vector<std::string> token_texts;   // [T] each token decoded (bytes; may split UTF-8)
  int64_t subject_begin = 0;              // subject tokens are [begin, end)
  int64_t subject_end = 0;
  int64_t answer_token = -1;              // the token whose probability is traced
  std::string answer_text;                // its decoding (empty if no tokenizer)
  double high_score = 0;                  // clean p(answer)
  double low_score = 0;                   // corrupted p(answer), nothing restored
  int64_t num_layers = 0;                 // L
  int64_t window = 1;                     // layers restored together for mlp / attn
  int64_t samples = 0;                    // S
  uint64_t seed = 0;                      // the noise seed
  double noise_sigma = 0;                 // absolute noise scale used
  NoiseBasis noise_basis = NoiseBasis::kVocabularyEmbeddings;
  SeverMode sever = SeverMode::kNone;
  std::vector<ScoreGrid> scores;          // one per requested kind, in request order
  TraceCost cost;

  // The grid of `kind`, or nullptr if it was not traced.
  const ScoreGrid* Find(TraceKind kind) const;
};

}  // namespace romed

#endif  // ROMED_SERVER_TRACE_TRACE_RESULT_H_
