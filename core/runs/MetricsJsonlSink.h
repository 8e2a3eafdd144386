#pragma once
// Appends one JSON object per logged step to metrics.jsonl: {"step": s, "<metric>": v, ...}.
// Append-only and flushed per line, so a killed run keeps every line it logged.
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
};

}  // namespace sae
