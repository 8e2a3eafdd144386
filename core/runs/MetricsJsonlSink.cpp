#include "runs/MetricsJsonlSink.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace sae {

MetricsJsonlSink::MetricsJsonlSink(const std::string& path, bool append)
    : path_(path), out_(path, append ? std::ios::app : std::ios::trunc) {
  if (!out_) {
    throw std::runtime_error("cannot open metrics file '" + path +
                             "' for writing: " + std::strerror(errno));
  }
}

void MetricsJsonlSink::onMetrics(const MetricsEvent& event) {
  nlohmann::ordered_json line;
  line["step"] = event.step;
  // The x axes the plots offer besides the step (tokens seen, seconds since the start).
  line["n_training_tokens"] = event.n_training_tokens;
  line["wall_seconds"] = event.wall_seconds;
  for (const auto& [name, value] : event.values) {
    // JSON has no NaN/Inf: write null so every line stays parseable.
    if (std::isfinite(value)) {
      line[name] = value;
    } else {
      line[name] = nullptr;
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  out_ << line.dump() << '\n';
  out_.flush();
}

}  // namespace sae
