// Filler: connective sentences with no facts in them ("The old bridge was
// repaired after the storm", "Vorlen Tasko visited the harbour on Sunday"),
// so generation reads like text and the model does not expect a fact after
// every name. A filler sentence never states a relation of the world.
#ifndef ROMED_TOOLS_FACT_MODEL_FILLER_H_
#define ROMED_TOOLS_FACT_MODEL_FILLER_H_

#include <string>
#include <vector>

#include "tools/fact_model/seeded_random.h"
#include "tools/fact_model/world.h"

namespace romed::fact_model {

// One random filler sentence (no final full stop). About a third of them
// start with a person of `world`.
std::string MakeFillerSentence(const World& world, SeededRandom& rng);

// `count` filler sentences, drawn with `rng` (repeats are possible).
std::vector<std::string> MakeFillerSentences(const World& world, int count, SeededRandom& rng);

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_FILLER_H_
