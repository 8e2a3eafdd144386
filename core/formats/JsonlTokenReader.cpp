#include "formats/JsonlTokenReader.h"

#include <nlohmann/json.hpp>

#include <stdexcept>

namespace sae {

JsonlTokenReader::JsonlTokenReader(const std::string& path) : path_(path), in_(path) {
  if (!in_) throw std::runtime_error(path + ": cannot open for reading");
  peekOk_ = readLine(peek_);
  havePeek_ = true;
  if (!peekOk_) throw std::runtime_error(path + ": holds no documents (every line is blank)");
}

bool JsonlTokenReader::next(std::vector<int64_t>& tokens, bool& continuation) {
  continuation = false;
  if (havePeek_) {
    havePeek_ = false;
    tokens.swap(peek_);
    return peekOk_;
  }
  return readLine(tokens);
}

bool JsonlTokenReader::readLine(std::vector<int64_t>& tokens) {
  std::string text;
  while (std::getline(in_, text)) {
    ++line_;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path_ + " line " + std::to_string(line_) + ": ";
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw std::runtime_error(where + "not valid JSON (" + e.what() + ")");
    }
    if (!doc.is_object())
      throw std::runtime_error(where + "expected an object like {\"tokens\": [1, 2, 3]}");
    const char* key = doc.contains("tokens") ? "tokens" : "input_ids";
    if (!doc.contains(key)) {
      if (doc.contains("text"))
        throw std::runtime_error(where +
                                 "has a \"text\" field but no \"tokens\": text datasets need "
                                 "tokenising, which is not supported yet; tokenise them first "
                                 "into {\"tokens\": [...]} lines");
      throw std::runtime_error(where + "has no \"tokens\" (or \"input_ids\") field");
    }
    const auto& list = doc[key];
    if (!list.is_array())
      throw std::runtime_error(where + "\"" + key + "\" must be a list of token ids, not " +
                               list.type_name());
    tokens.clear();
    tokens.reserve(list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      const auto& v = list[i];
      if (!v.is_number_integer() ||
          (v.is_number_integer() && !v.is_number_unsigned() && v.get<int64_t>() < 0))
        throw std::runtime_error(where + "\"" + key + "\"[" + std::to_string(i) + "] is " +
                                 v.dump() + ": token ids must be non-negative integers");
      if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
        throw std::runtime_error(where + "token id " + v.dump() + " is too large");
      tokens.push_back(v.get<int64_t>());
    }
    return true;
  }
  if (in_.bad())
    throw std::runtime_error(path_ + ": read error after line " + std::to_string(line_));
  return false;
}

std::string JsonlTokenReader::describe() const {
  return "JSONL token file " + path_;
}

}  // namespace sae
