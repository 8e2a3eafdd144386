#include "formats/TokenizerDecoder.h"

#include <array>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace sae {

namespace {

using nlohmann::json;

// Ids beyond this are rejected rather than allocated: real vocabularies are < 300k, and a corrupt
// file must not make us reserve gigabytes.
constexpr int64_t kMaxId = 16 * 1024 * 1024;

[[noreturn]] void fail(const std::string& source, const std::string& problem,
                       const std::string& remedy) {
  throw std::runtime_error("tokenizer " + source + ": " + problem + ". " + remedy);
}

const char* const kRedownload =
    "Use the tokenizer.json of the model's Hugging Face repository (byte-level BPE, as "
    "GPT-2/GPT-NeoX)";

// Inverse of GPT-2's bytes_to_unicode (openai/gpt-2 src/encoder.py): printable bytes stand for
// themselves, the other 68 bytes were shifted to 256.. in increasing order. Index = code point
// (all < 324), value = byte or -1.
const std::array<int, 324>& unicodeToByte() {
  static const std::array<int, 324> table = [] {
    std::array<int, 324> t{};
    t.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool same = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      t[same ? b : next++] = b;
    }
    return t;
  }();
  return table;
}

// Code points of a UTF-8 string (nlohmann hands out valid UTF-8), or nullopt if it is not.
std::optional<std::vector<uint32_t>> codePoints(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int len = c < 0x80           ? 1
                    : (c >> 5) == 0x6  ? 2
                    : (c >> 4) == 0xE  ? 3
                    : (c >> 3) == 0x1E ? 4
                                       : 0;
    if (len == 0 || i + len > s.size()) return std::nullopt;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (int k = 1; k < len; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += len;
  }
  return out;
}

// The bytes a vocabulary string stands for. A string with a character outside the table is
// taken as its own UTF-8 bytes, as Hugging Face's ByteLevel decoder does.
std::string tokenBytes(const std::string& raw) {
  const auto& table = unicodeToByte();
  const auto cps = codePoints(raw);
  if (!cps) return raw;
  std::string bytes;
  for (uint32_t cp : *cps) {
    if (cp >= table.size() || table[cp] < 0) return raw;
    bytes.push_back(static_cast<char>(table[cp]));
  }
  return bytes;
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// UTF-8 validation with one U+FFFD per maximal invalid subpart (Unicode §3.9 "substitution of
// maximal subparts", which Python's errors="replace" and Rust's from_utf8_lossy follow): a lead
// byte plus the continuation bytes that could still start a valid sequence are replaced
// together; a byte that cannot start a sequence is replaced alone.
std::string utf8Lossy(const std::string& in) {
  std::string out;
  out.reserve(in.size());
  const size_t n = in.size();
  auto at = [&](size_t i) { return static_cast<unsigned char>(in[i]); };
  for (size_t i = 0; i < n;) {
    const unsigned char c = at(i);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    int len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // no overlong forms
      if (c == 0xED) hi = 0x9F;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // no overlong forms
      if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
    }
    if (len == 0) {
      appendUtf8(out, 0xFFFD);
      ++i;
      continue;
    }
    int k = 1;
    for (; k < len && i + k < n; ++k) {
      const unsigned char b = at(i + k);
      if (k == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) break;
    }
    if (k == len) {
      out.append(in, i, static_cast<size_t>(len));
    } else {
      appendUtf8(out, 0xFFFD);
    }
    i += static_cast<size_t>(k);
  }
  return out;
}

int64_t idOf(const json& v, const std::string& source, const std::string& where) {
  if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxId) {
    fail(source, where + " has id " + v.dump() + ", not an integer in 0.." + std::to_string(kMaxId),
         kRedownload);
  }
  return v.get<int64_t>();
}

}  // namespace

