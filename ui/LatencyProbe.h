#pragma once
// Measures how responsive the GUI thread stays while training (`sae-workbench
// --measure-latency`): a 10 ms precise timer records how late each tick fires; the report gives
// percentiles of that lateness and the run's tokens per second.
#include <QElapsedTimer>
#include <QObject>
#include <QString>
#include <QTimer>

#include <vector>

class LatencyProbe : public QObject {
  Q_OBJECT

 public:
  explicit LatencyProbe(int intervalMs = 10, QObject* parent = nullptr);

  void start();
  void stop();
  // Lateness in milliseconds of every tick so far.
  const std::vector<double>& lateness() const { return lateness_; }
  // The q-quantile (0..1) of the lateness, nearest rank; 0 without samples.
  double percentile(double q) const;
  QString report(double tokensPerSecond) const;

 private:
  void onTick();
  int intervalMs_;
  QTimer timer_;
  QElapsedTimer clock_;
  qint64 lastNs_ = 0;
  std::vector<double> lateness_;
};
