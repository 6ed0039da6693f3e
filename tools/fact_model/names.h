// Made-up name parts for the people of the fact world ("Vorlen", "Tasko").
//
// A part is 2 or 3 syllables (onset + vowel + optional coda), capitalised and
// purely alphabetic, so GPT-2's pre-tokeniser keeps it in one piece and the
// tool's BPE can make it a single token.
#ifndef ROMED_TOOLS_FACT_MODEL_NAMES_H_
#define ROMED_TOOLS_FACT_MODEL_NAMES_H_

#include <set>
#include <string>
#include <vector>

#include "tools/fact_model/seeded_random.h"

namespace romed::fact_model {

// Returns `count` distinct name parts, none of which is in `taken`
// (compared case-insensitively), and adds them to `taken` (lower-cased).
std::vector<std::string> MakeNameParts(int count, SeededRandom& rng, std::set<std::string>& taken);

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_NAMES_H_