TokenizerDecoder TokenizerDecoder::load(const std::string& tokenizerJsonPath) {
  std::ifstream in(tokenizerJsonPath, std::ios::binary);
  if (!in) {
    fail(tokenizerJsonPath, "cannot open the file (missing or unreadable)",
         "Check the path; download tokenizer.json from the model's Hugging Face repository");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail(tokenizerJsonPath, "read error", "Check the file and the disk");
  return parse(text.str(), tokenizerJsonPath);
}

TokenizerDecoder TokenizerDecoder::parse(const std::string& jsonText,
                                         const std::string& sourceName) {
  json root;
  try {
    root = json::parse(jsonText);
  } catch (const json::parse_error& e) {
    // nlohmann's message carries "at line L, column C".
    fail(sourceName, std::string("is not valid JSON (") + e.what() + ")",
         "The file is probably truncated or not a tokenizer.json; download it again");
  }
  if (!root.is_object()) fail(sourceName, "top level is not a JSON object", kRedownload);
  const auto model = root.find("model");
  if (model == root.end() || !model->is_object()) {
    fail(sourceName, "no \"model\" object", kRedownload);
  }
  // Files written by old tokenizers versions omit "type"; its vocab/merges shape is then BPE's.
  if (const auto type = model->find("type"); type != model->end()) {
    if (!type->is_string() || type->get<std::string>() != "BPE") {
      fail(sourceName, "model type is " + type->dump() + ", only \"BPE\" is supported",
           "Use a byte-level BPE tokenizer (GPT-2/GPT-NeoX family); WordPiece, Unigram and "
           "WordLevel models cannot be decoded here");
    }
  }
  const auto vocab = model->find("vocab");
  if (vocab == model->end() || !vocab->is_object()) {
    fail(sourceName, "no \"model.vocab\" object (token string -> id)", kRedownload);
  }

  TokenizerDecoder d;
  d.path_ = sourceName;
  auto slot = [&d](int64_t id) -> Token& {
    if (id >= d.vocabSize()) d.tokens_.resize(static_cast<size_t>(id) + 1);
    return d.tokens_[static_cast<size_t>(id)];
  };
  for (const auto& [raw, idValue] : vocab->items()) {
    const int64_t id = idOf(idValue, sourceName, "model.vocab entry \"" + raw + "\"");
    Token& t = slot(id);
    t.present = true;
    t.raw = raw;
    t.bytes = tokenBytes(raw);
    d.ids_[raw] = id;
  }

  // Added tokens overwrite the vocab entry with the same id (or add one) and decode verbatim.
  if (const auto added = root.find("added_tokens"); added != root.end() && !added->is_null()) {
    if (!added->is_array()) fail(sourceName, "\"added_tokens\" is not an array", kRedownload);
    for (size_t i = 0; i < added->size(); ++i) {
      const json& a = (*added)[i];
      const std::string where = "added_tokens[" + std::to_string(i) + "]";
      if (!a.is_object() || !a.contains("id") || !a.contains("content") ||
          !a["content"].is_string()) {
        fail(sourceName, where + " lacks an integer \"id\" or a string \"content\"", kRedownload);
      }
      const int64_t id = idOf(a["id"], sourceName, where);
      Token& t = slot(id);
      t.present = true;
      t.added = true;
      t.special = a.value("special", false);
      t.raw = a["content"].get<std::string>();
      t.bytes = t.raw;
      d.ids_[t.raw] = id;
    }
  }

  auto addedId = [&d](std::initializer_list<const char*> names) -> std::optional<int64_t> {
    for (const char* name : names) {
      const auto it = d.ids_.find(name);
      if (it != d.ids_.end() && d.tokens_[static_cast<size_t>(it->second)].added) {
        return it->second;
      }
    }
    return std::nullopt;
  };
  d.bos_ = addedId({"<|BOS|>", "<|endoftext|>"});
  d.eos_ = addedId({"<|EOS|>", "<|endoftext|>"});
  d.pad_ = addedId({"<|PAD|>", "<|padding|>"});
  return d;
}

const TokenizerDecoder::Token& TokenizerDecoder::checked(int64_t id) const {
  if (id < 0 || id >= vocabSize()) {
    fail(
        path_,
        "token id " + std::to_string(id) + " is out of range 0.." + std::to_string(vocabSize() - 1),
        "The ids do not come from this tokenizer; use the tokenizer of the model that produced "
        "them");
  }
  const Token& t = tokens_[static_cast<size_t>(id)];
  if (!t.present) {
    fail(path_, "token id " + std::to_string(id) + " has no entry in model.vocab or added_tokens",
         "The ids do not come from this tokenizer; use the tokenizer of the model that produced "
         "them");
  }
  return t;
}

std::string TokenizerDecoder::decode(const std::vector<int64_t>& ids,
                                     bool skipSpecialTokens) const {
  // Bytes first, decoding last: a character split across tokens must be joined before UTF-8
  // decoding, or each half would become U+FFFD.
  std::string bytes;
  for (int64_t id : ids) {
    const Token& t = checked(id);
    if (skipSpecialTokens && t.special) continue;
    bytes += t.bytes;
  }
  return utf8Lossy(bytes);
}

std::string TokenizerDecoder::tokenText(int64_t id) const {
  return utf8Lossy(checked(id).bytes);
}

std::string TokenizerDecoder::rawToken(int64_t id) const {
  return checked(id).raw;
}

bool TokenizerDecoder::isSpecial(int64_t id) const {
  return id >= 0 && id < vocabSize() && tokens_[static_cast<size_t>(id)].special;
}

bool TokenizerDecoder::isAdded(int64_t id) const {
  return id >= 0 && id < vocabSize() && tokens_[static_cast<size_t>(id)].added;
}

std::optional<int64_t> TokenizerDecoder::tokenId(const std::string& rawToken) const {
  const auto it = ids_.find(rawToken);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

}  // namespace sae
