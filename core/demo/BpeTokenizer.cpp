#include "demo/BpeTokenizer.h"

#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "demo/ByteLevelPreTokenizer.h"

namespace sae {

namespace {

[[noreturn]] void fail(const std::string& source, const std::string& problem) {
  throw std::runtime_error("tokenizer " + source + ": " + problem +
                           ". Use a byte-level BPE tokenizer.json (GPT-2 layout), or delete the "
                           "demo-world cache folder so that the app rebuilds it");
}

// Past this many cached words the cache is dropped: encoding arbitrary text must not grow
// memory without bound.
constexpr size_t kMaxCachedWords = 200000;

}  // namespace

BpeTokenizer::BpeTokenizer(std::vector<std::string> vocab, std::vector<std::pair<int, int>> merges,
                           int endOfTextId, const std::string& sourceName)
    : vocab_(std::move(vocab)), merges_(std::move(merges)), endOfText_(endOfTextId) {
  std::unordered_map<std::string, int> ids;
  for (size_t i = 0; i < vocab_.size(); ++i)
    ids.emplace(vocab_[i], static_cast<int>(i));
  const auto& alphabet = ByteLevelPreTokenizer::byteToUnicode();
  for (int b = 0; b < 256; ++b) {
    const auto it = ids.find(alphabet[static_cast<size_t>(b)]);
    if (it == ids.end()) {
      fail(sourceName, "the vocabulary lacks the single-byte token \"" +
                           alphabet[static_cast<size_t>(b)] + "\" (byte " + std::to_string(b) +
                           "), so some text could not be encoded");
    }
    byteIds_[b] = it->second;
  }
  if (endOfText_ < 0 || endOfText_ >= vocabSize()) {
    fail(sourceName, "end-of-text id " + std::to_string(endOfText_) + " is outside the vocabulary");
  }
  for (size_t r = 0; r < merges_.size(); ++r) {
    const auto [a, b] = merges_[r];
    if (a < 0 || a >= vocabSize() || b < 0 || b >= vocabSize()) {
      fail(sourceName, "merge " + std::to_string(r) + " names an id outside the vocabulary");
    }
    const auto it = ids.find(vocab_[static_cast<size_t>(a)] + vocab_[static_cast<size_t>(b)]);
    if (it == ids.end()) {
      fail(sourceName, "merge " + std::to_string(r) + " (\"" + vocab_[static_cast<size_t>(a)] +
                           " " + vocab_[static_cast<size_t>(b)] +
                           "\") produces a token that is not in model.vocab");
    }
    rank_.emplace(key(a, b), std::make_pair(static_cast<int>(r), it->second));
  }
}

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open the file (missing or unreadable)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

BpeTokenizer BpeTokenizer::parse(const std::string& jsonText, const std::string& sourceName) {
  using nlohmann::json;
  json root;
  try {
    root = json::parse(jsonText);
  } catch (const json::parse_error& e) {
    fail(sourceName, std::string("is not valid JSON (") + e.what() + ")");
  }
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    fail(sourceName, "no \"model\" object");
  }
  const json& model = root["model"];
  if (model.value("type", std::string("BPE")) != "BPE") {
    fail(sourceName, "model type is " + model["type"].dump() + ", not \"BPE\"");
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    fail(sourceName, "no \"model.vocab\" object");
  }
  if (!model.contains("merges") || !model["merges"].is_array()) {
    fail(sourceName, "no \"model.merges\" array");
  }
  const json& vocabJson = model["vocab"];
  std::vector<std::string> vocab(vocabJson.size());
  std::unordered_map<std::string, int> ids;
  for (const auto& [token, idValue] : vocabJson.items()) {
    if (!idValue.is_number_integer() || idValue.get<int64_t>() < 0 ||
        idValue.get<int64_t>() >= static_cast<int64_t>(vocab.size())) {
      fail(sourceName, "model.vocab entry \"" + token + "\" has id " + idValue.dump() +
                           ", expected an integer in 0.." + std::to_string(vocab.size() - 1) +
                           " (ids must be dense)");
    }
    const auto id = static_cast<size_t>(idValue.get<int64_t>());
    if (!vocab[id].empty())
      fail(sourceName, "id " + std::to_string(id) + " appears twice in model.vocab");
    vocab[id] = token;
    ids[token] = static_cast<int>(id);
  }
  std::vector<std::pair<int, int>> merges;
  const json& mergesJson = model["merges"];
  for (size_t r = 0; r < mergesJson.size(); ++r) {
    const json& m = mergesJson[r];
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos) {
        fail(sourceName, "model.merges[" + std::to_string(r) + "] is \"" + s +
                             "\", expected two tokens separated by one space");
      }
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      fail(sourceName, "model.merges[" + std::to_string(r) + "] is " + m.dump() +
                           ", expected \"a b\" or [\"a\", \"b\"]");
    }
    const auto a = ids.find(left), b = ids.find(right);
    if (a == ids.end() || b == ids.end()) {
      fail(sourceName, "model.merges[" + std::to_string(r) + "] names \"" +
                           (a == ids.end() ? left : right) + "\", which is not in model.vocab");
    }
    merges.emplace_back(a->second, b->second);
  }
  int eot = -1;
  if (root.contains("added_tokens") && root["added_tokens"].is_array()) {
    for (const json& added : root["added_tokens"]) {
      if (added.is_object() && added.value("content", std::string()) == kEndOfText &&
          added.contains("id") && added["id"].is_number_integer()) {
        eot = added["id"].get<int>();
      }
    }
  }
  if (eot < 0) fail(sourceName, std::string("no added token \"") + kEndOfText + "\"");
  return BpeTokenizer(std::move(vocab), std::move(merges), eot, sourceName);
}

