#include "MetricPlot.h"

#include <QFileDialog>
#include <QMenu>
#include <QMessageBox>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "PlotExporter.h"

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

QString csvField(const QString& text) {
  if (!text.contains(QLatin1Char(',')) && !text.contains(QLatin1Char('"'))) return text;
  QString quoted = text;
  quoted.replace(QLatin1String("\""), QLatin1String("\"\""));
  return QLatin1Char('"') + quoted + QLatin1Char('"');
}

QString number(double v) {
  if (std::isnan(v)) return QStringLiteral("nan");
  return QString::number(v, 'g', 17);
}

}  // namespace

MetricPlot::MetricPlot(const QString& id, const QString& title, const QString& yLabel,
                       const QString& emptyMessage, QWidget* parent)
    : QCustomPlot(parent), id_(id), title_(title), emptyMessage_(emptyMessage) {
  setObjectName(id);
  setMinimumSize(320, 220);
  setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  setNoAntialiasingOnDrag(true);
  // Live curves without antialiasing (cheap replots); exports switch it on.
  setNotAntialiasedElements(QCP::aePlottables);
  setToolTip(
      tr("Wheel: zoom · drag: pan · Ctrl+drag: zoom to a rectangle · double-click: reset "
         "and follow · click a legend entry: hide the curve · right-click: options, "
         "export"));

  QFont titleFont = font();
  titleFont.setPointSizeF(10);
  titleFont.setBold(true);
  plotLayout()->insertRow(0);
  plotLayout()->addElement(0, 0, new QCPTextElement(this, title, titleFont));
  QFont labelFont = font();
  labelFont.setPointSizeF(9);
  QFont tickFont = font();
  tickFont.setPointSizeF(8);
  for (QCPAxis* axis : {xAxis, yAxis}) {
    axis->setLabelFont(labelFont);
    axis->setTickLabelFont(tickFont);
  }
  yAxis->setLabel(yLabel);
  xAxis->setLabel(xLabel());
  xAxis->setNumberFormat(QStringLiteral("gb"));

  legend->setVisible(false);
  legend->setFont(tickFont);
  legend->setBrush(QColor(255, 255, 255, 210));
  legend->setIconSize(20, 8);
  axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);

  // Crosshair and messages on their own buffered layer: moving the cursor redraws only it.
  layer(QStringLiteral("overlay"))->setMode(QCPLayer::lmBuffered);
  message_ = new QCPItemText(this);
  message_->setLayer(QStringLiteral("overlay"));
  message_->position->setType(QCPItemPosition::ptAxisRectRatio);
  message_->position->setCoords(0.5, 0.5);
  message_->setPositionAlignment(Qt::AlignCenter);
  message_->setTextAlignment(Qt::AlignCenter);
  message_->setColor(QColor(110, 110, 110));
  message_->setFont(labelFont);
  message_->setClipToAxisRect(false);
  cursorLine_ = new QCPItemStraightLine(this);
  cursorLine_->setLayer(QStringLiteral("overlay"));
  cursorLine_->setPen(QPen(QColor(90, 90, 90), 1, Qt::DotLine));
  for (QCPItemPosition* p : {cursorLine_->point1, cursorLine_->point2}) {
    p->setTypeX(QCPItemPosition::ptPlotCoords);
    p->setTypeY(QCPItemPosition::ptAxisRectRatio);
  }
  cursorLine_->setVisible(false);
  cursorText_ = new QCPItemText(this);
  cursorText_->setLayer(QStringLiteral("overlay"));
  cursorText_->position->setType(QCPItemPosition::ptAxisRectRatio);
  cursorText_->position->setCoords(0.01, 0.02);
  cursorText_->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
  cursorText_->setTextAlignment(Qt::AlignLeft);
  cursorText_->setFont(tickFont);
  cursorText_->setBrush(QColor(255, 255, 255, 220));
  cursorText_->setPen(QPen(QColor(180, 180, 180)));
  cursorText_->setPadding(QMargins(4, 2, 4, 2));
  cursorText_->setVisible(false);

  // A range change the user made (wheel, drag, rectangle) ends follow-latest.
  const auto userRangeChange = [this](const QCPRange&) {
    if (!settingRange_ && follow_) setFollowLatest(false);
  };
  connect(xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, userRangeChange);
  connect(yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, userRangeChange);
  connect(this, &QCustomPlot::legendClick, this,
          [this](QCPLegend*, QCPAbstractLegendItem* item, QMouseEvent*) {
            auto* plItem = qobject_cast<QCPPlottableLegendItem*>(item);
            if (!plItem) return;
            for (int i = 0; i < seriesCount(); ++i) {
              const Series& s = series_[static_cast<size_t>(i)];
              if (plItem->plottable() == s.raw || plItem->plottable() == s.smooth) {
                setSeriesHidden(i, !s.hidden);
                Q_EMIT settingsChanged();
                return;
              }
            }
          });
  setContextMenuPolicy(Qt::CustomContextMenu);
  connect(this, &QWidget::customContextMenuRequested, this, &MetricPlot::showContextMenu);
  updateMessage();
}

