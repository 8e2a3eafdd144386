#include "PlotDashboard.h"

#include <QComboBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QPushButton>
#include <QResizeEvent>
#include <QScrollArea>
#include <QSlider>
#include <QTabWidget>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

#include "HistogramView.h"
#include "MetricPlot.h"
#include "analysis/MetricsJsonlReader.h"
#include "train/L1Scheduler.h"
#include "train/LrScheduler.h"

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Not a logged metric: tokens per second between consecutive logged steps.
const std::string kTokensPerSecond = "__tokens_per_second";

struct SeriesSpec {
  std::string key;
  QString label;
};

struct PlotSpec {
  QString id, title, yLabel;
  std::vector<SeriesSpec> series;
  QString emptyMessage;
};

std::vector<PlotSpec> plotSpecs() {
  const QString waiting = QObject::tr(
      "No data yet: curves start with the first logged step\n"
      "(every wandb_log_frequency steps)");
  const QString ce = QObject::tr(
      "No CE evaluation yet: CE evals need a language-model run\n"
      "(synthetic and cached activations have no model to splice into)");
  return {
      {"mse_loss", QObject::tr("MSE loss"), "MSE", {{"losses/mse_loss", "MSE"}}, waiting},
      {"l1_loss", QObject::tr("L1 loss (unscaled)"), "L1", {{"losses/l1_loss", "L1"}}, waiting},
      {"overall_loss",
       QObject::tr("Overall loss"),
       "loss",
       {{"losses/overall_loss", "overall"}},
       waiting},
      {"ce_loss_score",
       QObject::tr("CE loss score"),
       "score",
       {{"metrics/CE_loss_score", "CE loss score"}},
       ce},
      {"ce_losses",
       QObject::tr("CE loss: with SAE / without / with ablation"),
       "CE loss (nats)",
       {{"metrics/ce_loss_with_sae", "with SAE"},
        {"metrics/ce_loss_without_sae", "without SAE"},
        {"metrics/ce_loss_with_ablation", "with ablation"}},
       ce},
      {"l1_coefficient",
       QObject::tr("L1 coefficient"),
       "coefficient",
       {{"details/current_l1_coefficient", "L1 coefficient"}},
       waiting},
      {"learning_rate",
       QObject::tr("Learning rate"),
       "lr",
       {{"details/current_learning_rate", "learning rate"}},
       waiting},
      {"l0", QObject::tr("L0 (active features per token)"), "L0", {{"metrics/l0", "L0"}}, waiting},
      {"explained_variance",
       QObject::tr("Explained variance"),
       "fraction",
       {{"metrics/explained_variance", "explained variance"}},
       waiting},
      {"dead_features",
       QObject::tr("Dead features"),
       "features",
       {{"sparsity/dead_features", "dead features"}},
       waiting},
      {"tokens_per_second",
       QObject::tr("Throughput"),
       "tokens/s",
       {{kTokensPerSecond, "tokens/s"}},
       QObject::tr("No data yet: needs two logged steps")},
  };
}

struct HistogramSpec {
  QString name, title, xLabel, emptyMessage;
  bool compareWithFirst;
};

std::vector<HistogramSpec> histogramSpecs() {
  return {
      {"weights/W_dec_norms", QObject::tr("Decoder row norms (W_dec)"), QObject::tr("row norm"),
       QObject::tr("Arrives when training starts, then at every feature-sampling window"), true},
      {"plots/feature_density_line_chart", QObject::tr("log10 feature density"),
       QObject::tr("log10(feature density)"),
       QObject::tr("Arrives at the first feature-sampling window\n(every feature_sampling_window "
                   "steps)"),
       false},
      {"activations/buffer_norms", QObject::tr("Activation norms of one buffer"),
       QObject::tr("activation norm"),
       QObject::tr("Arrives with the data inspection before training"), false},
      {"activations/buffer_norm_means", QObject::tr("Buffer norm means over 10 buffers"),
       QObject::tr("mean activation norm of a buffer"),
       QObject::tr("Arrives with the data inspection before training"), false},
      {"weights/W_dec_norms_init", QObject::tr("Decoder row norms at initialisation"),
       QObject::tr("row norm"), QObject::tr("Arrives with the data inspection before training"),
       false},
  };
}

