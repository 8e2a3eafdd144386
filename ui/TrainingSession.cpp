#include "TrainingSession.h"

#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <QStandardPaths>
#include <QThread>

#include "TrainingWorker.h"

TrainingSession::TrainingSession(QObject* parent) : QObject(parent) {
  qRegisterMetaType<TrainingBatch>("TrainingBatch");
}

TrainingSession::~TrainingSession() {
  if (worker_) worker_->requestStop();
  if (thread_) {
    thread_->quit();
    thread_->wait();
    delete worker_;
    delete thread_;
  }
}

QString TrainingSession::defaultRunsFolder() {
  return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/runs";
}

QString TrainingSession::newRunDir(const QString& runsFolder, const sae::RunConfig& config) {
  const QString base = QDir(runsFolder)
                           .filePath(QString::fromStdString(config.effectiveRunName()) + "-" +
                                     QDateTime::currentDateTime().toString("yyyyMMdd-HHmmss"));
  QString dir = base;
  for (int i = 2; QFileInfo::exists(dir); ++i)
    dir = base + "-" + QString::number(i);
  return dir;
}

QString TrainingSession::stateName(State state) {
  switch (state) {
    case State::Idle:
      return "idle";
    case State::Running:
      return "running";
    case State::Paused:
      return "paused";
    case State::Stopping:
      return "stopping";
    case State::Finished:
      return "finished";
    case State::Stopped:
      return "stopped";
    case State::Failed:
      return "failed";
  }
  return {};
}

bool TrainingSession::isActive() const {
  return state_ == State::Running || state_ == State::Paused || state_ == State::Stopping;
}

bool TrainingSession::start(const sae::RunConfig& config, const QString& runDir) {
  if (isActive() || thread_) return false;
  return launch(new TrainingWorker(config, runDir), runDir);
}

bool TrainingSession::resumeRun(const sae::RunConfig& config, const QString& runDir) {
  if (isActive() || thread_) return false;
  return launch(new TrainingWorker(config, runDir, /*resume=*/true), runDir);
}

bool TrainingSession::launch(TrainingWorker* worker, const QString& runDir) {
  runDir_ = runDir;
  lastMessage_.clear();
  batches_ = 0;
  auto* thread = new QThread;
  thread->setObjectName("training");
  worker->moveToThread(thread);
  connect(thread, &QThread::started, worker, &TrainingWorker::run);
  // Both are queued: the worker lives on the training thread, this session on the GUI thread.
  connect(worker, &TrainingWorker::batchReady, this, &TrainingSession::onBatch);
  connect(worker, &TrainingWorker::done, this, &TrainingSession::onDone);
  thread_ = thread;
  worker_ = worker;
  setState(State::Running);
  thread->start();
  return true;
}

void TrainingSession::pause() {
  if (state_ != State::Running || !worker_) return;
  worker_->setPaused(true);
  setState(State::Paused);
}

void TrainingSession::resume() {
  if (state_ != State::Paused || !worker_) return;
  worker_->setPaused(false);
  setState(State::Running);
}

void TrainingSession::stop() {
  if ((state_ != State::Running && state_ != State::Paused) || !worker_) return;
  worker_->requestStop();  // also releases a pause
  setState(State::Stopping);
}

void TrainingSession::onBatch(const TrainingBatch& batch) {
  ++batches_;
  Q_EMIT batchReady(batch);
}

void TrainingSession::onDone(int outcome, const QString& message) {
  // The worker's run() has returned; its thread only has to leave its event loop.
  if (thread_) {
    thread_->quit();
    thread_->wait();
    delete worker_;
    delete thread_;
  }
  const State result = outcome == TrainingWorker::Finished  ? State::Finished
                       : outcome == TrainingWorker::Stopped ? State::Stopped
                                                            : State::Failed;
  lastMessage_ = message;
  setState(result);
  Q_EMIT ended(result, message);
}

void TrainingSession::setState(State state) {
  if (state_ == state) return;
  state_ = state;
  Q_EMIT stateChanged(state);
}