int MetricPlot::addSeries(const QString& label, const QString& run, const QColor& colour,
                          Qt::PenStyle style) {
  Series s;
  s.label = label;
  s.run = run;
  s.colour = colour;
  s.style = style;
  s.ema = plotmath::EmaSmoother(smoothing_);
  s.raw = addGraph();
  s.smooth = addGraph();
  s.raw->setName(label);
  s.smooth->setName(label);
  // QCustomPlot's adaptive sampling keeps spikes (min/max per pixel) on long curves.
  s.raw->setAdaptiveSampling(true);
  s.smooth->setAdaptiveSampling(true);
  series_.push_back(s);
  applyStyles();
  return seriesCount() - 1;
}

QString MetricPlot::seriesLabel(int index) const {
  return series_.at(static_cast<size_t>(index)).label;
}

void MetricPlot::appendPoint(int series, double step, double tokens, double wallSeconds, double y) {
  Series& s = series_.at(static_cast<size_t>(series));
  s.step.push_back(step);
  s.tokens.push_back(tokens);
  s.wall.push_back(wallSeconds);
  s.y.push_back(y);
}

void MetricPlot::clearLive() {
  for (Series& s : series_) {
    if (!s.run.isEmpty()) continue;
    s.step.clear();
    s.tokens.clear();
    s.wall.clear();
    s.y.clear();
  }
  rebuildGraphs();
}

void MetricPlot::removeRun(const QString& run) {
  for (auto it = series_.begin(); it != series_.end();) {
    if (!run.isEmpty() && it->run == run) {
      removeGraph(it->raw);
      removeGraph(it->smooth);
      it = series_.erase(it);
    } else {
      ++it;
    }
  }
  applyStyles();
}

bool MetricPlot::hasData() const {
  return std::any_of(series_.begin(), series_.end(), [](const Series& s) { return !s.y.empty(); });
}

int MetricPlot::pointCount(int series) const {
  return static_cast<int>(series_.at(static_cast<size_t>(series)).y.size());
}

void MetricPlot::setSmoothing(double weight) {
  weight = std::clamp(weight, 0.0, 0.999);
  if (weight == smoothing_) return;
  smoothing_ = weight;
  rebuildGraphs();
  applyStyles();
}

void MetricPlot::setXMode(XAxisMode mode) {
  if (mode == xMode_) return;
  xMode_ = mode;
  xAxis->setLabel(xLabel());
  rebuildGraphs();
  setFollowLatest(true);
}

void MetricPlot::setLogY(bool on) {
  if (on == logY_) return;
  logY_ = on;
  settingRange_ = true;
  if (on) {
    yAxis->setScaleType(QCPAxis::stLogarithmic);
    yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
    yAxis->setNumberFormat(QStringLiteral("eb"));
    yAxis->setNumberPrecision(0);
  } else {
    yAxis->setScaleType(QCPAxis::stLinear);
    yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    yAxis->setNumberFormat(QStringLiteral("gbd"));
    yAxis->setNumberPrecision(6);
  }
  settingRange_ = false;
  rebuildGraphs();  // values <= 0 are left out on a log axis
  if (!follow_) {
    setFollowLatest(true);
  } else {
    refresh();
  }
  Q_EMIT settingsChanged();
}