const QColor kLiveColour(31, 119, 180);
const QColor kRunColours[] = {QColor(214, 39, 40),  QColor(44, 160, 44),   QColor(148, 103, 189),
                              QColor(140, 86, 75),  QColor(227, 119, 194), QColor(127, 127, 127),
                              QColor(188, 189, 34), QColor(23, 190, 207),  QColor(255, 127, 14)};
const Qt::PenStyle kSeriesStyles[] = {Qt::SolidLine, Qt::DashLine, Qt::DotLine, Qt::DashDotLine};

QString xModeName(XAxisMode mode) {
  switch (mode) {
    case XAxisMode::Tokens:
      return QStringLiteral("tokens");
    case XAxisMode::WallTime:
      return QStringLiteral("wall");
    case XAxisMode::Step:
      break;
  }
  return QStringLiteral("step");
}

QString fileBase(const QString& name) {
  QString base = name;
  for (QChar& c : base) {
    if (!c.isLetterOrNumber() && c != QLatin1Char('_') && c != QLatin1Char('-')) {
      c = QLatin1Char('_');
    }
  }
  return base;
}

}  // namespace

struct PlotDashboard::Private {
  struct Binding {
    MetricPlot* plot;
    int series;
  };

  QTabWidget* tabs = nullptr;
  QScrollArea* scroll = nullptr;
  QWidget* grid = nullptr;
  QGridLayout* gridLayout = nullptr;
  int columns = 0;
  std::vector<PlotSpec> specs;
  std::vector<MetricPlot*> plots;
  std::map<QString, bool> visible;
  std::map<QString, QAction*> visibilityActions;
  std::map<std::string, std::vector<Binding>> liveBindings;
  QComboBox* xMode = nullptr;
  QSlider* smoothing = nullptr;
  QLabel* smoothingLabel = nullptr;
  QTimer replotTimer;
  std::set<MetricPlot*> dirty;
  double lastTokens = kNaN, lastWall = kNaN;
  std::vector<QString> overlayRuns;

  MetricPlot* l1Schedule = nullptr;
  MetricPlot* lrSchedule = nullptr;

  QGridLayout* histogramLayout = nullptr;
  std::vector<HistogramView*> histograms;

  MetricPlot* plot(const QString& id) const {
    for (MetricPlot* p : plots)
      if (p->id() == id) return p;
    return nullptr;
  }
};

