#pragma once
// The GUI's handle on a training run: a TrainingWorker moved to its own QThread per run. The
// worker's batches arrive here through queued signals (at most ~20 per second) and are passed on
// on the GUI thread; Start / Pause / Resume / Stop map to the run's thread-safe controls. Stop
// finishes the current step and writes a checkpoint, leaving a complete run folder.
#include <QObject>
#include <QPointer>
#include <QString>

#include "TrainingBatch.h"
#include "config/RunConfig.h"

class QThread;
class TrainingWorker;

class TrainingSession : public QObject {
  Q_OBJECT

 public:
  enum class State { Idle, Running, Paused, Stopping, Finished, Stopped, Failed };
  Q_ENUM(State)

  explicit TrainingSession(QObject* parent = nullptr);
  // Stops a running training (finishing its step) and waits for the thread.
  ~TrainingSession() override;

  // QStandardPaths::AppDataLocation/runs.
  static QString defaultRunsFolder();
  // <runsFolder>/<effective run name>-<yyyyMMdd-HHmmss>, made unique with a suffix if needed.
  static QString newRunDir(const QString& runsFolder, const sae::RunConfig& config);
  static QString stateName(State state);

  // Starts training `config` into runDir. False (and nothing happens) while a run is active.
  bool start(const sae::RunConfig& config, const QString& runDir);
  // Continues the stopped or killed run in runDir (its config.json) from its latest checkpoint.
  // False while a run is active; a folder that cannot be resumed ends the run as Failed with
  // the reason.
  bool resumeRun(const sae::RunConfig& config, const QString& runDir);
  void pause();
  void resume();
  void stop();

  State state() const { return state_; }
  bool isActive() const;
  QString runDir() const { return runDir_; }
  QString lastMessage() const { return lastMessage_; }
  // Batches received for the current run (tests check the throttle with it).
  int batchesReceived() const { return batches_; }

 Q_SIGNALS:
  void stateChanged(TrainingSession::State state);
  void batchReady(const TrainingBatch& batch);
  // The run ended: Finished, Stopped or Failed, with the worker's message (the core's error
  // message for Failed).
  void ended(TrainingSession::State outcome, const QString& message);

 private:
  bool launch(TrainingWorker* worker, const QString& runDir);
  void setState(State state);
  void onDone(int outcome, const QString& message);
  void onBatch(const TrainingBatch& batch);

  State state_ = State::Idle;
  QString runDir_;
  QString lastMessage_;
  int batches_ = 0;
  QPointer<QThread> thread_;
  QPointer<TrainingWorker> worker_;
};