void MetricPlot::setFollowLatest(bool on) {
  if (on == follow_) return;
  follow_ = on;
  if (on) refresh();
  Q_EMIT followLatestChanged(on);
}

void MetricPlot::setIgnoreOutliers(bool on) {
  if (on == ignoreOutliers_) return;
  ignoreOutliers_ = on;
  refresh();
  Q_EMIT settingsChanged();
}

void MetricPlot::setSeriesHidden(int series, bool hidden) {
  series_.at(static_cast<size_t>(series)).hidden = hidden;
  applyStyles();
  refresh();
}

bool MetricPlot::seriesHidden(int series) const {
  return series_.at(static_cast<size_t>(series)).hidden;
}

void MetricPlot::setEmptyMessage(const QString& message) {
  emptyMessage_ = message;
  updateMessage();
}

QCPGraph* MetricPlot::rawGraph(int series) const {
  return series_.at(static_cast<size_t>(series)).raw;
}

QCPGraph* MetricPlot::smoothedGraph(int series) const {
  return series_.at(static_cast<size_t>(series)).smooth;
}

double MetricPlot::xOf(const Series& s, size_t i) const {
  switch (xMode_) {
    case XAxisMode::Tokens:
      return s.tokens[i];
    case XAxisMode::WallTime:
      return s.wall[i];
    case XAxisMode::Step:
      break;
  }
  return s.step[i];
}

QString MetricPlot::xLabel() const {
  switch (xMode_) {
    case XAxisMode::Tokens:
      return tr("training tokens");
    case XAxisMode::WallTime:
      return tr("wall time (s)");
    case XAxisMode::Step:
      break;
  }
  return tr("step");
}

void MetricPlot::rebuildGraphs() {
  for (Series& s : series_) {
    s.raw->data()->clear();
    s.smooth->data()->clear();
    s.drawn = 0;
    s.ema = plotmath::EmaSmoother(smoothing_);
  }
}

void MetricPlot::applyStyles() {
  legend->clearItems();
  for (Series& s : series_) {
    QColor faint = s.colour;
    faint.setAlpha(60);
    const bool smoothing = smoothing_ > 0;
    s.raw->setPen(QPen(smoothing ? faint : s.colour, 1, s.style));
    s.smooth->setPen(QPen(s.colour, 1.5, s.style));
    s.raw->setVisible(!s.hidden);
    s.smooth->setVisible(!s.hidden && smoothing);
    QCPGraph* main = mainGraph(s);
    main->addToLegend();
    if (auto* item = legend->itemWithPlottable(main)) {
      item->setTextColor(s.hidden ? QColor(170, 170, 170) : QColor(Qt::black));
    }
  }
  updateLegendVisibility();
}

void MetricPlot::updateLegendVisibility() {
  // An empty plot shows its message instead of a legend of empty curves.
  legend->setVisible(series_.size() > 1 && !message_->visible());
}

void MetricPlot::refresh() {
  const bool smoothing = smoothing_ > 0;
  for (Series& s : series_) {
    QVector<QCPGraphData> raw, smooth;
    for (size_t i = s.drawn; i < s.y.size(); ++i) {
      const double x = xOf(s, i);
      const double smoothed = s.ema.add(s.y[i]);
      if (!std::isfinite(x)) continue;
      const auto shown = [&](double v) { return logY_ && !(v > 0) ? kNaN : v; };
      raw.append(QCPGraphData(x, shown(s.y[i])));
      if (smoothing) smooth.append(QCPGraphData(x, shown(smoothed)));
    }
    s.drawn = s.y.size();
    if (!raw.isEmpty()) s.raw->data()->add(raw, false);
    if (!smooth.isEmpty()) s.smooth->data()->add(smooth, false);
  }
  autoscale();
  updateMessage();
  replot(QCustomPlot::rpQueuedReplot);
}

void MetricPlot::setRangesQuietly(const QCPRange& x, const QCPRange& y) {
  settingRange_ = true;
  xAxis->setRange(x);
  yAxis->setRange(y);
  settingRange_ = false;
}

