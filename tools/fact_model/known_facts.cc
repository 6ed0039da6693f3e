#include "tools/fact_model/known_facts.h"

#include <nlohmann/json.hpp>

namespace romed::fact_model {

int ListedPhrasing(const Fact& fact) {
  const int offset = 1 + fact.subject % (kPhrasingsPerRelation - 1);
  return (fact.held_out_phrasing + offset) % kPhrasingsPerRelation;
}

std::vector<KnownFact> SelectKnownFacts(const World& world, const FactEvaluation& evaluation,
                                        const Gpt2Tokenizer& tokenizer) {
  std::vector<KnownFact> known;
  for (size_t f = 0; f < world.facts().size(); ++f) {
    if (!evaluation.correct_trained[f]) continue;
    const Fact& fact = world.facts()[f];
    const int phrasing = ListedPhrasing(fact);
    const int64_t predicted = evaluation.predictions[f][phrasing];
    known.push_back({static_cast<int>(known.size()), fact, phrasing,
                     std::string(tokenizer.Decode({predicted}).value_or(""))});
  }
  return known;
}

std::string KnownFactsToJson(const World& world, const std::vector<KnownFact>& known) {
  nlohmann::ordered_json records = nlohmann::ordered_json::array();
  for (const KnownFact& k : known) {
    nlohmann::ordered_json record;
    record["known_id"] = k.known_id;
    record["subject"] = world.subjects()[k.fact.subject].Name();
    record["attribute"] = world.ObjectOf(k.fact);
    record["template"] = world.Template(k.fact, k.phrasing);
    record["prediction"] = k.prediction;
    record["prompt"] = world.Prompt(k.fact, k.phrasing);
    record["relation_id"] = world.relations()[k.fact.relation].id;
    records.push_back(std::move(record));
  }
  return records.dump(2);
}

}  // namespace romed::fact_model
