#pragma once
// `sae-workbench --headless`: the same TrainingSession and PlotDashboard as the window, without
// showing either. Prints progress lines like sae-train, then writes every plot into <run>/plots.
#include <QObject>
#include <QString>

#include <cstdio>

#include "TrainingBatch.h"
#include "TrainingSession.h"
#include "config/RunConfig.h"

class PlotDashboard;

class HeadlessRunner : public QObject {
  Q_OBJECT

 public:
  HeadlessRunner(const sae::RunConfig& config, const QString& runsFolder, std::FILE* out = stdout,
                 std::FILE* err = stderr, QObject* parent = nullptr);
  ~HeadlessRunner() override;

  // Trains and exports; returns the exit code: 0 done, 1 training or export failed, 130 stopped
  // by SIGINT/SIGTERM (checkpoint saved, plots still written).
  int exec();
  QString runDir() const { return runDir_; }

 private:
  void onBatch(const TrainingBatch& batch);
  void printProgress(const sae::ProgressEvent& p);

  sae::RunConfig config_;
  QString runDir_;
  std::FILE* out_;
  std::FILE* err_;
  TrainingSession* session_;
  PlotDashboard* dashboard_;
  double lastPrintSeconds_ = -1e9;
  sae::ProgressEvent lastProgress_;
  bool hasProgress_ = false;
};
