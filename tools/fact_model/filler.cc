#include "tools/fact_model/filler.h"

#include "absl/strings/str_cat.h"

namespace romed::fact_model {
namespace {

using Words = std::vector<std::string>;

const Words& Adjectives() {
  static const auto* const kWords =
      new Words{"old", "new", "small", "quiet", "busy", "famous", "narrow", "bright",
                "ancient", "modern", "empty", "crowded", "green", "grey", "wooden", "tall"};
  return *kWords;
}

const Words& Nouns() {
  static const auto* const kWords =
      new Words{"bridge", "market", "library", "garden", "station", "museum", "harbour",
                "theatre", "square", "river", "school", "village", "tower", "hotel", "park"};
  return *kWords;
}

const Words& ThingPredicates() {
  static const auto* const kWords =
      new Words{"was repaired", "was closed", "opened again", "was painted",
                "attracted many visitors", "was rebuilt", "stayed open late",
                "was full of people", "looked beautiful", "was very quiet"};
  return *kWords;
}

const Words& PersonPredicates() {
  static const auto* const kWords =
      new Words{"visited the", "walked to the", "wrote about the", "took a photo of the",
                "spent the afternoon at the", "met a friend near the", "talked about the",
                "returned to the"};
  return *kWords;
}

const Words& Times() {
  static const auto* const kWords =
      new Words{"after the storm", "on Sunday", "last summer", "in the morning",
                "during the festival", "every spring", "for many years", "at night",
                "in the winter", "before the holidays"};
  return *kWords;
}

std::string ThingSentence(SeededRandom& rng) {
  return absl::StrCat("The ", rng.Pick(Adjectives()), " ", rng.Pick(Nouns()), " ",
                      rng.Pick(ThingPredicates()), " ", rng.Pick(Times()));
}

std::string PersonSentence(const World& world, SeededRandom& rng) {
  return absl::StrCat(rng.Pick(world.subjects()).Name(), " ", rng.Pick(PersonPredicates()), " ",
                      rng.Pick(Adjectives()), " ", rng.Pick(Nouns()), " ", rng.Pick(Times()));
}

}  // namespace

std::string MakeFillerSentence(const World& world, SeededRandom& rng) {
  return rng.Bernoulli(1.0 / 3.0) ? PersonSentence(world, rng) : ThingSentence(rng);
}

std::vector<std::string> MakeFillerSentences(const World& world, int count, SeededRandom& rng) {
  std::vector<std::string> sentences;
  sentences.reserve(count);
  for (int i = 0; i < count; ++i) sentences.push_back(MakeFillerSentence(world, rng));
  return sentences;
}

}  // namespace romed::fact_model
