#include "HeadlessRunner.h"

#include <QEventLoop>
#include <QTimer>

#include <csignal>

#include "PlotDashboard.h"

namespace {

volatile std::sig_atomic_t gInterrupted = 0;
void onSignal(int) {
  gInterrupted = 1;
}

}  // namespace

HeadlessRunner::HeadlessRunner(const sae::RunConfig& config, const QString& runsFolder,
                               std::FILE* out, std::FILE* err, QObject* parent)
    : QObject(parent),
      config_(config),
      runDir_(TrainingSession::newRunDir(runsFolder, config)),
      out_(out),
      err_(err),
      session_(new TrainingSession(this)),
      dashboard_(new PlotDashboard) {
  // Laid out and rendered, never shown: exports need a sized widget, not a window.
  dashboard_->setAttribute(Qt::WA_DontShowOnScreen);
  dashboard_->resize(1600, 1000);
  connect(session_, &TrainingSession::batchReady, this, &HeadlessRunner::onBatch);
}

HeadlessRunner::~HeadlessRunner() {
  delete dashboard_;
}

int HeadlessRunner::exec() {
  dashboard_->clearRun();
  dashboard_->setSchedulePreview(config_);
  QEventLoop loop;
  connect(session_, &TrainingSession::ended, &loop, &QEventLoop::quit);
  // Ctrl-C becomes a stop request: the step finishes and a checkpoint is written.
  gInterrupted = 0;
  auto previousInt = std::signal(SIGINT, onSignal);
  auto previousTerm = std::signal(SIGTERM, onSignal);
  QTimer interruptPoll;
  connect(&interruptPoll, &QTimer::timeout, this, [this] {
    if (gInterrupted && session_->isActive()) session_->stop();
  });
  interruptPoll.start(100);
  if (!session_->start(config_, runDir_)) {
    std::fprintf(err_, "sae-workbench: could not start training\n");
    return 1;
  }
  loop.exec();
  interruptPoll.stop();
  std::signal(SIGINT, previousInt);
  std::signal(SIGTERM, previousTerm);

  const TrainingSession::State outcome = session_->state();
  if (hasProgress_) printProgress(lastProgress_);
  if (outcome == TrainingSession::State::Failed) {
    std::fprintf(err_, "sae-workbench: training failed: %s\n", qPrintable(session_->lastMessage()));
    return 1;
  }
  std::fprintf(out_, "%s\n", qPrintable(session_->lastMessage()));
  dashboard_->show();  // offscreen/not on screen: lays the plots out for rendering
  const QString plotsDir = runDir_ + "/plots";
  QString error;
  const QStringList files = dashboard_->exportAll(plotsDir, &error);
  if (!error.isEmpty() || files.isEmpty()) {
    std::fprintf(err_, "sae-workbench: could not export the plots into %s: %s\n",
                 qPrintable(plotsDir), qPrintable(error.isEmpty() ? "no files written" : error));
    std::fprintf(out_, "Run folder: %s\n", qPrintable(runDir_));
    return 1;
  }
  std::fprintf(out_, "Plots written: %lld files in %s\n", static_cast<long long>(files.size()),
               qPrintable(plotsDir));
  std::fprintf(out_, "Run folder: %s\n", qPrintable(runDir_));
  std::fflush(out_);
  return outcome == TrainingSession::State::Stopped ? 130 : 0;
}

void HeadlessRunner::onBatch(const TrainingBatch& batch) {
  for (const QString& line : batch.messages)
    std::fprintf(out_, "%s\n", qPrintable(line));
  for (const auto& event : batch.metrics)
    dashboard_->addMetrics(event);
  for (const auto& event : batch.histograms)
    dashboard_->addHistogram(event);
  if (batch.hasProgress) {
    lastProgress_ = batch.progress;
    hasProgress_ = true;
    // One line every two seconds: a log file, not a terminal animation.
    if (batch.progress.elapsed_seconds - lastPrintSeconds_ >= 2.0) printProgress(batch.progress);
  }
  std::fflush(out_);
}

void HeadlessRunner::printProgress(const sae::ProgressEvent& p) {
  lastPrintSeconds_ = p.elapsed_seconds;
  const double percent = p.tokens_total > 0 ? 100.0 * p.tokens_done / p.tokens_total : 0.0;
  const double remaining =
      p.tokens_per_second > 0 ? (p.tokens_total - p.tokens_done) / p.tokens_per_second : 0.0;
  std::fprintf(out_,
               "%lld| MSE Loss %.3f | L1 %.3f: %3.0f%% | %lld/%lld tokens [%.0fs<%.0fs, %.2f "
               "tokens/s]\n",
               static_cast<long long>(p.step), p.mse_loss, p.l1_loss, percent,
               static_cast<long long>(p.tokens_done), static_cast<long long>(p.tokens_total),
               p.elapsed_seconds, remaining, p.tokens_per_second);
}
