#include "runs/MetricsJsonlSink.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include <nlohmann/json.hpp>

namespace sae {

MetricsJsonlSink::MetricsJsonlSink(const std::string& path, bool append)
    : path_(path), out_(path, append ? std::ios::app : std::ios::trunc) {
  if (!out_) {
    throw std::runtime_error("cannot open metrics file '" + path +
                             "' for writing: " + std::strerror(errno));
  }
  std::error_code ec;
  committedBytes_ = append ? std::filesystem::file_size(path, ec) : 0;
  if (ec) committedBytes_ = 0;
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
  const std::string text = line.dump() + '\n';
  std::lock_guard<std::mutex> lock(mutex_);
  if (!out_) throw std::runtime_error("metrics file '" + path_ + "' failed earlier; not written");
  out_ << text;
  out_.flush();
  if (!out_) {
    const int error = errno;
    // Part of the line may have reached the file: cut it off so that every line stays whole.
    out_.close();
    std::error_code ec;
    std::filesystem::resize_file(path_, committedBytes_, ec);
    throw std::runtime_error("cannot write metrics file '" + path_ + "' at step " +
                             std::to_string(event.step) + ": " + std::strerror(error) +
                             " (disk full or no longer writable?). The lines before stay; free " +
                             "space and continue the run from its last checkpoint (--resume)");
  }
  committedBytes_ += text.size();
}

}  // namespace sae
