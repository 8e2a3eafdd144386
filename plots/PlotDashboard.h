#pragma once
// Every plot of a run in one widget: live metric curves, schedule previews, histograms, overlays
// of earlier runs, and their export. The main window and the headless mode both use it.
#include <QByteArray>
#include <QString>
#include <QStringList>
#include <QWidget>

#include "config/RunConfig.h"
#include "train/TrainingEvents.h"

class MetricPlot;
class HistogramView;
enum class XAxisMode;

class PlotDashboard : public QWidget {
  Q_OBJECT

 public:
  explicit PlotDashboard(QWidget* parent = nullptr);
  ~PlotDashboard() override;

  // A new live run starts: clears the live curves and histograms (overlays stay).
  void clearRun();
  // Live data, on the GUI thread. Replots are coalesced (at most ~20 per second).
  void addMetrics(const sae::MetricsEvent& event);
  void addHistogram(const sae::HistogramEvent& event);
  // The L1-coefficient and learning-rate schedules over all steps of this config, computed with
  // the core's own schedulers; called whenever the form changes.
  void setSchedulePreview(const sae::RunConfig& config);
  // Draws the curves of a finished or running run folder (its metrics.jsonl) beside the live run.
  bool overlayRun(const QString& runDir, QString* error);
  // Removes the curves overlayRun drew for runDir (same folder name); false when none were
  // shown. The run keeps its colour should it be overlaid again.
  bool removeOverlay(const QString& runDir);
  // Writes every plot and histogram as PNG, SVG, PDF and CSV into dir; returns the files written.
  QStringList exportAll(const QString& dir, QString* error);
  // Which plots show and how they are arranged, for QSettings.
  QByteArray saveLayout() const;
  bool restoreLayout(const QByteArray& state);

  // ---- finer control (toolbar actions, tests)
  // Metric plot ids in grid order: mse_loss, l1_loss, overall_loss, ce_loss_score, ce_losses,
  // l1_coefficient, learning_rate, l0, explained_variance, dead_features, tokens_per_second.
  QStringList metricPlotIds() const;
  MetricPlot* metricPlot(const QString& id) const;
  // "schedule_l1_coefficient" or "schedule_learning_rate".
  MetricPlot* schedulePlot(const QString& id) const;
  // A histogram name, e.g. "weights/W_dec_norms"; null when none of that name exists.
  HistogramView* histogramView(const QString& name) const;
  QStringList histogramNames() const;
  void setPlotVisible(const QString& id, bool visible);
  bool isPlotVisible(const QString& id) const;
  void setSmoothing(double weight);  // TensorBoard's slider, 0 .. 0.999, on every metric plot
  double smoothing() const;
  void setXAxisMode(XAxisMode mode);
  // Pushes pending points into the plots now instead of at the next coalesced replot.
  void flush();

 protected:
  void resizeEvent(QResizeEvent* event) override;

 private:
  struct Private;
  Private* d_;
};
