#include "HistogramView.h"

#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QSlider>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

#include <qcustomplot.h>

#include "PlotExporter.h"

namespace {

const QColor kBarColour(31, 119, 180);
const QColor kFirstColour(255, 127, 14);
const QColor kMarkerColour(200, 30, 30);

QVector<double> centres(const sae::HistogramBins& bins) {
  QVector<double> out;
  for (size_t i = 0; i + 1 < bins.edges.size(); ++i)
    out << 0.5 * (bins.edges[i] + bins.edges[i + 1]);
  return out;
}

QVector<double> countsOf(const sae::HistogramBins& bins) {
  QVector<double> out;
  for (int64_t c : bins.counts)
    out << static_cast<double>(c);
  return out;
}

}  // namespace

HistogramView::HistogramView(const QString& name, const QString& title, const QString& xLabel,
                             const QString& emptyMessage, bool compareWithFirst, QWidget* parent)
    : QWidget(parent),
      name_(name),
      defaultTitle_(title),
      emptyMessage_(emptyMessage),
      compareWithFirst_(compareWithFirst) {
  setObjectName(name);
  plot_ = new QCustomPlot(this);
  plot_->setMinimumSize(320, 220);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot_->axisRect()->setRangeDrag(Qt::Horizontal);
  plot_->axisRect()->setRangeZoom(Qt::Horizontal);
  QFont titleFont = font();
  titleFont.setPointSizeF(10);
  titleFont.setBold(true);
  plot_->plotLayout()->insertRow(0);
  plot_->plotLayout()->addElement(0, 0, new QCPTextElement(plot_, title, titleFont));
  QFont labelFont = font();
  labelFont.setPointSizeF(9);
  QFont tickFont = font();
  tickFont.setPointSizeF(8);
  for (QCPAxis* axis : {plot_->xAxis, plot_->yAxis}) {
    axis->setLabelFont(labelFont);
    axis->setTickLabelFont(tickFont);
  }
  plot_->xAxis->setLabel(xLabel);
  plot_->yAxis->setLabel(tr("count"));
  plot_->legend->setFont(tickFont);
  plot_->legend->setBrush(QColor(255, 255, 255, 210));
  plot_->legend->setVisible(false);

  firstBars_ = new QCPBars(plot_->xAxis, plot_->yAxis);
  firstBars_->setPen(QPen(kFirstColour, 1.2));
  firstBars_->setBrush(Qt::NoBrush);
  firstBars_->setWidthType(QCPBars::wtPlotCoords);
  bars_ = new QCPBars(plot_->xAxis, plot_->yAxis);
  bars_->setPen(QPen(kBarColour.darker(130), 1));
  QColor fill = kBarColour;
  fill.setAlpha(160);
  bars_->setBrush(fill);
  bars_->setWidthType(QCPBars::wtPlotCoords);
  firstBars_->removeFromLegend();

  slider_ = new QSlider(Qt::Horizontal, this);
  slider_->setEnabled(false);
  slider_->setToolTip(tr("Step through the snapshots of this histogram"));
  stepLabel_ = new QLabel(this);
  stepLabel_->setMinimumWidth(150);
  auto* sliderRow = new QHBoxLayout;
  sliderRow->addWidget(new QLabel(tr("Snapshot:"), this));
  sliderRow->addWidget(slider_, 1);
  sliderRow->addWidget(stepLabel_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(plot_, 1);
  layout->addLayout(sliderRow);
  connect(slider_, &QSlider::valueChanged, this, [this](int value) { showSnapshot(value); });

  plot_->setContextMenuPolicy(Qt::CustomContextMenu);
  connect(plot_, &QWidget::customContextMenuRequested, this, [this](const QPoint& pos) {
    QMenu menu(this);
    QAction* exportAction = menu.addAction(tr("Export..."));
    if (menu.exec(plot_->mapToGlobal(pos)) != exportAction) return;
    QString base = name_;
    base.replace(QLatin1Char('/'), QLatin1Char('_'));
    const QString path = QFileDialog::getSaveFileName(
        this, tr("Export histogram"), base + QStringLiteral(".png"),
        tr("PNG image (*.png);;SVG image (*.svg);;PDF document (*.pdf);;CSV data (*.csv)"));
    if (path.isEmpty()) return;
    QString error;
    if (!exportTo(path, &error)) QMessageBox::warning(this, tr("Export failed"), error);
  });
  connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { redraw(); });
  redraw();
}

