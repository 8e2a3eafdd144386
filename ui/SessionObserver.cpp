#include "SessionObserver.h"

#include <QString>

#include <utility>

SessionObserver::SessionObserver(Deliver deliver, std::chrono::milliseconds interval)
    : deliver_(std::move(deliver)), interval_(interval), last_(std::chrono::steady_clock::now()) {}

void SessionObserver::onMessage(const std::string& line) {
  pending_.messages << QString::fromStdString(line);
  maybeFlush();
}

void SessionObserver::onMetrics(const sae::MetricsEvent& event) {
  pending_.metrics.push_back(event);
  maybeFlush();
}

void SessionObserver::onHistogram(const sae::HistogramEvent& event) {
  pending_.histograms.push_back(event);
  maybeFlush();
}

void SessionObserver::onProgress(const sae::ProgressEvent& event) {
  pending_.progress = event;
  pending_.hasProgress = true;
  maybeFlush();
}

void SessionObserver::onCheckpoint(const std::string& folder) {
  pending_.checkpoints << QString::fromStdString(folder);
  pending_.messages << "Checkpoint saved: " + QString::fromStdString(folder);
  maybeFlush();
}

void SessionObserver::onFinished(const std::string& folder) {
  pending_.messages << "Final SAE saved: " + QString::fromStdString(folder);
  flush();
}

void SessionObserver::maybeFlush() {
  if (std::chrono::steady_clock::now() - last_ >= interval_) flush();
}

void SessionObserver::flush() {
  last_ = std::chrono::steady_clock::now();
  if (pending_.empty()) return;
  TrainingBatch batch = std::move(pending_);
  pending_ = TrainingBatch();
  ++delivered_;
  deliver_(std::move(batch));
}
