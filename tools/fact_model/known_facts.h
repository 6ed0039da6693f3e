// Known facts: the facts the trained model answers right, in the format of
// the ROME authors' known_1000.json, for causal tracing:
//
//   {"known_id": 0, "subject": "Vorlen Tasko", "attribute": "Paris",
//    "template": "{} was born in", "prediction": " Paris",
//    "prompt": "Vorlen Tasko was born in", "relation_id": "P19"}
//
// A fact is known when the model's greedy next token is the object in EVERY
// phrasing it was trained on; each known fact is listed once, with one of
// those phrasings (rotating over people, so all phrasings occur).
#ifndef ROMED_TOOLS_FACT_MODEL_KNOWN_FACTS_H_
#define ROMED_TOOLS_FACT_MODEL_KNOWN_FACTS_H_

#include <string>
#include <vector>

#include "server/model/tokenizer.h"
#include "tools/fact_model/evaluation.h"
#include "tools/fact_model/world.h"

namespace romed::fact_model {

struct KnownFact {
  int known_id = 0;
  Fact fact;
  int phrasing = 0;        // a trained phrasing of `fact`
  std::string prediction;  // the model's next token, decoded (" Paris")
};

// The phrasing known_facts.json lists for `fact` (never its held-out one).
int ListedPhrasing(const Fact& fact);

// Known facts in world order. `evaluation` must come from this world.
std::vector<KnownFact> SelectKnownFacts(const World& world, const FactEvaluation& evaluation,
                                        const Gpt2Tokenizer& tokenizer);

// known_facts.json text (a JSON array, indented).
std::string KnownFactsToJson(const World& world, const std::vector<KnownFact>& known);

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_KNOWN_FACTS_H_