PlotDashboard::PlotDashboard(QWidget* parent) : QWidget(parent), d_(new Private) {
  d_->tabs = new QTabWidget(this);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  layout->addWidget(d_->tabs);

  // ---- Metrics tab: toolbar and grid.
  auto* metricsTab = new QWidget(this);
  auto* metricsLayout = new QVBoxLayout(metricsTab);
  auto* toolbar = new QHBoxLayout;
  auto* plotsButton = new QToolButton(metricsTab);
  plotsButton->setText(tr("Plots"));
  plotsButton->setToolTip(tr("Choose which plots show"));
  plotsButton->setPopupMode(QToolButton::InstantPopup);
  auto* plotsMenu = new QMenu(plotsButton);
  plotsButton->setMenu(plotsMenu);
  toolbar->addWidget(plotsButton);
  toolbar->addWidget(new QLabel(tr("x axis:"), metricsTab));
  d_->xMode = new QComboBox(metricsTab);
  d_->xMode->addItem(tr("Step"), static_cast<int>(XAxisMode::Step));
  d_->xMode->addItem(tr("Tokens"), static_cast<int>(XAxisMode::Tokens));
  d_->xMode->addItem(tr("Wall time"), static_cast<int>(XAxisMode::WallTime));
  toolbar->addWidget(d_->xMode);
  toolbar->addSpacing(12);
  toolbar->addWidget(new QLabel(tr("Smoothing:"), metricsTab));
  d_->smoothing = new QSlider(Qt::Horizontal, metricsTab);
  d_->smoothing->setRange(0, 999);
  d_->smoothing->setMaximumWidth(180);
  d_->smoothing->setToolTip(
      tr("TensorBoard's debiased exponential moving average; the raw curve stays faint behind"));
  toolbar->addWidget(d_->smoothing);
  d_->smoothingLabel = new QLabel(QStringLiteral("0.000"), metricsTab);
  d_->smoothingLabel->setMinimumWidth(40);
  toolbar->addWidget(d_->smoothingLabel);
  toolbar->addSpacing(12);
  auto* followButton = new QPushButton(tr("Follow latest"), metricsTab);
  followButton->setToolTip(tr("Autoscale every plot to all its data again"));
  toolbar->addWidget(followButton);
  auto* overlayButton = new QPushButton(tr("Overlay run..."), metricsTab);
  overlayButton->setToolTip(
      tr("Draw the curves of a run folder (its metrics.jsonl) beside "
         "the live run"));
  toolbar->addWidget(overlayButton);
  auto* exportButton = new QPushButton(tr("Export all..."), metricsTab);
  exportButton->setToolTip(tr("Write every plot and histogram as PNG, SVG, PDF and CSV"));
  toolbar->addWidget(exportButton);
  toolbar->addStretch(1);
  metricsLayout->addLayout(toolbar);
  d_->scroll = new QScrollArea(metricsTab);
  d_->scroll->setWidgetResizable(true);
  d_->scroll->setFrameShape(QFrame::NoFrame);
  d_->grid = new QWidget(d_->scroll);
  d_->gridLayout = new QGridLayout(d_->grid);
  d_->scroll->setWidget(d_->grid);
  metricsLayout->addWidget(d_->scroll, 1);
  d_->tabs->addTab(metricsTab, tr("Metrics"));

  d_->specs = plotSpecs();
  for (const PlotSpec& spec : d_->specs) {
    auto* plot = new MetricPlot(spec.id, spec.title, spec.yLabel, spec.emptyMessage, d_->grid);
    for (size_t i = 0; i < spec.series.size(); ++i) {
      const int index = plot->addSeries(spec.series[i].label, QString(), kLiveColour,
                                        kSeriesStyles[i % std::size(kSeriesStyles)]);
      d_->liveBindings[spec.series[i].key].push_back({plot, index});
    }
    d_->plots.push_back(plot);
    d_->visible[spec.id] = true;
    QAction* action = plotsMenu->addAction(spec.title);
    action->setCheckable(true);
    action->setChecked(true);
    d_->visibilityActions[spec.id] = action;
    connect(action, &QAction::toggled, this,
            [this, id = spec.id](bool on) { setPlotVisible(id, on); });
  }

  connect(d_->xMode, qOverload<int>(&QComboBox::currentIndexChanged), this,
          [this](int) { setXAxisMode(static_cast<XAxisMode>(d_->xMode->currentData().toInt())); });
  connect(d_->smoothing, &QSlider::valueChanged, this,
          [this](int value) { setSmoothing(value / 1000.0); });
  connect(followButton, &QPushButton::clicked, this, [this] {
    for (MetricPlot* p : d_->plots)
      p->setFollowLatest(true);
  });
  connect(overlayButton, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Overlay a run folder"));
    if (dir.isEmpty()) return;
    QString error;
    if (!overlayRun(dir, &error)) QMessageBox::warning(this, tr("Cannot overlay the run"), error);
  });
  connect(exportButton, &QPushButton::clicked, this, [this] {
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Export all plots into"));
    if (dir.isEmpty()) return;
    QString error;
    const QStringList files = exportAll(dir, &error);
    if (!error.isEmpty()) {
      QMessageBox::warning(this, tr("Export failed"), error);
    } else {
      QMessageBox::information(this, tr("Export all"),
                               tr("Wrote %1 files into %2").arg(files.size()).arg(dir));
    }
  });

  d_->replotTimer.setSingleShot(true);
  d_->replotTimer.setInterval(50);  // at most ~20 replots a second
  connect(&d_->replotTimer, &QTimer::timeout, this, [this] { flush(); });

  // ---- Schedules tab.
  auto* schedulesTab = new QWidget(this);
  auto* schedulesLayout = new QVBoxLayout(schedulesTab);
  d_->l1Schedule = new MetricPlot(
      QStringLiteral("schedule_l1_coefficient"), tr("L1 coefficient schedule (all steps)"),
      tr("L1 coefficient"), tr("No schedule yet: edit the config to preview it"), schedulesTab);
  d_->lrSchedule = new MetricPlot(
      QStringLiteral("schedule_learning_rate"), tr("Learning-rate schedule (all steps)"),
      tr("learning rate"), tr("No schedule yet: edit the config to preview it"), schedulesTab);
  // A schedule has no outliers: its warm-up corner must stay in view.
  d_->l1Schedule->setIgnoreOutliers(false);
  d_->lrSchedule->setIgnoreOutliers(false);
  d_->l1Schedule->addSeries(tr("L1 coefficient"), QString(), kLiveColour);
  d_->lrSchedule->addSeries(tr("learning rate"), QString(), kLiveColour);
  schedulesLayout->addWidget(d_->l1Schedule, 1);
  schedulesLayout->addWidget(d_->lrSchedule, 1);
  d_->tabs->addTab(schedulesTab, tr("Schedules"));

  // ---- Histograms tab.
  auto* histogramScroll = new QScrollArea(this);
  histogramScroll->setWidgetResizable(true);
  histogramScroll->setFrameShape(QFrame::NoFrame);
  auto* histogramGrid = new QWidget(histogramScroll);
  d_->histogramLayout = new QGridLayout(histogramGrid);
  histogramScroll->setWidget(histogramGrid);
  for (const HistogramSpec& spec : histogramSpecs()) {
    auto* view = new HistogramView(spec.name, spec.title, spec.xLabel, spec.emptyMessage,
                                   spec.compareWithFirst, histogramGrid);
    view->setMinimumHeight(280);
    const int i = static_cast<int>(d_->histograms.size());
    d_->histogramLayout->addWidget(view, i / 2, i % 2);
    d_->histograms.push_back(view);
  }
  d_->tabs->addTab(histogramScroll, tr("Histograms"));

  resize(1200, 800);
  d_->columns = 3;
  setPlotVisible(QString(), true);
  setSmoothing(0.6);  // TensorBoard's default
}

