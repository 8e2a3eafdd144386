#pragma once
// Token ids -> text from a Hugging Face tokenizer.json (byte-level BPE, GPT-NeoX layout), so the
// app can show tokens as text without Python or the `tokenizers` library. Decoding only: merges
// are never read. Recipe and format notes: docs/formats.md §3.
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace sae {

class TokenizerDecoder {
 public:
  // Reads and validates `tokenizerJsonPath`. Throws std::runtime_error naming the file, the
  // problem and what to do: missing/unreadable file, bad JSON (with line and column), no
  // model.vocab, a model type other than "BPE", malformed vocab or added_tokens entries.
  static TokenizerDecoder load(const std::string& tokenizerJsonPath);
  // Same from the text of a tokenizer.json; `sourceName` names it in error messages.
  static TokenizerDecoder parse(const std::string& jsonText, const std::string& sourceName);

  // The text of `ids`: bytes of all tokens concatenated, then UTF-8-decoded with each maximal
  // invalid subpart replaced by U+FFFD (Python's errors="replace"), so a multi-byte character
  // split across tokens comes out whole. Added tokens emit their content verbatim; those marked
  // special are left out when `skipSpecialTokens` (as Hugging Face's skip_special_tokens).
  // Throws naming the file when an id is negative, >= vocabSize() or has no token.
  std::string decode(const std::vector<int64_t>& ids, bool skipSpecialTokens = false) const;
  // One token on its own, for display (a piece of a multi-byte character shows as U+FFFD).
  std::string tokenText(int64_t id) const;
  // The vocabulary string as stored in the file ("Ġworld"), e.g. for tooltips.
  std::string rawToken(int64_t id) const;

  // Largest id + 1 over model.vocab and added_tokens.
  int64_t vocabSize() const { return static_cast<int64_t>(tokens_.size()); }
  bool isSpecial(int64_t id) const;
  bool isAdded(int64_t id) const;
  std::optional<int64_t> tokenId(const std::string& rawToken) const;

  // tokenizer.json does not say which token is BOS/EOS/PAD (special_tokens_map.json does), so
  // these look for the conventional added tokens: <|BOS|>, <|EOS|>, <|PAD|> (the
  // NeelNanda/gpt-neox-tokenizer-digits names), then <|endoftext|> (GPT-2/NeoX) for BOS and EOS.
  std::optional<int64_t> bosId() const { return bos_; }
  std::optional<int64_t> eosId() const { return eos_; }
  std::optional<int64_t> padId() const { return pad_; }

  const std::string& path() const { return path_; }

 private:
  struct Token {
    bool present = false;
    bool added = false;
    bool special = false;
    std::string raw;    // as in the file
    std::string bytes;  // what the token contributes before UTF-8 decoding
  };

  const Token& checked(int64_t id) const;

  std::string path_;
  std::vector<Token> tokens_;
  std::unordered_map<std::string, int64_t> ids_;  // raw string -> id (added tokens win)
  std::optional<int64_t> bos_, eos_, pad_;
};

}  // namespace sae