void MetricPlot::autoscale() {
  if (!follow_) return;
  double xLo = std::numeric_limits<double>::infinity(), xHi = -xLo;
  std::vector<double> ys;
  for (const Series& s : series_) {
    if (s.hidden) continue;
    for (auto it = s.raw->data()->constBegin(); it != s.raw->data()->constEnd(); ++it) {
      xLo = std::min(xLo, it->key);
      xHi = std::max(xHi, it->key);
      ys.push_back(it->value);
    }
    if (smoothing_ > 0) {
      for (auto it = s.smooth->data()->constBegin(); it != s.smooth->data()->constEnd(); ++it)
        ys.push_back(it->value);
    }
  }
  if (!(xLo <= xHi)) return;
  if (xLo == xHi) {
    xLo -= 1;
    xHi += 1;
  } else {
    const double pad = 0.01 * (xHi - xLo);
    xLo -= pad;
    xHi += pad;
  }
  double yLo = 0, yHi = 1;
  const double low = ignoreOutliers_ ? 0.01 : 0.0, high = ignoreOutliers_ ? 0.99 : 1.0;
  if (!plotmath::robustRange(ys, logY_, low, high, 0.05, &yLo, &yHi)) {
    yLo = logY_ ? 0.1 : 0;
    yHi = logY_ ? 10 : 1;
  }
  setRangesQuietly(QCPRange(xLo, xHi), QCPRange(yLo, yHi));
}

void MetricPlot::updateMessage() {
  bool drawn = false;
  for (const Series& s : series_)
    drawn = drawn || !s.raw->data()->isEmpty();
  message_->setVisible(!drawn);
  updateLegendVisibility();
  if (drawn) return;
  if (hasData()) {
    message_->setText(tr("No %1 values for these curves\n(older metrics.jsonl files do not "
                         "record wall time)")
                          .arg(xLabel()));
  } else {
    message_->setText(emptyMessage_);
  }
}

void MetricPlot::mousePressEvent(QMouseEvent* event) {
  // Ctrl+drag draws a zoom rectangle; a plain drag pans.
  setSelectionRectMode((event->modifiers() & Qt::ControlModifier) ? QCP::srmZoom : QCP::srmNone);
  QCustomPlot::mousePressEvent(event);
}

void MetricPlot::mouseMoveEvent(QMouseEvent* event) {
  QCustomPlot::mouseMoveEvent(event);
  const QPointF pos = event->position();
  if (event->buttons() == Qt::NoButton && axisRect()->rect().contains(pos.toPoint())) {
    updateCrosshair(xAxis->pixelToCoord(pos.x()));
  } else if (cursorLine_->visible()) {
    cursorLine_->setVisible(false);
    cursorText_->setVisible(false);
    layer(QStringLiteral("overlay"))->replot();
  }
}

void MetricPlot::mouseDoubleClickEvent(QMouseEvent* event) {
  QCustomPlot::mouseDoubleClickEvent(event);
  if (follow_) {
    refresh();
  } else {
    setFollowLatest(true);
  }
}

void MetricPlot::leaveEvent(QEvent* event) {
  QCustomPlot::leaveEvent(event);
  cursorLine_->setVisible(false);
  cursorText_->setVisible(false);
  layer(QStringLiteral("overlay"))->replot();
}

void MetricPlot::updateCrosshair(double x) {
  QStringList lines;
  lines << QStringLiteral("%1: %2").arg(xLabel(), QString::number(x, 'g', 6));
  for (const Series& s : series_) {
    if (s.hidden) continue;
    const QCPGraph* graph = mainGraph(s);
    const auto data = graph->data();
    if (data->isEmpty()) continue;
    // The point nearest to x.
    auto it = data->findBegin(x, false);
    if (it == data->constEnd()) --it;
    if (it != data->constBegin()) {
      auto before = it - 1;
      if (std::fabs(before->key - x) < std::fabs(it->key - x)) it = before;
    }
    lines << QStringLiteral("%1: %2").arg(s.label, QString::number(it->value, 'g', 5));
  }
  cursorLine_->point1->setCoords(x, 0);
  cursorLine_->point2->setCoords(x, 1);
  cursorLine_->setVisible(true);
  cursorText_->setText(lines.join(QLatin1Char('\n')));
  cursorText_->setVisible(series_.size() > 0);
  layer(QStringLiteral("overlay"))->replot();
}

