#pragma once
// Runs on the training thread: collects the trainer's events and hands them on in batches, at
// most one batch per interval (50 ms: ~20 per second), so a fast step loop cannot flood the GUI
// thread's event queue. The step loop never returns to an event loop, so the throttle is driven
// by the events themselves, plus an explicit flush() when the run ends.
#include <chrono>
#include <functional>

#include "TrainingBatch.h"
#include "train/TrainingObserver.h"

class SessionObserver : public sae::TrainingObserver {
 public:
  using Deliver = std::function<void(TrainingBatch&&)>;
  explicit SessionObserver(Deliver deliver,
                           std::chrono::milliseconds interval = std::chrono::milliseconds(50));

  void onMessage(const std::string& line) override;
  void onMetrics(const sae::MetricsEvent& event) override;
  void onHistogram(const sae::HistogramEvent& event) override;
  void onProgress(const sae::ProgressEvent& event) override;
  void onCheckpoint(const std::string& folder) override;
  void onFinished(const std::string& folder) override;

  // Hands on whatever is pending now, even inside the interval.
  void flush();
  int batchesDelivered() const { return delivered_; }

 private:
  void maybeFlush();
  Deliver deliver_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point last_;
  TrainingBatch pending_;
  int delivered_ = 0;
};
