// The relations of the fact world: what can be true of a person, how the
// training text phrases it, and the closed set of objects it can take.
//
// Each phrasing is a template with "{}" for the subject and the object as the
// NEXT word, so a fact is checked by the model's next token:
//   "{} was born in" + " Paris".
// The first kSubjectFirstPhrasings phrasings start with the subject; the rest
// start with the relation ("The birthplace of {} is").
//
// Every object is a single word, distinct across all relations, and
// alphabetic (so GPT-2's pre-tokeniser keeps it in one piece, with or without
// a leading space).
#ifndef ROMED_TOOLS_FACT_MODEL_RELATIONS_H_
#define ROMED_TOOLS_FACT_MODEL_RELATIONS_H_

#include <string>
#include <vector>

namespace romed::fact_model {

inline constexpr int kPhrasingsPerRelation = 5;
inline constexpr int kSubjectFirstPhrasings = 3;

struct Relation {
  std::string id;                      // Wikidata property, as CounterFact uses ("P19")
  std::string name;                    // "city of birth"
  std::vector<std::string> phrasings;  // kPhrasingsPerRelation templates with "{}"
  std::vector<std::string> objects;    // all possible objects, in a fixed order
};

// The six relations (city of birth, native language, occupation,
// instrument, sport, employer), each with 24-26 objects.
const std::vector<Relation>& AllRelations();

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_RELATIONS_H_