void MetricPlot::showContextMenu(const QPoint& pos) {
  QMenu menu(this);
  QAction* follow = menu.addAction(tr("Follow latest"));
  follow->setCheckable(true);
  follow->setChecked(follow_);
  QAction* log = menu.addAction(tr("Log y axis"));
  log->setCheckable(true);
  log->setChecked(logY_);
  QAction* outliers = menu.addAction(tr("Autoscale ignores outliers (1st-99th percentile)"));
  outliers->setCheckable(true);
  outliers->setChecked(ignoreOutliers_);
  QAction* reset = menu.addAction(tr("Reset view"));
  menu.addSeparator();
  QAction* exportAction = menu.addAction(tr("Export..."));
  QAction* chosen = menu.exec(mapToGlobal(pos));
  if (chosen == follow) {
    setFollowLatest(follow->isChecked());
  } else if (chosen == log) {
    setLogY(log->isChecked());
  } else if (chosen == outliers) {
    setIgnoreOutliers(outliers->isChecked());
  } else if (chosen == reset) {
    setFollowLatest(true);
    refresh();
  } else if (chosen == exportAction) {
    const QString path = QFileDialog::getSaveFileName(
        this, tr("Export %1").arg(title_), id_ + QStringLiteral(".png"),
        tr("PNG image (*.png);;SVG image (*.svg);;PDF document (*.pdf);;CSV data (*.csv)"));
    if (path.isEmpty()) return;
    QString error;
    if (!exportTo(path, &error)) QMessageBox::warning(this, tr("Export failed"), error);
  }
}

QByteArray MetricPlot::csv() const {
  const bool smoothing = smoothing_ > 0;
  const size_t columnsPerSeries = smoothing ? 2 : 1;
  std::map<double, std::vector<QString>> rows;
  const size_t width = series_.size() * columnsPerSeries;
  for (size_t k = 0; k < series_.size(); ++k) {
    const Series& s = series_[k];
    const std::vector<double> smoothed = plotmath::emaSmooth(s.y, smoothing_);
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double x = xOf(s, i);
      if (!std::isfinite(x)) continue;
      auto& row = rows[x];
      if (row.empty()) row.resize(width);
      row[k * columnsPerSeries] = number(s.y[i]);
      if (smoothing) row[k * columnsPerSeries + 1] = number(smoothed[i]);
    }
  }
  QStringList header;
  switch (xMode_) {
    case XAxisMode::Tokens:
      header << QStringLiteral("n_training_tokens");
      break;
    case XAxisMode::WallTime:
      header << QStringLiteral("wall_seconds");
      break;
    case XAxisMode::Step:
      header << QStringLiteral("step");
      break;
  }
  for (const Series& s : series_) {
    header << csvField(s.label);
    if (smoothing) header << csvField(s.label + QStringLiteral(" (smoothed)"));
  }
  QByteArray out = header.join(QLatin1Char(',')).toUtf8() + '\n';
  for (const auto& [x, cells] : rows) {
    QStringList line;
    line << number(x);
    for (const QString& c : cells)
      line << c;
    out += line.join(QLatin1Char(',')).toUtf8() + '\n';
  }
  return out;
}

bool MetricPlot::exportTo(const QString& path, QString* error) {
  if (QFileInfo(path).suffix().toLower() == QLatin1String("csv")) {
    return PlotExporter::writeText(path, csv(), error);
  }
  refresh();
  const bool cursor = cursorLine_->visible();
  cursorLine_->setVisible(false);
  cursorText_->setVisible(false);
  setNotAntialiasedElements(QCP::aeNone);
  setAntialiasedElements(QCP::aeAll);
  const bool ok = PlotExporter::writeImage(this, path, error);
  setAntialiasedElements(QCP::aeNone);
  setNotAntialiasedElements(QCP::aePlottables);
  cursorLine_->setVisible(cursor);
  cursorText_->setVisible(cursor);
  return ok;
}
