#pragma once
// A byte-level BPE tokenizer: the vocabulary and ranked merges of a Hugging Face tokenizer.json
// (model.type "BPE", ByteLevel pre-tokenizer and decoder), and an encoder that applies the merges
// by rank as Hugging Face's BPE model does. The demo world trains one with BpeTokenizerTrainer;
// core/formats/TokenizerDecoder reads the same file back for display.
//
// Layout written by toJson(): id 0 is the added special token "<|endoftext|>", used as BOS, EOS
// and document separator (GPT-2's convention, one token for all three; TokenizerDecoder finds it
// as bosId()/eosId()); ids 1..256 are the 256 single bytes in byte order; merged tokens follow in
// merge order.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sae {

class BpeTokenizer {
 public:
  static constexpr const char* kEndOfText = "<|endoftext|>";

  // `vocab[id]` is the token in the byte-level alphabet ("Ġthe"); `merges` are pairs of ids in
  // rank order, each producing the token that is their concatenation. Throws std::runtime_error
  // when a merge names an unknown id or its result is not in the vocabulary.
  BpeTokenizer(std::vector<std::string> vocab, std::vector<std::pair<int, int>> merges,
               int endOfTextId, const std::string& sourceName = "tokenizer");

  // Reads a tokenizer.json (merges as "a b" strings or [a, b] arrays). Throws naming the file
  // and the problem: unreadable, bad JSON, not BPE, vocab/merges malformed or inconsistent.
  static BpeTokenizer load(const std::string& path);
  static BpeTokenizer parse(const std::string& jsonText, const std::string& sourceName);

  // The tokenizer.json text (Hugging Face tokenizers format, pretty-printed, stable bytes).
  std::string toJson() const;

  // Token ids of `text`: literal "<|endoftext|>" becomes its id (added tokens are split out
  // first, as in Hugging Face), the rest is pre-tokenized (ByteLevelPreTokenizer) and each piece
  // encoded with the merges by rank.
  std::vector<int64_t> encode(const std::string& text) const;

  int vocabSize() const { return static_cast<int>(vocab_.size()); }
  int endOfTextId() const { return endOfText_; }
  const std::vector<std::string>& vocab() const { return vocab_; }
  const std::vector<std::pair<int, int>>& merges() const { return merges_; }

 private:
  static uint64_t key(int a, int b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void encodePiece(const std::string& piece, std::vector<int64_t>& out) const;

  std::vector<std::string> vocab_;
  std::vector<std::pair<int, int>> merges_;
  int endOfText_ = 0;
  int byteIds_[256];
  std::unordered_map<uint64_t, std::pair<int, int>> rank_;  // pair -> (rank, merged id)
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace sae