void HistogramView::addSnapshot(const sae::HistogramEvent& event) {
  const bool atNewest = current_ == static_cast<int>(snapshots_.size()) - 1;
  snapshots_.push_back(event);
  const int last = snapshotCount() - 1;
  const QSignalBlocker block(slider_);
  slider_->setRange(0, last);
  slider_->setEnabled(last > 0);
  if (atNewest) {
    slider_->setValue(last);
    current_ = last;
    redraw();
  } else {
    stepLabel_->setText(tr("step %1 (%2 of %3)")
                            .arg(snapshots_[static_cast<size_t>(current_)].step)
                            .arg(current_ + 1)
                            .arg(snapshotCount()));
  }
}

void HistogramView::clear() {
  snapshots_.clear();
  current_ = -1;
  const QSignalBlocker block(slider_);
  slider_->setRange(0, 0);
  slider_->setEnabled(false);
  redraw();
}

void HistogramView::showSnapshot(int index) {
  if (index < 0 || index >= snapshotCount()) return;
  current_ = index;
  if (slider_->value() != index) {
    const QSignalBlocker block(slider_);
    slider_->setValue(index);
  }
  redraw();
}

QString HistogramView::titleText() const {
  if (current_ < 0) return defaultTitle_;
  const auto& event = snapshots_[static_cast<size_t>(current_)];
  return event.title.empty() ? defaultTitle_ : QString::fromStdString(event.title);
}

