#pragma once
// The demo world's own pseudo-random numbers: xoshiro256** seeded through SplitMix64, with
// integer ranges by rejection and doubles from the top 53 bits. std::uniform_*_distribution is
// avoided on purpose: its output is implementation-defined and differs between libstdc++ and
// libc++ versions, and the demo corpus must be byte-identical on every machine for a seed.
#include <cstdint>
#include <vector>

namespace sae {

class DemoRandom {
 public:
  explicit DemoRandom(uint64_t seed) {
    uint64_t s = seed;
    for (uint64_t& word : state_)
      word = splitMix64(s);
  }

  uint64_t next() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, n) for n > 0 (0 for n == 0). Rejection keeps every value equally likely.
  uint64_t below(uint64_t n) {
    if (n <= 1) return 0;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x = next();
    while (x >= limit)
      x = next();
    return x % n;
  }

  // Uniform in [lo, hi], both included.
  int range(int lo, int hi) {
    return lo + static_cast<int>(below(static_cast<uint64_t>(static_cast<int64_t>(hi) - lo + 1)));
  }

  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  bool chance(double p) { return uniform() < p; }

  template <typename T>
  const T& pick(const std::vector<T>& items) {
    return items[static_cast<size_t>(below(items.size()))];
  }

  // SplitMix64 step (Steele, Lea, Flood 2014): also a good 64-bit mixing function on its own.
  static uint64_t splitMix64(uint64_t& s) {
    uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

}  // namespace sae
