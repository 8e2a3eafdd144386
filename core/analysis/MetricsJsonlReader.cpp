#include "analysis/MetricsJsonlReader.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace sae {

std::vector<MetricsEvent> MetricsJsonlReader::read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot open metrics file '" + path + "': " + std::strerror(errno) +
                             " (a run folder has metrics.jsonl once its first step is logged)");
  }
  std::stringstream whole;
  whole << in.rdbuf();
  const std::string text = whole.str();
  const double nan = std::numeric_limits<double>::quiet_NaN();

  std::vector<MetricsEvent> events;
  size_t begin = 0;
  int lineNumber = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    const bool complete = end != std::string::npos;
    if (!complete) end = text.size();
    std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    ++lineNumber;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const auto where = "metrics file '" + path + "' line " + std::to_string(lineNumber) + ": ";
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      if (!complete) break;  // the run is still writing this line
      throw std::runtime_error(where + "not valid JSON (" + e.what() +
                               "); each line must be one JSON object");
    }
    if (!object.is_object()) throw std::runtime_error(where + "expected a JSON object");
    const auto step = object.find("step");
    if (step == object.end() || !step->is_number_integer()) {
      throw std::runtime_error(where + "\"step\" is missing or not an integer");
    }
    MetricsEvent event;
    event.step = step->get<int64_t>();
    event.wall_seconds = nan;
    bool tokensFromTopLevel = false;
    for (const auto& [key, value] : object.items()) {
      if (key == "step") continue;
      double v = nan;
      if (value.is_number()) {
        v = value.get<double>();
      } else if (!value.is_null()) {
        throw std::runtime_error(where + "\"" + key + "\" is " + value.dump() +
                                 ", expected a number or null");
      }
      if (key == "n_training_tokens") {
        event.n_training_tokens = static_cast<int64_t>(v);
        tokensFromTopLevel = true;
      } else if (key == "wall_seconds") {
        event.wall_seconds = v;
      } else {
        event.values[key] = v;
      }
    }
    if (!tokensFromTopLevel) {
      const auto tokens = event.values.find("details/n_training_tokens");
      if (tokens != event.values.end() && tokens->second == tokens->second) {
        event.n_training_tokens = static_cast<int64_t>(tokens->second);
      }
    }
    events.push_back(std::move(event));
  }
  return events;
}

}  // namespace sae