PlotDashboard::~PlotDashboard() {
  delete d_;
}

QStringList PlotDashboard::metricPlotIds() const {
  QStringList ids;
  for (const MetricPlot* p : d_->plots)
    ids << p->id();
  return ids;
}

MetricPlot* PlotDashboard::metricPlot(const QString& id) const {
  return d_->plot(id);
}

MetricPlot* PlotDashboard::schedulePlot(const QString& id) const {
  if (id == d_->l1Schedule->id()) return d_->l1Schedule;
  if (id == d_->lrSchedule->id()) return d_->lrSchedule;
  return nullptr;
}

HistogramView* PlotDashboard::histogramView(const QString& name) const {
  for (HistogramView* v : d_->histograms)
    if (v->name() == name) return v;
  return nullptr;
}

QStringList PlotDashboard::histogramNames() const {
  QStringList names;
  for (const HistogramView* v : d_->histograms)
    names << v->name();
  return names;
}

void PlotDashboard::resizeEvent(QResizeEvent* event) {
  QWidget::resizeEvent(event);
  // Reflow the grid when the number of columns that fit changes.
  const int columns = std::clamp(event->size().width() / 420, 1, 3);
  if (columns != d_->columns) {
    d_->columns = columns;
    setPlotVisible(QString(), true);
  }
}

void PlotDashboard::setPlotVisible(const QString& id, bool visible) {
  if (!id.isEmpty()) {
    if (!d_->visible.count(id)) return;
    d_->visible[id] = visible;
    if (QAction* action = d_->visibilityActions[id]; action->isChecked() != visible) {
      const QSignalBlocker block(action);
      action->setChecked(visible);
    }
  }
  const int columns = std::max(1, d_->columns);
  for (MetricPlot* p : d_->plots)
    d_->gridLayout->removeWidget(p);
  int i = 0;
  for (MetricPlot* p : d_->plots) {
    const bool show = d_->visible[p->id()];
    p->setVisible(show);
    if (!show) continue;
    d_->gridLayout->addWidget(p, i / columns, i % columns);
    ++i;
  }
}

bool PlotDashboard::isPlotVisible(const QString& id) const {
  const auto it = d_->visible.find(id);
  return it != d_->visible.end() && it->second;
}