std::string BpeTokenizer::toJson() const {
  // ordered_json keeps Hugging Face's key order and the vocabulary in id order.
  using nlohmann::ordered_json;
  ordered_json addedToken;
  addedToken["id"] = endOfText_;
  addedToken["content"] = kEndOfText;
  addedToken["single_word"] = false;
  addedToken["lstrip"] = false;
  addedToken["rstrip"] = false;
  addedToken["normalized"] = false;
  addedToken["special"] = true;
  ordered_json byteLevel;
  byteLevel["type"] = "ByteLevel";
  byteLevel["add_prefix_space"] = false;
  byteLevel["trim_offsets"] = true;
  byteLevel["use_regex"] = true;

  ordered_json vocab = ordered_json::object();
  for (size_t i = 0; i < vocab_.size(); ++i)
    vocab[vocab_[i]] = static_cast<int>(i);
  ordered_json merges = ordered_json::array();
  for (const auto& [a, b] : merges_) {
    merges.push_back(vocab_[static_cast<size_t>(a)] + " " + vocab_[static_cast<size_t>(b)]);
  }
  ordered_json model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = nullptr;
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  model["vocab"] = std::move(vocab);
  model["merges"] = std::move(merges);

  ordered_json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = ordered_json::array({addedToken});
  root["normalizer"] = nullptr;
  root["pre_tokenizer"] = byteLevel;
  root["post_processor"] = byteLevel;
  root["decoder"] = byteLevel;
  root["model"] = std::move(model);
  return root.dump(2) + "\n";
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> out;
  const std::string eot = kEndOfText;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t hit = text.find(eot, pos);
    const size_t end = hit == std::string::npos ? text.size() : hit;
    if (end > pos) {
      for (const std::string& piece : ByteLevelPreTokenizer::split(text.substr(pos, end - pos)))
        encodePiece(piece, out);
    }
    if (hit == std::string::npos) break;
    out.push_back(endOfText_);
    pos = hit + eot.size();
  }
  return out;
}

void BpeTokenizer::encodePiece(const std::string& piece, std::vector<int64_t>& out) const {
  if (const auto it = cache_.find(piece); it != cache_.end()) {
    out.insert(out.end(), it->second.begin(), it->second.end());
    return;
  }
  std::vector<int> symbols;
  symbols.reserve(piece.size());
  for (unsigned char c : piece)
    symbols.push_back(byteIds_[c]);
  // Lowest-ranked adjacent pair first, every occurrence left to right, until no pair has a
  // merge: the result Hugging Face's BPE (and GPT-2's encoder.py) gives.
  while (symbols.size() > 1) {
    int bestRank = std::numeric_limits<int>::max();
    std::pair<int, int> best{-1, -1};
    int bestMerged = -1;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = rank_.find(key(symbols[i], symbols[i + 1]));
      if (it != rank_.end() && it->second.first < bestRank) {
        bestRank = it->second.first;
        best = {symbols[i], symbols[i + 1]};
        bestMerged = it->second.second;
      }
    }
    if (bestMerged < 0) break;
    std::vector<int> merged;
    merged.reserve(symbols.size());
    for (size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size() && symbols[i] == best.first && symbols[i + 1] == best.second) {
        merged.push_back(bestMerged);
        ++i;
      } else {
        merged.push_back(symbols[i]);
      }
    }
    symbols.swap(merged);
  }
  std::vector<int64_t> ids(symbols.begin(), symbols.end());
  out.insert(out.end(), ids.begin(), ids.end());
  if (cache_.size() >= kMaxCachedWords) cache_.clear();
  cache_.emplace(piece, std::move(ids));
}

}  // namespace sae