void HistogramView::redraw() {
  plot_->clearItems();
  bins_ = {};
  firstBins_ = {};
  bars_->data()->clear();
  firstBars_->data()->clear();
  firstBars_->setVisible(false);
  plot_->legend->setVisible(false);
  if (auto* title = qobject_cast<QCPTextElement*>(plot_->plotLayout()->element(0, 0))) {
    title->setText(titleText());
  }
  const auto message = [this](const QString& text) {
    auto* item = new QCPItemText(plot_);
    item->position->setType(QCPItemPosition::ptAxisRectRatio);
    item->position->setCoords(0.5, 0.5);
    item->setPositionAlignment(Qt::AlignCenter);
    item->setTextAlignment(Qt::AlignCenter);
    item->setColor(QColor(110, 110, 110));
    item->setText(text);
  };
  if (current_ < 0) {
    stepLabel_->setText(tr("no snapshots yet"));
    message(emptyMessage_);
    plot_->xAxis->setRange(0, 1);
    plot_->yAxis->setRange(0, 1);
    plot_->replot(QCustomPlot::rpQueuedReplot);
    return;
  }
  const auto& event = snapshots_[static_cast<size_t>(current_)];
  stepLabel_->setText(
      tr("step %1 (%2 of %3)").arg(event.step).arg(current_ + 1).arg(snapshotCount()));
  const bool compare = compareWithFirst_ && current_ > 0;
  if (compare) {
    // Shared edges: bin both snapshots over the range of both.
    std::vector<double> both = snapshots_.front().values;
    both.insert(both.end(), event.values.begin(), event.values.end());
    const sae::HistogramBins shared = sae::Histogram::autoBins(both);
    if (!shared.edges.empty()) {
      bins_ = sae::Histogram::withEdges(event.values, shared.edges);
      firstBins_ = sae::Histogram::withEdges(snapshots_.front().values, shared.edges);
    }
  } else {
    bins_ = sae::Histogram::autoBins(event.values);
  }
  if (bins_.edges.empty()) {
    message(tr("No finite values in this snapshot (%1 NaN/Inf)").arg(bins_.nonFinite));
    plot_->replot(QCustomPlot::rpQueuedReplot);
    return;
  }
  bars_->setWidth(bins_.binWidth());
  bars_->setData(centres(bins_), countsOf(bins_), true);
  bars_->setName(tr("step %1").arg(event.step));
  double yMax = *std::max_element(bins_.counts.begin(), bins_.counts.end());
  if (compare) {
    firstBars_->setVisible(true);
    firstBars_->setWidth(firstBins_.binWidth());
    firstBars_->setData(centres(firstBins_), countsOf(firstBins_), true);
    firstBars_->setName(tr("step %1 (first)").arg(snapshots_.front().step));
    firstBars_->addToLegend();
    plot_->legend->setVisible(true);
    yMax = std::max<double>(yMax,
                            *std::max_element(firstBins_.counts.begin(), firstBins_.counts.end()));
  } else {
    firstBars_->removeFromLegend();
  }

  double lo = bins_.edges.front(), hi = bins_.edges.back();
  const double span = hi - lo;
  // Markers near the data widen the range to show them; one far away (e.g. the normalisation
  // factor next to norms) would squash the bars, so it is listed in a note instead.
  QStringList offScale;
  std::vector<std::pair<QString, double>> drawn;
  for (const auto& [markerName, value] : event.markers) {
    const QString label =
        QStringLiteral("%1 = %2").arg(QString::fromStdString(markerName)).arg(value, 0, 'g', 5);
    if (std::isfinite(value) && value >= lo - span && value <= hi + span) {
      drawn.emplace_back(label, value);
      lo = std::min(lo, value);
      hi = std::max(hi, value);
    } else {
      offScale << label;
    }
  }
  const double pad = 0.04 * (hi - lo);
  plot_->xAxis->setRange(lo - pad, hi + pad);
  plot_->yAxis->setRange(0, yMax * 1.15 + 1);
  for (size_t i = 0; i < drawn.size(); ++i) {
    auto* line = new QCPItemStraightLine(plot_);
    line->setPen(QPen(kMarkerColour, 1.5, Qt::DashLine));
    for (QCPItemPosition* p : {line->point1, line->point2}) {
      p->setTypeX(QCPItemPosition::ptPlotCoords);
      p->setTypeY(QCPItemPosition::ptAxisRectRatio);
    }
    line->point1->setCoords(drawn[i].second, 0);
    line->point2->setCoords(drawn[i].second, 1);
    auto* text = new QCPItemText(plot_);
    text->position->setTypeX(QCPItemPosition::ptPlotCoords);
    text->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    // Staggered so labels of close markers do not overlap.
    text->position->setCoords(drawn[i].second, 0.03 + 0.09 * static_cast<double>(i));
    const bool rightHalf = drawn[i].second > (lo + hi) / 2;
    text->setPositionAlignment(Qt::AlignTop | (rightHalf ? Qt::AlignRight : Qt::AlignLeft));
    text->setPadding(QMargins(4, 1, 4, 1));
    text->setColor(kMarkerColour);
    text->setBrush(QColor(255, 255, 255, 200));
    text->setText(drawn[i].first);
  }
  QStringList notes = offScale;
  if (bins_.nonFinite > 0) notes << tr("%1 NaN/Inf values left out").arg(bins_.nonFinite);
  if (!notes.isEmpty()) {
    auto* note = new QCPItemText(plot_);
    note->position->setType(QCPItemPosition::ptAxisRectRatio);
    note->position->setCoords(0.99, compare ? 0.25 : 0.03);
    note->setPositionAlignment(Qt::AlignTop | Qt::AlignRight);
    note->setTextAlignment(Qt::AlignRight);
    note->setColor(QColor(90, 90, 90));
    note->setText(notes.join(QLatin1Char('\n')));
  }
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

QByteArray HistogramView::csv() const {
  const bool compare = !firstBins_.counts.empty();
  QByteArray out =
      compare ? "bin_left,bin_right,count,first_count\n" : "bin_left,bin_right,count\n";
  for (size_t i = 0; i < bins_.counts.size(); ++i) {
    out += QByteArray::number(bins_.edges[i], 'g', 17) + ',' +
           QByteArray::number(bins_.edges[i + 1], 'g', 17) + ',' +
           QByteArray::number(static_cast<qlonglong>(bins_.counts[i]));
    if (compare) out += ',' + QByteArray::number(static_cast<qlonglong>(firstBins_.counts[i]));
    out += '\n';
  }
  return out;
}

bool HistogramView::exportTo(const QString& path, QString* error) {
  if (QFileInfo(path).suffix().toLower() == QLatin1String("csv")) {
    return PlotExporter::writeText(path, csv(), error);
  }
  return PlotExporter::writeImage(plot_, path, error);
}