void PlotDashboard::setSmoothing(double weight) {
  weight = std::clamp(weight, 0.0, 0.999);
  const int position = static_cast<int>(std::lround(weight * 1000));
  if (d_->smoothing->value() != position) {
    const QSignalBlocker block(d_->smoothing);
    d_->smoothing->setValue(position);
  }
  d_->smoothingLabel->setText(QString::number(weight, 'f', 3));
  for (MetricPlot* p : d_->plots) {
    p->setSmoothing(weight);
    d_->dirty.insert(p);
  }
  d_->replotTimer.start();
}

double PlotDashboard::smoothing() const {
  return d_->plots.front()->smoothing();
}

void PlotDashboard::setXAxisMode(XAxisMode mode) {
  const int index = d_->xMode->findData(static_cast<int>(mode));
  if (d_->xMode->currentIndex() != index) {
    const QSignalBlocker block(d_->xMode);
    d_->xMode->setCurrentIndex(index);
  }
  for (MetricPlot* p : d_->plots) {
    p->setXMode(mode);
    d_->dirty.insert(p);
  }
  d_->replotTimer.start();
}

void PlotDashboard::flush() {
  d_->replotTimer.stop();
  for (MetricPlot* p : d_->dirty)
    p->refresh();
  d_->dirty.clear();
}

void PlotDashboard::clearRun() {
  for (MetricPlot* p : d_->plots) {
    p->clearLive();
    d_->dirty.insert(p);
  }
  for (HistogramView* v : d_->histograms)
    v->clear();
  d_->lastTokens = kNaN;
  d_->lastWall = kNaN;
  flush();
}

void PlotDashboard::addMetrics(const sae::MetricsEvent& event) {
  const auto step = static_cast<double>(event.step);
  const auto tokens = static_cast<double>(event.n_training_tokens);
  const double wall = event.wall_seconds;
  const auto add = [&](const std::string& key, double value) {
    const auto it = d_->liveBindings.find(key);
    if (it == d_->liveBindings.end()) return;
    for (const Private::Binding& b : it->second) {
      b.plot->appendPoint(b.series, step, tokens, wall, value);
      d_->dirty.insert(b.plot);
    }
  };
  for (const auto& [key, value] : event.values)
    add(key, value);
  // Throughput between this logged step and the previous one.
  if (std::isfinite(d_->lastWall) && wall > d_->lastWall) {
    add(kTokensPerSecond, (tokens - d_->lastTokens) / (wall - d_->lastWall));
  }
  d_->lastTokens = tokens;
  d_->lastWall = wall;
  if (!d_->replotTimer.isActive()) d_->replotTimer.start();
}

void PlotDashboard::addHistogram(const sae::HistogramEvent& event) {
  const QString name = QString::fromStdString(event.name);
  HistogramView* view = histogramView(name);
  if (!view) {
    auto* grid = d_->histogramLayout->parentWidget();
    view = new HistogramView(name, name, tr("value"), QString(), false, grid);
    view->setMinimumHeight(280);
    const int i = static_cast<int>(d_->histograms.size());
    d_->histogramLayout->addWidget(view, i / 2, i % 2);
    d_->histograms.push_back(view);
  }
  view->addSnapshot(event);
}

