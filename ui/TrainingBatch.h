#pragma once
// What the training thread hands the GUI thread in one queued signal: everything the trainer
// reported since the previous batch. Plain values only (no tensors, no pointers into the run).
#include <QMetaType>
#include <QStringList>

#include <vector>

#include "train/TrainingEvents.h"

struct TrainingBatch {
  std::vector<sae::MetricsEvent> metrics;
  std::vector<sae::HistogramEvent> histograms;
  QStringList messages;
  QStringList checkpoints;
  bool hasProgress = false;
  sae::ProgressEvent progress;  // the latest one; earlier ones are superseded

  bool empty() const {
    return metrics.empty() && histograms.empty() && messages.isEmpty() && checkpoints.isEmpty() &&
           !hasProgress;
  }
};

Q_DECLARE_METATYPE(TrainingBatch)
