// CounterFact: counterfactual rewrite cases over the fact world, in the
// record format of Meng et al.'s counterfact.json, for measuring edits.
//
//   {"case_id": 0,
//    "requested_rewrite": {"prompt": "{} was born in", "subject": "Vorlen Tasko",
//                          "target_new": {"str": "Oslo"}, "target_true": {"str": "Paris"},
//                          "relation_id": "P19"},
//    "paraphrase_prompts": [...2], "neighborhood_prompts": [...10],
//    "attribute_prompts": [...10], "generation_prompts": [...3]}
//
// - The rewrite prompt uses a phrasing the model was trained on for that
//   fact; the first paraphrase is the fact's held-out phrasing, the second
//   another trained one.
// - Neighbourhood prompts: other people whose true object for the relation
//   is target_true (an edit that leaks changes them); attribute prompts:
//   other people whose true object is target_new. Each uses a phrasing that
//   person's fact was trained on. Fewer than requested only when the world
//   has fewer such people (small --quick worlds).
// Cases are drawn from the world alone (not from what a model knows), as in
// CounterFact. Deterministic for (world, options, seed).
#ifndef ROMED_TOOLS_FACT_MODEL_COUNTERFACT_H_
#define ROMED_TOOLS_FACT_MODEL_COUNTERFACT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tools/fact_model/world.h"

namespace romed::fact_model {

struct CounterFactOptions {
  int num_cases = 600;           // distinct (subject, relation) pairs; capped at all facts
  int num_neighborhood = 10;     // neighbourhood prompts per case (at most)
  int num_attribute = 10;        // attribute prompts per case (at most)
  int num_generation = 3;        // generation prompts per case (at most the phrasings)
};

struct CounterFactCase {
  int case_id = 0;
  Fact fact;                 // the true fact being rewritten
  int rewrite_phrasing = 0;  // phrasing index of the rewrite prompt
  int target_new = 0;        // object index, != fact.object
  std::vector<std::string> paraphrase_prompts;
  std::vector<std::string> neighborhood_prompts;
  std::vector<std::string> attribute_prompts;
  std::vector<std::string> generation_prompts;
};

std::vector<CounterFactCase> BuildCounterFact(const World& world,
                                              const CounterFactOptions& options, uint64_t seed);

// The cases as counterfact.json text (a JSON array, indented).
std::string CounterFactToJson(const World& world, const std::vector<CounterFactCase>& cases);

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_COUNTERFACT_H_
