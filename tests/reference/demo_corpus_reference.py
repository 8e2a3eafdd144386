#!/usr/bin/python3
"""Independent reference for core/demo/DemoRandom.h: xoshiro256** (Blackman & Vigna) seeded with
four SplitMix64 outputs, written from the published algorithms with Python integers.

Run:  /usr/bin/python3 tests/reference/demo_corpus_reference.py
Writes tests/fixtures/demo/random.txt: the seed, then the first 8 outputs, one per line.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "demo", "random.txt")
MASK = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & MASK
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & MASK


class Xoshiro256StarStar:
    def __init__(self, seed):
        self.s = []
        state = seed
        for _ in range(4):
            state, out = splitmix64(state)
            self.s.append(out)

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result


def main():
    seed = 20240501
    rng = Xoshiro256StarStar(seed)
    lines = [str(seed)] + [str(rng.next()) for _ in range(8)]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
