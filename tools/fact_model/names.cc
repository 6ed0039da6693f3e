#include "tools/fact_model/names.h"

#include <cctype>

#include "absl/strings/ascii.h"

namespace romed::fact_model {
namespace {

const std::vector<std::string>& Onsets() {
  static const auto* const kOnsets = new std::vector<std::string>{
      "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "h", "j", "br",
      "dr", "tr", "th"};
  return *kOnsets;
}

const std::vector<std::string>& Vowels() {
  static const auto* const kVowels =
      new std::vector<std::string>{"a", "e", "i", "o", "u", "a", "e", "o", "ei", "y"};
  return *kVowels;
}

const std::vector<std::string>& Codas() {
  static const auto* const kCodas =
      new std::vector<std::string>{"", "", "", "", "", "n", "r", "l", "s", "k", "m"};
  return *kCodas;
}

std::string MakeSyllable(SeededRandom& rng) {
  return rng.Pick(Onsets()) + rng.Pick(Vowels()) + rng.Pick(Codas());
}

std::string MakeNamePart(SeededRandom& rng) {
  const int syllables = rng.Bernoulli(0.3) ? 3 : 2;
  std::string part;
  for (int i = 0; i < syllables; ++i) part += MakeSyllable(rng);
  part[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(part[0])));
  return part;
}

}  // namespace

std::vector<std::string> MakeNameParts(int count, SeededRandom& rng, std::set<std::string>& taken) {
  std::vector<std::string> parts;
  while (static_cast<int>(parts.size()) < count) {
    std::string part = MakeNamePart(rng);
    if (taken.insert(absl::AsciiStrToLower(part)).second) parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace romed::fact_model
