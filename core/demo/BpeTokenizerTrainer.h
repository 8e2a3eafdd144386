#pragma once
// Learns a byte-level BPE vocabulary from text, for the demo world's tokenizer.json.
//
// The classic algorithm (Sennrich et al. 2016, as GPT-2 and Hugging Face's BpeTrainer do it):
// pieces from ByteLevelPreTokenizer are counted, each starts as its bytes, and the most frequent
// adjacent pair is merged into a new token until the vocabulary is full. Pair counts are kept
// incrementally (only the words that contain the merged pair are revisited) and the best pair
// comes from a max-heap with lazy invalidation, so 3 MB of text trains in about a second.
// Ties are broken by the smaller (left id, right id), and words are visited in sorted order, so
// the result depends on the text alone, never on hash-table order.
#include <cstdint>
#include <map>
#include <string>

#include "demo/BpeTokenizer.h"

namespace sae {

class BpeTokenizerTrainer {
 public:
  // `vocabSize` counts "<|endoftext|>" (id 0) and the 256 byte tokens: at least 257.
  // Pairs seen fewer than `minPairCount` times are never merged (training may stop early).
  explicit BpeTokenizerTrainer(int vocabSize, int64_t minPairCount = 2);

  // Counts the pre-tokenized pieces of one document.
  void addText(const std::string& text);

  // Learns the merges from everything added so far.
  BpeTokenizer train() const;

 private:
  int vocabSize_;
  int64_t minPairCount_;
  std::map<std::string, int64_t> wordCounts_;  // ordered: training visits words in this order
};

}  // namespace sae
