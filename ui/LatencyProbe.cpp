#include "LatencyProbe.h"

#include <algorithm>
#include <cmath>

LatencyProbe::LatencyProbe(int intervalMs, QObject* parent)
    : QObject(parent), intervalMs_(intervalMs) {
  timer_.setTimerType(Qt::PreciseTimer);
  timer_.setInterval(intervalMs_);
  connect(&timer_, &QTimer::timeout, this, &LatencyProbe::onTick);
}

void LatencyProbe::start() {
  lateness_.clear();
  clock_.start();
  lastNs_ = 0;
  timer_.start();
}

void LatencyProbe::stop() {
  timer_.stop();
}

void LatencyProbe::onTick() {
  const qint64 now = clock_.nsecsElapsed();
  // Lateness = time since the previous tick beyond the interval: how long the event loop was
  // busy elsewhere when the tick was due.
  const double late = (now - lastNs_) / 1e6 - intervalMs_;
  lateness_.push_back(std::max(0.0, late));
  lastNs_ = now;
}

double LatencyProbe::percentile(double q) const {
  if (lateness_.empty()) return 0;
  std::vector<double> sorted = lateness_;
  std::sort(sorted.begin(), sorted.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * sorted.size()));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

QString LatencyProbe::report(double tokensPerSecond) const {
  const double maxLate =
      lateness_.empty() ? 0.0 : *std::max_element(lateness_.begin(), lateness_.end());
  return QString(
             "event-loop latency (%1 ms timer, %2 ticks): p50 %3 ms, p99 %4 ms, max %5 ms; "
             "training %6 tokens/s")
      .arg(intervalMs_)
      .arg(lateness_.size())
      .arg(percentile(0.5), 0, 'f', 2)
      .arg(percentile(0.99), 0, 'f', 2)
      .arg(maxLate, 0, 'f', 2)
      .arg(tokensPerSecond, 0, 'f', 1);
}
