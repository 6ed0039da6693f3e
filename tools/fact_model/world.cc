#include "tools/fact_model/world.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tools/fact_model/names.h"
#include "tools/fact_model/seeded_random.h"

namespace romed::fact_model {
namespace {

absl::Status ValidateOptions(const WorldOptions& options) {
  if (options.num_subjects <= 0 || options.num_first_names <= 0 || options.num_last_names <= 0) {
    return absl::InvalidArgumentError(
        "world: num_subjects, num_first_names and num_last_names must be positive");
  }
  if (options.num_subjects > options.num_first_names * options.num_last_names) {
    return absl::InvalidArgumentError(absl::StrCat(
        "world: ", options.num_subjects, " subjects need more than the ",
        options.num_first_names * options.num_last_names, " distinct first + last names"));
  }
  if (options.objects_per_relation < 0) {
    return absl::InvalidArgumentError("world: objects_per_relation must be >= 0");
  }
  for (const Relation& relation : AllRelations()) {
    if (options.objects_per_relation > static_cast<int>(relation.objects.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat("world: objects_per_relation ", options.objects_per_relation,
                       " exceeds the ", relation.objects.size(), " objects of ", relation.id));
    }
  }
  return absl::OkStatus();
}

std::vector<Relation> TruncatedRelations(int objects_per_relation) {
  std::vector<Relation> relations = AllRelations();
  if (objects_per_relation == 0) return relations;
  for (Relation& relation : relations) relation.objects.resize(objects_per_relation);
  return relations;
}

}  // namespace

absl::StatusOr<World> World::Build(const WorldOptions& options) {
  if (absl::Status status = ValidateOptions(options); !status.ok()) return status;
  World world;
  world.options_ = options;
  world.relations_ = TruncatedRelations(options.objects_per_relation);
  // Independent streams, so changing one pool size leaves the others alone.
  SeededRandom master(options.seed);
  const uint64_t names_seed = master.NextSeed();
  const uint64_t subjects_seed = master.NextSeed();
  const uint64_t objects_seed = master.NextSeed();
  world.DrawNames(names_seed);
  world.DrawSubjects(subjects_seed);
  world.DealObjects(objects_seed);
  return world;
}

void World::DrawNames(uint64_t seed) {
  SeededRandom rng(seed);
  std::set<std::string> taken;
  for (const Relation& relation : AllRelations()) {
    for (const std::string& object : relation.objects) taken.insert(absl::AsciiStrToLower(object));
  }
  first_names_ = MakeNameParts(options_.num_first_names, rng, taken);
  last_names_ = MakeNameParts(options_.num_last_names, rng, taken);
}

void World::DrawSubjects(uint64_t seed) {
  SeededRandom rng(seed);
  std::vector<std::pair<int, int>> pairs;
  for (int f = 0; f < options_.num_first_names; ++f) {
    for (int l = 0; l < options_.num_last_names; ++l) pairs.emplace_back(f, l);
  }
  rng.Shuffle(pairs);
  pairs.resize(options_.num_subjects);
  for (const auto& [f, l] : pairs) subjects_.push_back({first_names_[f], last_names_[l]});
}

void World::DealObjects(uint64_t seed) {
  SeededRandom rng(seed);
  const int num_relations = static_cast<int>(relations_.size());
  facts_.resize(subjects_.size() * relations_.size());
  for (int r = 0; r < num_relations; ++r) {
    const int num_objects = static_cast<int>(relations_[r].objects.size());
    std::vector<int> deck(subjects_.size());
    for (size_t s = 0; s < deck.size(); ++s) deck[s] = static_cast<int>(s) % num_objects;
    rng.Shuffle(deck);
    for (int s = 0; s < static_cast<int>(subjects_.size()); ++s) {
      facts_[s * num_relations + r] = {s, r, deck[s], (s + r) % kPhrasingsPerRelation};
    }
  }
}

const Fact& World::FactAbout(int subject, int relation) const {
  return facts_[subject * relations_.size() + relation];
}

std::vector<int> World::SubjectsWithObject(int relation, int object) const {
  std::vector<int> subjects;
  for (int s = 0; s < static_cast<int>(subjects_.size()); ++s) {
    if (FactAbout(s, relation).object == object) subjects.push_back(s);
  }
  return subjects;
}

const std::string& World::ObjectOf(const Fact& fact) const {
  return relations_[fact.relation].objects[fact.object];
}

const std::string& World::Template(const Fact& fact, int phrasing) const {
  return relations_[fact.relation].phrasings[phrasing];
}

std::string World::Prompt(const Fact& fact, int phrasing) const {
  return FillTemplate(Template(fact, phrasing), subjects_[fact.subject].Name());
}

std::string World::Sentence(const Fact& fact, int phrasing) const {
  return absl::StrCat(Prompt(fact, phrasing), " ", ObjectOf(fact));
}

std::vector<std::string> World::SingleTokenWords() const {
  std::vector<std::string> words;
  for (const std::string& name : first_names_) {
    words.push_back(name);
    words.push_back(" " + name);
  }
  for (const std::string& name : last_names_) words.push_back(" " + name);
  for (const Relation& relation : relations_) {
    for (const std::string& object : relation.objects) words.push_back(" " + object);
  }
  return words;
}

std::string FillTemplate(const std::string& phrasing, const std::string& subject) {
  return absl::StrReplaceAll(phrasing, {{"{}", subject}});
}

}  // namespace romed::fact_model
