#pragma once
// GPT-2's byte-level pre-tokenization, written by hand (no regex engine with \p{L} in the C++
// standard library): the text is split as GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// splits it, and each piece's bytes are spelled with GPT-2's bytes_to_unicode alphabet (a space
// becomes "Ġ", a newline "Ċ"). This is what Hugging Face's ByteLevel pre-tokenizer
// (use_regex=true, add_prefix_space=false) does.
//
// Character classes: ASCII is classified exactly. Outside ASCII, Latin-1/Latin Extended, Greek
// and Cyrillic letters are letters, the Unicode space characters are spaces, and everything else
// (including non-ASCII digits such as "²") counts as punctuation-like. The demo corpus only uses
// ASCII plus a few accented letters and symbols (é, °, €), for which this equals GPT-2's split.
// Bytes that are not valid UTF-8 are punctuation-like pieces of one byte each.
#include <array>
#include <string>
#include <vector>

namespace sae {

class ByteLevelPreTokenizer {
 public:
  // The pieces of `text`, as raw bytes; their concatenation is `text`.
  static std::vector<std::string> split(const std::string& text);

  // GPT-2's bytes_to_unicode: the UTF-8 spelling of the character that stands for each byte.
  static const std::array<std::string, 256>& byteToUnicode();

  // `bytes` spelled in that alphabet ("hello world" -> "helloĠworld").
  static std::string toByteLevel(const std::string& bytes);
};

}  // namespace sae
