#include "demo/BpeTokenizerTrainer.h"

#include <queue>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "demo/ByteLevelPreTokenizer.h"

namespace sae {

namespace {

uint64_t pairKey(int a, int b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int leftOf(uint64_t k) {
  return static_cast<int>(k >> 32);
}
int rightOf(uint64_t k) {
  return static_cast<int>(k & 0xFFFFFFFFu);
}

struct HeapEntry {
  int64_t count;
  uint64_t pair;
  // Max-heap on count; among equal counts the smaller pair wins (hence "greater" pair is less).
  bool operator<(const HeapEntry& o) const {
    return count != o.count ? count < o.count : pair > o.pair;
  }
};

}  // namespace

BpeTokenizerTrainer::BpeTokenizerTrainer(int vocabSize, int64_t minPairCount)
    : vocabSize_(vocabSize), minPairCount_(minPairCount) {
  if (vocabSize < 257) {
    throw std::runtime_error("BPE vocabulary size " + std::to_string(vocabSize) +
                             " is too small: it must hold <|endoftext|> and the 256 byte tokens "
                             "(at least 257)");
  }
}

void BpeTokenizerTrainer::addText(const std::string& text) {
  for (std::string& piece : ByteLevelPreTokenizer::split(text))
    ++wordCounts_[std::move(piece)];
}

BpeTokenizer BpeTokenizerTrainer::train() const {
  // Id 0: <|endoftext|>; ids 1..256: bytes 0..255.
  std::vector<std::string> vocab;
  vocab.reserve(static_cast<size_t>(vocabSize_));
  vocab.push_back(BpeTokenizer::kEndOfText);
  for (int b = 0; b < 256; ++b)
    vocab.push_back(ByteLevelPreTokenizer::byteToUnicode()[static_cast<size_t>(b)]);

  std::unordered_map<std::string, int> ids;
  for (size_t i = 0; i < vocab.size(); ++i)
    ids.emplace(vocab[i], static_cast<int>(i));

  std::vector<std::vector<int>> words;
  std::vector<int64_t> counts;
  words.reserve(wordCounts_.size());
  for (const auto& [word, count] : wordCounts_) {
    std::vector<int> symbols;
    symbols.reserve(word.size());
    for (unsigned char c : word)
      symbols.push_back(1 + c);
    words.push_back(std::move(symbols));
    counts.push_back(count);
  }

  std::unordered_map<uint64_t, int64_t> pairCounts;
  std::unordered_map<uint64_t, std::unordered_set<int>> where;
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w];
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const uint64_t k = pairKey(s[i], s[i + 1]);
      pairCounts[k] += counts[w];
      where[k].insert(static_cast<int>(w));
    }
  }
  std::priority_queue<HeapEntry> heap;
  for (const auto& [k, c] : pairCounts)
    heap.push({c, k});

  std::vector<std::pair<int, int>> merges;
  std::unordered_map<uint64_t, int64_t> delta;
  while (static_cast<int>(vocab.size()) < vocabSize_ && !heap.empty()) {
    const HeapEntry top = heap.top();
    heap.pop();
    const auto found = pairCounts.find(top.pair);
    const int64_t actual = found == pairCounts.end() ? 0 : found->second;
    if (actual != top.count) {  // stale: counts only fall for existing pairs, so re-queue
      if (actual > 0) heap.push({actual, top.pair});
      continue;
    }
    if (actual < minPairCount_) break;

    const int a = leftOf(top.pair), b = rightOf(top.pair);
    // Two merge paths can spell the same token ("ab"+"c", "a"+"bc"): the second merge reuses
    // the first one's id, as Hugging Face's trainer does, so vocabulary strings stay unique.
    const std::string spelled = vocab[static_cast<size_t>(a)] + vocab[static_cast<size_t>(b)];
    const auto [known, isNew] = ids.emplace(spelled, static_cast<int>(vocab.size()));
    const int merged = known->second;
    if (isNew) vocab.push_back(spelled);
    merges.emplace_back(a, b);

    // Each word holding the pair: subtract its old pairs, merge, add its new pairs. Whole-word
    // recounting keeps overlapping cases ("aaa" with merge a+a) right without special cases.
    const std::unordered_set<int> affected = std::move(where[top.pair]);
    where.erase(top.pair);
    delta.clear();
    for (int w : affected) {
      auto& s = words[static_cast<size_t>(w)];
      const int64_t c = counts[static_cast<size_t>(w)];
      bool present = false;
      for (size_t i = 0; i + 1 < s.size(); ++i)
        present = present || (s[i] == a && s[i + 1] == b);
      if (!present) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i)
        delta[pairKey(s[i], s[i + 1])] -= c;
      std::vector<int> next;
      next.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          next.push_back(merged);
          ++i;
        } else {
          next.push_back(s[i]);
        }
      }
      s.swap(next);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        const uint64_t k = pairKey(s[i], s[i + 1]);
        delta[k] += c;
        if (s[i] == merged || s[i + 1] == merged) where[k].insert(w);
      }
    }
    for (const auto& [k, d] : delta) {
      if (d == 0) continue;
      int64_t& total = pairCounts[k];
      total += d;
      if (d > 0) heap.push({total, k});
      if (total <= 0) pairCounts.erase(k);
    }
  }
  return BpeTokenizer(std::move(vocab), std::move(merges), 0);
}

}  // namespace sae
