#include "demo/ByteLevelPreTokenizer.h"

#include <cstdint>

namespace sae {

namespace {

enum class CharClass { Letter, Number, Space, Other };

struct Char {
  size_t begin;
  size_t length;
  uint32_t cp;  // 0xFFFFFFFF for a byte that is not valid UTF-8
  CharClass cls;
};

bool isUnicodeSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || (cp >= 0x1C && cp <= 0x1F) || cp == 0x85 ||
         cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool isLetter(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
  return cp == 0xAA || cp == 0xB5 || cp == 0xBA ||
         (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7) || (cp >= 0x391 && cp <= 0x3A9) ||
         (cp >= 0x3B1 && cp <= 0x3C9) || (cp >= 0x410 && cp <= 0x44F);
}

CharClass classify(uint32_t cp) {
  if (cp == 0xFFFFFFFFu) return CharClass::Other;
  if (cp >= '0' && cp <= '9') return CharClass::Number;
  if (isLetter(cp)) return CharClass::Letter;
  if (isUnicodeSpace(cp)) return CharClass::Space;
  return CharClass::Other;
}

// Code points with their byte ranges; an invalid or truncated sequence yields one invalid char
// per byte, so every byte lands in exactly one piece.
std::vector<Char> decode(const std::string& s) {
  std::vector<Char> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    uint32_t cp = 0xFFFFFFFFu;
    if (len > 0 && i + len <= s.size()) {
      cp = len == 1 ? c : c & (0x7Fu >> len);
      for (size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) {
          cp = 0xFFFFFFFFu;
          break;
        }
        cp = (cp << 6) | (b & 0x3F);
      }
    }
    if (cp == 0xFFFFFFFFu) len = 1;
    out.push_back({i, len, cp, classify(cp)});
    i += len;
  }
  return out;
}

}  // namespace

std::vector<std::string> ByteLevelPreTokenizer::split(const std::string& text) {
  const std::vector<Char> chars = decode(text);
  const size_t n = chars.size();
  std::vector<std::string> pieces;
  auto emit = [&](size_t from, size_t to) {  // chars [from, to)
    const size_t begin = chars[from].begin;
    const size_t end = to < n ? chars[to].begin : text.size();
    pieces.push_back(text.substr(begin, end - begin));
  };
  auto cpAt = [&](size_t k) { return k < n ? chars[k].cp : 0xFFFFFFFFu; };

  size_t i = 0;
  while (i < n) {
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as in GPT-2).
    if (chars[i].cp == '\'') {
      const uint32_t a = cpAt(i + 1), b = cpAt(i + 2);
      size_t len = 0;
      if (a == 's' || a == 't')
        len = 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e'))
        len = 3;
      else if (a == 'm')
        len = 2;
      else if (a == 'l' && b == 'l')
        len = 3;
      else if (a == 'd')
        len = 2;
      if (len > 0) {
        emit(i, i + len);
        i += len;
        continue;
      }
    }
    // ' ?X+' for X = letters, digits, other: an optional single space, then a run of one class.
    size_t start = i;
    size_t j = i;
    if (chars[j].cp == ' ' && j + 1 < n && chars[j + 1].cls != CharClass::Space) ++j;
    if (chars[j].cls != CharClass::Space) {
      const CharClass cls = chars[j].cls;
      while (j < n && chars[j].cls == cls)
        ++j;
      emit(start, j);
      i = j;
      continue;
    }
    // \s+(?!\S) then \s+: a whitespace run leaves its last character to the next piece when a
    // non-space follows, unless the run is that one character.
    size_t k = i;
    while (k < n && chars[k].cls == CharClass::Space)
      ++k;
    const size_t end = (k < n && k - i >= 2) ? k - 1 : k;
    emit(i, end);
    i = end;
  }
  return pieces;
}

const std::array<std::string, 256>& ByteLevelPreTokenizer::byteToUnicode() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool same = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      const uint32_t cp = same ? static_cast<uint32_t>(b) : next++;
      std::string s;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      t[static_cast<size_t>(b)] = s;
    }
    return t;
  }();
  return table;
}

std::string ByteLevelPreTokenizer::toByteLevel(const std::string& bytes) {
  const auto& table = byteToUnicode();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes)
    out += table[b];
  return out;
}

}  // namespace sae