void PlotDashboard::setSchedulePreview(const sae::RunConfig& config) {
  d_->l1Schedule->clearLive();
  d_->lrSchedule->clearLive();
  const int64_t total = config.totalSteps();
  if (total <= 0) {
    const QString why =
        tr("No training steps: training_tokens // train_batch_size is %1").arg(total);
    d_->l1Schedule->setEmptyMessage(why);
    d_->lrSchedule->setEmptyMessage(why);
    d_->l1Schedule->refresh();
    d_->lrSchedule->refresh();
    return;
  }
  // Every step up to 20000 (the notebook's cell plots 20000); beyond that 4000 evenly spaced
  // steps plus both sides of every phase boundary, so corners stay sharp.
  std::set<int64_t> steps;
  if (total <= 20000) {
    for (int64_t s = 0; s < total; ++s)
      steps.insert(s);
  } else {
    for (int64_t i = 0; i < 4000; ++i)
      steps.insert(i * (total - 1) / 3999);
    const int64_t decayStart = total - config.lr_decay_steps;
    for (int64_t b : {config.l1_warm_up_steps, config.lr_warm_up_steps, decayStart}) {
      for (int64_t s : {b - 1, b, b + 1})
        if (s >= 0 && s < total) steps.insert(s);
    }
  }
  const auto tokensAt = [&](int64_t s) { return static_cast<double>(s * config.train_batch_size); };
  const sae::L1Scheduler l1(config.l1_coefficient, config.l1_warm_up_steps);
  for (int64_t s : steps)
    d_->l1Schedule->appendPoint(0, static_cast<double>(s), tokensAt(s), kNaN, l1.coefficientAt(s));
  try {
    const sae::LrScheduler lr(config.lr_scheduler_name, config.lr, total, config.lr_warm_up_steps,
                              config.lr_decay_steps, config.effectiveLrEnd(),
                              config.n_restart_cycles);
    for (int64_t s : steps)
      d_->lrSchedule->appendPoint(0, static_cast<double>(s), tokensAt(s), kNaN, lr.lrAt(s));
  } catch (const std::exception& e) {
    d_->lrSchedule->setEmptyMessage(tr("This config's learning-rate schedule is invalid:\n%1")
                                        .arg(QString::fromUtf8(e.what())));
  }
  d_->l1Schedule->setFollowLatest(true);
  d_->lrSchedule->setFollowLatest(true);
  d_->l1Schedule->refresh();
  d_->lrSchedule->refresh();
}

bool PlotDashboard::overlayRun(const QString& runDir, QString* error) {
  const QString path = QDir(runDir).filePath(QStringLiteral("metrics.jsonl"));
  std::vector<sae::MetricsEvent> events;
  try {
    events = sae::MetricsJsonlReader::read(QFile::encodeName(path).toStdString());
  } catch (const std::exception& e) {
    if (error) *error = QString::fromUtf8(e.what());
    return false;
  }
  if (events.empty()) {
    if (error) *error = tr("metrics file '%1' has no logged steps").arg(path);
    return false;
  }
  QString run = QFileInfo(QDir::cleanPath(runDir)).fileName();
  if (run.isEmpty()) run = runDir;
  // Opening the same folder again replaces its curves.
  for (MetricPlot* p : d_->plots)
    p->removeRun(run);
  const auto known = std::find(d_->overlayRuns.begin(), d_->overlayRuns.end(), run);
  int colourIndex = static_cast<int>(known - d_->overlayRuns.begin());
  if (known == d_->overlayRuns.end()) d_->overlayRuns.push_back(run);
  const QColor colour = kRunColours[colourIndex % std::size(kRunColours)];

  for (size_t k = 0; k < d_->specs.size(); ++k) {
    const PlotSpec& spec = d_->specs[k];
    MetricPlot* plot = d_->plots[k];
    for (size_t i = 0; i < spec.series.size(); ++i) {
      const std::string& key = spec.series[i].key;
      const QString label =
          spec.series.size() > 1 ? run + QStringLiteral(": ") + spec.series[i].label : run;
      int index = -1;
      double lastTokens = kNaN, lastWall = kNaN;
      for (const sae::MetricsEvent& e : events) {
        const auto step = static_cast<double>(e.step);
        const auto tokens = static_cast<double>(e.n_training_tokens);
        double value = kNaN;
        bool has = false;
        if (key == kTokensPerSecond) {
          if (std::isfinite(lastWall) && e.wall_seconds > lastWall) {
            value = (tokens - lastTokens) / (e.wall_seconds - lastWall);
            has = true;
          }
          lastTokens = tokens;
          lastWall = e.wall_seconds;
        } else if (const auto it = e.values.find(key); it != e.values.end()) {
          value = it->second;
          has = true;
        }
        if (!has) continue;
        if (index < 0) {
          index = plot->addSeries(label, run, colour, kSeriesStyles[i % std::size(kSeriesStyles)]);
        }
        plot->appendPoint(index, step, tokens, e.wall_seconds, value);
      }
      if (index >= 0) d_->dirty.insert(plot);
    }
  }
  flush();
  return true;
}

