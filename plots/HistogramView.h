#pragma once
// One histogram name (e.g. "weights/W_dec_norms") with every snapshot that arrived: bars binned
// by core/analysis/Histogram (numpy's equal-width bins, automatic bin count), the snapshot's
// markers as labelled vertical lines, its title, and a slider to step through the snapshots.
// With compareWithFirst, a later snapshot is drawn over the first one (e.g. the decoder norms
// now over those at initialisation), both binned on shared edges.
#include <QString>
#include <QWidget>
#include <vector>

#include "analysis/Histogram.h"
#include "train/TrainingEvents.h"

class QCustomPlot;
class QCPBars;
class QLabel;
class QSlider;

class HistogramView : public QWidget {
  Q_OBJECT

 public:
  HistogramView(const QString& name, const QString& title, const QString& xLabel,
                const QString& emptyMessage, bool compareWithFirst, QWidget* parent = nullptr);

  const QString& name() const { return name_; }
  // Keeps the slider on the newest snapshot while it was there.
  void addSnapshot(const sae::HistogramEvent& event);
  void clear();
  int snapshotCount() const { return static_cast<int>(snapshots_.size()); }
  int currentIndex() const { return current_; }
  void showSnapshot(int index);
  bool hasData() const { return !snapshots_.empty(); }

  // What is drawn now (tests compare these with the core's bins).
  const sae::HistogramBins& currentBins() const { return bins_; }
  const sae::HistogramBins& firstBins() const { return firstBins_; }  // empty unless compared
  QCPBars* bars() const { return bars_; }
  QCustomPlot* plot() const { return plot_; }
  QString titleText() const;

  // Bins of the shown snapshot: bin_left,bin_right,count (and first_count when compared).
  QByteArray csv() const;
  bool exportTo(const QString& path, QString* error);

 private:
  void redraw();
  QString name_, defaultTitle_, emptyMessage_;
  bool compareWithFirst_;
  std::vector<sae::HistogramEvent> snapshots_;
  int current_ = -1;
  sae::HistogramBins bins_, firstBins_;
  QCustomPlot* plot_;
  QCPBars* bars_;
  QCPBars* firstBars_;
  QSlider* slider_;
  QLabel* stepLabel_;
};
