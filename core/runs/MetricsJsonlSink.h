#pragma once
// Appends one JSON object per logged step to metrics.jsonl: {"step": s, "<metric>": v, ...}.
// Append-only and flushed per line, so a killed run keeps every line it logged. A line that
// cannot be written whole (disk full, file size limit) is cut off again, so every line in the
// file stays parseable, and the write error is thrown.
#include <cstdint>
#include <fstream>
#include <mutex>
#include <string>

#include "train/TrainingObserver.h"

namespace sae {

class MetricsJsonlSink : public TrainingObserver {
 public:
  // Truncates (new run) or appends (resume) the file; throws naming the path on failure.
  explicit MetricsJsonlSink(const std::string& path, bool append = false);
  void onMetrics(const MetricsEvent& event) override;

 private:
  std::string path_;
  std::ofstream out_;
  std::mutex mutex_;
  std::uintmax_t committedBytes_ = 0;  // the file's size after its last whole line
};

}  // namespace sae