bool PlotDashboard::removeOverlay(const QString& runDir) {
  QString run = QFileInfo(QDir::cleanPath(runDir)).fileName();
  if (run.isEmpty()) run = runDir;
  bool removed = false;
  for (MetricPlot* p : d_->plots) {
    const int before = p->seriesCount();
    p->removeRun(run);
    if (p->seriesCount() != before) {
      removed = true;
      d_->dirty.insert(p);
    }
  }
  flush();
  return removed;
}

QStringList PlotDashboard::exportAll(const QString& dir, QString* error) {
  QStringList written;
  if (!QDir().mkpath(dir)) {
    if (error) *error = tr("cannot create the folder '%1'").arg(dir);
    return written;
  }
  flush();
  const QDir target(dir);
  const QStringList formats = {QStringLiteral("png"), QStringLiteral("svg"), QStringLiteral("pdf"),
                               QStringLiteral("csv")};
  const auto exportOne = [&](const QString& base, const auto& exporter) {
    for (const QString& suffix : formats) {
      const QString path = target.filePath(base + QLatin1Char('.') + suffix);
      if (!exporter(path)) return false;
      written << path;
    }
    return true;
  };
  std::vector<MetricPlot*> metricPlots = d_->plots;
  metricPlots.push_back(d_->l1Schedule);
  metricPlots.push_back(d_->lrSchedule);
  for (MetricPlot* p : metricPlots) {
    if (!p->hasData()) continue;
    if (!exportOne(p->id(), [&](const QString& path) { return p->exportTo(path, error); })) {
      return written;
    }
  }
  for (HistogramView* v : d_->histograms) {
    if (!v->hasData()) continue;
    if (!exportOne(QStringLiteral("hist_") + fileBase(v->name()),
                   [&](const QString& path) { return v->exportTo(path, error); })) {
      return written;
    }
  }
  if (error) error->clear();
  return written;
}

QByteArray PlotDashboard::saveLayout() const {
  QJsonObject o;
  o[QStringLiteral("version")] = 1;
  QJsonArray visible, logY, outliersOff;
  for (MetricPlot* p : d_->plots) {
    if (isPlotVisible(p->id())) visible.append(p->id());
    if (p->logY()) logY.append(p->id());
    if (!p->ignoreOutliers()) outliersOff.append(p->id());
  }
  o[QStringLiteral("visible")] = visible;
  o[QStringLiteral("logY")] = logY;
  o[QStringLiteral("outliersIncluded")] = outliersOff;
  o[QStringLiteral("smoothing")] = smoothing();
  o[QStringLiteral("xAxis")] = xModeName(d_->plots.front()->xMode());
  o[QStringLiteral("tab")] = d_->tabs->currentIndex();
  return QJsonDocument(o).toJson(QJsonDocument::Compact);
}

bool PlotDashboard::restoreLayout(const QByteArray& state) {
  QJsonParseError parseError;
  const QJsonDocument doc = QJsonDocument::fromJson(state, &parseError);
  if (parseError.error != QJsonParseError::NoError || !doc.isObject()) return false;
  const QJsonObject o = doc.object();
  if (o.value(QStringLiteral("version")).toInt() != 1) return false;
  const auto ids = [&](const char* key) {
    std::set<QString> out;
    for (const QJsonValue& v : o.value(QLatin1String(key)).toArray())
      out.insert(v.toString());
    return out;
  };
  const std::set<QString> visible = ids("visible"), logY = ids("logY"),
                          outliersIncluded = ids("outliersIncluded");
  for (MetricPlot* p : d_->plots) {
    setPlotVisible(p->id(), visible.count(p->id()) > 0);
    p->setLogY(logY.count(p->id()) > 0);
    p->setIgnoreOutliers(outliersIncluded.count(p->id()) == 0);
  }
  setSmoothing(o.value(QStringLiteral("smoothing")).toDouble(0.6));
  const QString x = o.value(QStringLiteral("xAxis")).toString();
  for (XAxisMode mode : {XAxisMode::Step, XAxisMode::Tokens, XAxisMode::WallTime}) {
    if (xModeName(mode) == x) setXAxisMode(mode);
  }
  const int tab = o.value(QStringLiteral("tab")).toInt(0);
  if (tab >= 0 && tab < d_->tabs->count()) d_->tabs->setCurrentIndex(tab);
  return true;
}
