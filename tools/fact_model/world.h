// World: the synthetic facts the fact model is trained on and evaluated by.
//
// People are named first + last from two small shared pools, so no single
// name part identifies a person: the model has to read the whole name. Each
// person has exactly one object per relation (relations.h); objects are
// dealt out evenly, so every object is the truth for about
// num_subjects / objects_per_relation people (CounterFact's neighbourhood
// prompts need ten other people who share the true object).
//
// Held-out phrasings: for the fact (subject s, relation r) the phrasing
// (s + r) mod kPhrasingsPerRelation never appears in the training text; it
// measures whether the model generalises across phrasings. The cycle makes
// every phrasing seen for 4 in 5 people.
//
// A World is fully determined by its options (seed included) on every
// platform. Immutable after Build(); thread-safe to read.
#ifndef ROMED_TOOLS_FACT_MODEL_WORLD_H_
#define ROMED_TOOLS_FACT_MODEL_WORLD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/fact_model/relations.h"

namespace romed::fact_model {

struct WorldOptions {
  int num_subjects = 400;        // people; at most num_first_names * num_last_names
  int num_first_names = 40;      // size of the first-name pool
  int num_last_names = 50;       // size of the last-name pool
  int objects_per_relation = 0;  // use the first N objects of each relation; 0 = all
  uint64_t seed = 1;
};

struct Person {
  std::string first_name;  // "Vorlen"
  std::string last_name;   // "Tasko"
  std::string Name() const { return first_name + " " + last_name; }
};

struct Fact {
  int subject = 0;            // index into World::subjects()
  int relation = 0;           // index into World::relations()
  int object = 0;             // index into that relation's objects
  int held_out_phrasing = 0;  // index into that relation's phrasings
};

class World {
 public:
  // InvalidArgumentError if a count is not positive, there are more subjects
  // than distinct names, or objects_per_relation exceeds a relation's list.
  static absl::StatusOr<World> Build(const WorldOptions& options);

  const WorldOptions& options() const { return options_; }
  const std::vector<Person>& subjects() const { return subjects_; }
  const std::vector<Relation>& relations() const { return relations_; }
  const std::vector<std::string>& first_names() const { return first_names_; }
  const std::vector<std::string>& last_names() const { return last_names_; }

  // Every fact, subject-major: facts()[s * relations().size() + r].
  const std::vector<Fact>& facts() const { return facts_; }
  const Fact& FactAbout(int subject, int relation) const;

  // Subjects whose object for `relation` is `object`, ascending.
  std::vector<int> SubjectsWithObject(int relation, int object) const;

  // The object's text without a leading space ("Paris").
  const std::string& ObjectOf(const Fact& fact) const;
  // The phrasing template ("{} was born in") and its filled-in prompt.
  const std::string& Template(const Fact& fact, int phrasing) const;
  std::string Prompt(const Fact& fact, int phrasing) const;
  // The full sentence a training row uses: prompt + " " + object.
  std::string Sentence(const Fact& fact, int phrasing) const;

  // The words the tokenizer must keep as single tokens: every name part and
  // object after a space (" Dora", " Zope", " Paris"), and every first name
  // bare ("Dora"), as it starts a text. Last names and objects never start a
  // text (ROME scores " " + the target), so their bare forms would only add
  // unused tokens to the vocabulary.
  std::vector<std::string> SingleTokenWords() const;

 private:
  World() = default;
  void DrawNames(uint64_t seed);
  void DrawSubjects(uint64_t seed);
  void DealObjects(uint64_t seed);

  WorldOptions options_;
  std::vector<Relation> relations_;
  std::vector<std::string> first_names_;
  std::vector<std::string> last_names_;
  std::vector<Person> subjects_;
  std::vector<Fact> facts_;
};

// Replaces the single "{}" of `phrasing` with `subject`.
std::string FillTemplate(const std::string& phrasing, const std::string& subject);

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_WORLD_H_
