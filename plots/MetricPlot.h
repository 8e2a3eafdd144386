#pragma once
// One live metric plot: curves of the live run and of overlaid runs, against step, tokens or
// wall time, with the interactions of workbench-ux.md's checklist:
//  - wheel zoom, drag pan, Ctrl+drag rectangle zoom, double-click resets the view;
//  - follow-latest (autoscale to all data) that turns off when the user zooms or pans;
//  - TensorBoard's debiased EMA smoothing with the raw curve drawn faintly behind;
//  - log y; a crosshair that lists every curve's value under the cursor; legend click hides a
//    curve; autoscale that ignores outliers (1st-99th percentile plus a margin);
//  - a context menu with these switches and "Export...".
// Points are stored here and pushed into the graphs by refresh(), which the dashboard calls
// from its coalescing timer; refresh() asks for a queued replot.
#include <QColor>
#include <QString>
#include <vector>

#include <qcustomplot.h>

#include "PlotMath.h"

enum class XAxisMode { Step, Tokens, WallTime };

class MetricPlot : public QCustomPlot {
  Q_OBJECT

 public:
  MetricPlot(const QString& id, const QString& title, const QString& yLabel,
             const QString& emptyMessage, QWidget* parent = nullptr);

  const QString& id() const { return id_; }
  const QString& plotTitle() const { return title_; }

  // A curve; `run` is empty for the live run. Returns its index.
  int addSeries(const QString& label, const QString& run, const QColor& colour,
                Qt::PenStyle style = Qt::SolidLine);
  int seriesCount() const { return static_cast<int>(series_.size()); }
  QString seriesLabel(int index) const;
  // NaN x values (e.g. no wall time in an old metrics.jsonl) leave the point out of that x mode.
  void appendPoint(int series, double step, double tokens, double wallSeconds, double y);
  // Removes the points of the live run's curves (a new run starts); overlays stay.
  void clearLive();
  // Removes every curve of an overlaid run.
  void removeRun(const QString& run);
  bool hasData() const;
  int pointCount(int series) const;

  void setSmoothing(double weight);  // 0 .. 0.999
  double smoothing() const { return smoothing_; }
  void setXMode(XAxisMode mode);
  XAxisMode xMode() const { return xMode_; }
  void setLogY(bool on);
  bool logY() const { return logY_; }
  void setFollowLatest(bool on);
  bool followLatest() const { return follow_; }
  void setIgnoreOutliers(bool on);
  bool ignoreOutliers() const { return ignoreOutliers_; }
  void setSeriesHidden(int series, bool hidden);
  bool seriesHidden(int series) const;
  void setEmptyMessage(const QString& message);
  QString emptyMessage() const { return emptyMessage_; }

  // Pushes new points into the graphs, autoscales when following, and queues a replot.
  void refresh();
  // The graphs of a curve, for tests: the raw curve and its smoothed twin.
  QCPGraph* rawGraph(int series) const;
  QCPGraph* smoothedGraph(int series) const;

  // x (in the current mode) and every curve's raw values, plus "<label> (smoothed)" columns
  // while smoothing is on; one row per distinct x, empty cells where a curve has no point.
  QByteArray csv() const;
  // .png/.svg/.pdf/.csv by suffix, written atomically.
  bool exportTo(const QString& path, QString* error);

 Q_SIGNALS:
  void followLatestChanged(bool on);
  void settingsChanged();  // log-y, outliers, hidden curves: for the remembered layout

 protected:
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void mouseDoubleClickEvent(QMouseEvent* event) override;
  void leaveEvent(QEvent* event) override;

 private:
  struct Series {
    QString label;
    QString run;
    QColor colour;
    Qt::PenStyle style = Qt::SolidLine;
    std::vector<double> step, tokens, wall, y;
    size_t drawn = 0;  // points already in the graphs
    plotmath::EmaSmoother ema;
    QCPGraph* raw = nullptr;
    QCPGraph* smooth = nullptr;
    bool hidden = false;
  };
  double xOf(const Series& s, size_t i) const;
  void rebuildGraphs();
  void applyStyles();
  void autoscale();
  void setRangesQuietly(const QCPRange& x, const QCPRange& y);
  void updateMessage();
  void updateLegendVisibility();
  void updateCrosshair(double x);
  void showContextMenu(const QPoint& pos);
  QString xLabel() const;
  QCPGraph* mainGraph(const Series& s) const { return smoothing_ > 0 ? s.smooth : s.raw; }

  QString id_, title_, emptyMessage_;
  std::vector<Series> series_;
  double smoothing_ = 0.0;
  XAxisMode xMode_ = XAxisMode::Step;
  bool logY_ = false;
  bool follow_ = true;
  bool ignoreOutliers_ = true;
  bool settingRange_ = false;
  QCPItemText* message_ = nullptr;
  QCPItemStraightLine* cursorLine_ = nullptr;
  QCPItemText* cursorText_ = nullptr;
};
