#pragma once
// Lives on the session's QThread and drives one sae::TrainingRun from start to end. The step
// loop blocks this thread; the GUI thread controls it through requestStop()/setPaused(), which
// go straight to the run's thread-safe flags (a queued slot would never run while it trains).
#include <QMutex>
#include <QObject>
#include <QString>

#include <atomic>

#include "TrainingBatch.h"
#include "config/RunConfig.h"

namespace sae {
class TrainingRun;
}

class TrainingWorker : public QObject {
  Q_OBJECT

 public:
  enum Outcome { Finished = 0, Stopped = 1, Failed = 2 };
  Q_ENUM(Outcome)

  // With `resume`, runDir is an existing run folder continued from its latest checkpoint
  // (config is then the folder's own config.json, for the messages only).
  TrainingWorker(const sae::RunConfig& config, const QString& runDir, bool resume = false);

  // Thread-safe; a request made before the run exists is applied once it does.
  void requestStop();
  void setPaused(bool paused);

 public Q_SLOTS:
  // Blocks until the run ends; emits batchReady while training and done at the end.
  void run();

 Q_SIGNALS:
  void batchReady(const TrainingBatch& batch);
  void done(int outcome, const QString& message);

 private:
  sae::RunConfig config_;
  QString runDir_;
  bool resume_ = false;
  QMutex mutex_;                     // guards run_ against the GUI thread's controls
  sae::TrainingRun* run_ = nullptr;  // owned by run()'s stack frame
  std::atomic<bool> stop_{false};
  std::atomic<bool> paused_{false};
};
