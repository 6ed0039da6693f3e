#include "tools/fact_model/counterfact.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "tools/fact_model/seeded_random.h"

namespace romed::fact_model {
namespace {

// A phrasing `fact` was trained on (any but its held-out one).
int TrainedPhrasing(const Fact& fact, SeededRandom& rng) {
  const int offset = 1 + static_cast<int>(rng.Index(kPhrasingsPerRelation - 1));
  return (fact.held_out_phrasing + offset) % kPhrasingsPerRelation;
}

// Prompts for up to `count` people (other than `exclude`) whose object for
// `relation` is `object`, each in a phrasing trained for them.
std::vector<std::string> PromptsForObject(const World& world, int relation, int object,
                                          int exclude, int count, SeededRandom& rng) {
  std::vector<int> people = world.SubjectsWithObject(relation, object);
  people.erase(std::remove(people.begin(), people.end(), exclude), people.end());
  rng.Shuffle(people);
  if (static_cast<int>(people.size()) > count) people.resize(count);
  std::vector<std::string> prompts;
  for (int person : people) {
    const Fact& fact = world.FactAbout(person, relation);
    prompts.push_back(world.Prompt(fact, TrainedPhrasing(fact, rng)));
  }
  return prompts;
}

std::vector<std::string> GenerationPrompts(const World& world, const Fact& fact, int count,
                                           SeededRandom& rng) {
  std::vector<int> phrasings(kPhrasingsPerRelation);
  for (int p = 0; p < kPhrasingsPerRelation; ++p) phrasings[p] = p;
  rng.Shuffle(phrasings);
  phrasings.resize(std::min(count, kPhrasingsPerRelation));
  std::vector<std::string> prompts;
  for (int p : phrasings) prompts.push_back(world.Prompt(fact, p));
  return prompts;
}

CounterFactCase MakeCase(const World& world, const Fact& fact, int case_id,
                         const CounterFactOptions& options, SeededRandom& rng) {
  const int num_objects = static_cast<int>(world.relations()[fact.relation].objects.size());
  CounterFactCase c;
  c.case_id = case_id;
  c.fact = fact;
  c.rewrite_phrasing = TrainedPhrasing(fact, rng);
  c.target_new = (fact.object + 1 + static_cast<int>(rng.Index(num_objects - 1))) % num_objects;
  int other = TrainedPhrasing(fact, rng);
  while (other == c.rewrite_phrasing) other = TrainedPhrasing(fact, rng);
  c.paraphrase_prompts = {world.Prompt(fact, fact.held_out_phrasing), world.Prompt(fact, other)};
  c.neighborhood_prompts = PromptsForObject(world, fact.relation, fact.object, fact.subject,
                                            options.num_neighborhood, rng);
  c.attribute_prompts = PromptsForObject(world, fact.relation, c.target_new, fact.subject,
                                         options.num_attribute, rng);
  c.generation_prompts = GenerationPrompts(world, fact, options.num_generation, rng);
  return c;
}

}  // namespace

std::vector<CounterFactCase> BuildCounterFact(const World& world,
                                              const CounterFactOptions& options, uint64_t seed) {
  SeededRandom rng(seed);
  std::vector<int> order(world.facts().size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  rng.Shuffle(order);
  order.resize(std::min<size_t>(order.size(), std::max(options.num_cases, 0)));
  std::vector<CounterFactCase> cases;
  for (int index : order) {
    cases.push_back(
        MakeCase(world, world.facts()[index], static_cast<int>(cases.size()), options, rng));
  }
  return cases;
}

std::string CounterFactToJson(const World& world, const std::vector<CounterFactCase>& cases) {
  nlohmann::ordered_json records = nlohmann::ordered_json::array();
  for (const CounterFactCase& c : cases) {
    const Relation& relation = world.relations()[c.fact.relation];
    nlohmann::ordered_json rewrite;
    rewrite["prompt"] = relation.phrasings[c.rewrite_phrasing];
    rewrite["subject"] = world.subjects()[c.fact.subject].Name();
    rewrite["target_new"] = {{"str", relation.objects[c.target_new]}};
    rewrite["target_true"] = {{"str", relation.objects[c.fact.object]}};
    rewrite["relation_id"] = relation.id;
    nlohmann::ordered_json record;
    record["case_id"] = c.case_id;
    record["requested_rewrite"] = rewrite;
    record["paraphrase_prompts"] = c.paraphrase_prompts;
    record["neighborhood_prompts"] = c.neighborhood_prompts;
    record["attribute_prompts"] = c.attribute_prompts;
    record["generation_prompts"] = c.generation_prompts;
    records.push_back(std::move(record));
  }
  return records.dump(2);
}

}  // namespace romed::fact_model
