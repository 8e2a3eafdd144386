#pragma once
// What the CLI, the GUI's training session and the metric sinks implement to follow a run.
// Called on the training thread; implementations must be quick and thread-safe.
#include <string>

#include "train/TrainingEvents.h"

namespace sae {

class TrainingObserver {
 public:
  virtual ~TrainingObserver() = default;
  virtual void onMessage(const std::string& /*line*/) {}
  virtual void onMetrics(const MetricsEvent& /*event*/) {}
  virtual void onHistogram(const HistogramEvent& /*event*/) {}
  virtual void onProgress(const ProgressEvent& /*event*/) {}
  virtual void onCheckpoint(const std::string& /*folder*/) {}
  virtual void onFinished(const std::string& /*finalFolder*/) {}
};

}  // namespace sae
