// SeededRandom: the one source of randomness of the fact-model tool.
//
// std::uniform_int_distribution and std::shuffle are implementation-defined,
// so the same seed could give different worlds under different standard
// libraries. std::mt19937_64 itself is fully specified; everything here is
// derived from its raw output, so a seed names one world on every platform.
//
//   SeededRandom rng(seed);
//   size_t i = rng.Index(pool.size());
//   rng.Shuffle(order);
#ifndef ROMED_TOOLS_FACT_MODEL_SEEDED_RANDOM_H_
#define ROMED_TOOLS_FACT_MODEL_SEEDED_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace romed::fact_model {

class SeededRandom {
 public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}

  // Uniform in [0, n); n must be > 0. The modulo bias (< n / 2^64) is
  // irrelevant for the pool sizes used here.
  size_t Index(size_t n) { return static_cast<size_t>(engine_() % n); }

  // Uniform in [0, 1).
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

  // True with probability p.
  bool Bernoulli(double p) { return Uniform() < p; }

  // Fisher-Yates, in place.
  template <typename T>
  void Shuffle(std::vector<T>& items) {
    for (size_t i = items.size(); i > 1; --i) std::swap(items[i - 1], items[Index(i)]);
  }

  template <typename T>
  const T& Pick(const std::vector<T>& items) {
    return items[Index(items.size())];
  }

  // A fresh seed for an independent stream (e.g. one per purpose).
  uint64_t NextSeed() { return engine_(); }

 private:
  std::mt19937_64 engine_;
};

}  // namespace romed::fact_model

#endif  // ROMED_TOOLS_FACT_MODEL_SEEDED_RANDOM_H_
