#include "FeatureBrowser.h"

#include <QDir>
#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QSplitter>
#include <QTableView>
#include <QTableWidget>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>

#include <qcustomplot.h>

#include "FeatureTableModel.h"

namespace {

const QColor kBarColour(31, 119, 180);
const char* const kFiringStyle = "background-color:#ffb347; color:#000; font-weight:600;";
const char* const kSpecialStyle = "color:#9a9a9a;";

bool isSpecialTokenText(const std::string& text) {
  return text.size() >= 4 && text.rfind("<|", 0) == 0 &&
         text.compare(text.size() - 2, 2, "|>") == 0;
}

QString signedValue(double value) {
  return (value >= 0 ? QStringLiteral("+") : QString()) + QString::number(value, 'f', 3);
}

}  // namespace

FeatureBrowser::FeatureBrowser(const QString& runDir, QWidget* parent)
    : QWidget(parent),
      runDir_(QDir::cleanPath(runDir)),
      cancel_(std::make_shared<std::atomic<bool>>(false)),
      watcher_(new QFutureWatcher<Outcome>(this)) {
  setWindowTitle(tr("Features - %1").arg(QFileInfo(runDir_).fileName()));
  resize(1400, 900);
  model_ = new FeatureTableModel(this);
  proxy_ = new QSortFilterProxyModel(this);
  proxy_->setSourceModel(model_);
  proxy_->setSortRole(FeatureTableModel::SortRole);
  proxy_->setFilterRole(FeatureTableModel::SearchRole);
  proxy_->setFilterKeyColumn(FeatureTableModel::IndexColumn);
  proxy_->setFilterCaseSensitivity(Qt::CaseInsensitive);
  buildUi();
  connect(watcher_, &QFutureWatcher<Outcome>::finished, this, &FeatureBrowser::onFinished);
}

FeatureBrowser::~FeatureBrowser() {
  cancel_->store(true);
  watcher_->waitForFinished();
}

void FeatureBrowser::buildUi() {
  summary_ = new QLabel(tr("Run folder: %1").arg(runDir_));
  summary_->setObjectName("featureSummary");
  summary_->setWordWrap(true);
  summary_->setTextFormat(Qt::RichText);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  status_ = new QLabel;
  status_->setObjectName("featureStatus");
  status_->setWordWrap(true);
  status_->setTextFormat(Qt::PlainText);
  recompute_ = new QPushButton(tr("Recompute"));
  recompute_->setObjectName("recomputeFeaturesButton");
  recompute_->setToolTip(tr("scan the tokens again and rewrite features.json"));
  auto* top = new QHBoxLayout;
  top->addWidget(summary_, 1);
  top->addWidget(recompute_);

  // Left: search and the table.
  search_ = new QLineEdit;
  search_->setObjectName("featureSearch");
  search_->setPlaceholderText(tr("Search feature index or context text"));
  search_->setClearButtonEnabled(true);
  table_ = new QTableView;
  table_->setObjectName("featureTable");
  table_->setModel(proxy_);
  table_->setSortingEnabled(true);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setSelectionMode(QAbstractItemView::SingleSelection);
  table_->setAlternatingRowColors(true);
  table_->verticalHeader()->hide();
  table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 6);
  table_->horizontalHeader()->setStretchLastSection(true);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
  table_->setColumnWidth(FeatureTableModel::IndexColumn, 70);
  table_->setColumnWidth(FeatureTableModel::DensityColumn, 105);
  table_->setColumnWidth(FeatureTableModel::MaxActivationColumn, 80);
  auto* left = new QWidget;
  auto* leftLayout = new QVBoxLayout(left);
  leftLayout->setContentsMargins(0, 0, 0, 0);
  leftLayout->addWidget(search_);
  leftLayout->addWidget(table_, 1);

  // Right: the selected feature.
  title_ = new QLabel(tr("No feature selected"));
  title_->setObjectName("featureTitle");
  QFont titleFont = title_->font();
  titleFont.setPointSizeF(titleFont.pointSizeF() * 1.35);
  titleFont.setBold(true);
  title_->setFont(titleFont);
  stats_ = new QLabel;
  stats_->setObjectName("featureStats");
  stats_->setWordWrap(true);
  stats_->setTextFormat(Qt::RichText);
  stats_->setTextInteractionFlags(Qt::TextSelectableByMouse);

  histogram_ = new QCustomPlot;
  histogram_->setObjectName("featureHistogram");
  histogram_->setMinimumSize(300, 200);
  histogram_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  histogram_->axisRect()->setRangeDrag(Qt::Horizontal);
  histogram_->axisRect()->setRangeZoom(Qt::Horizontal);
  QFont plotTitleFont = font();
  plotTitleFont.setBold(true);
  histogram_->plotLayout()->insertRow(0);
  histogram_->plotLayout()->addElement(
      0, 0, new QCPTextElement(histogram_, tr("Activations where it fires"), plotTitleFont));
  histogram_->xAxis->setLabel(tr("activation"));
  histogram_->yAxis->setLabel(tr("tokens"));
  bars_ = new QCPBars(histogram_->xAxis, histogram_->yAxis);
  bars_->setPen(QPen(kBarColour.darker(130), 1));
  bars_->setBrush(kBarColour);
  bars_->setWidthType(QCPBars::wtPlotCoords);

  auto makeLogitTable = [this](const QString& name) {
    auto* table = new QTableWidget(0, 2);
    table->setObjectName(name);
    table->setHorizontalHeaderLabels({tr("token"), tr("logit effect")});
    table->verticalHeader()->hide();
    table->verticalHeader()->setDefaultSectionSize(table->fontMetrics().height() + 4);
    table->horizontalHeader()->setStretchLastSection(true);
    table->setColumnWidth(0, 130);
    table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    table->setSelectionMode(QAbstractItemView::NoSelection);
    table->setFocusPolicy(Qt::NoFocus);
    return table;
  };
  positive_ = makeLogitTable("positiveLogits");
  negative_ = makeLogitTable("negativeLogits");
  logitNote_ = new QLabel;
  logitNote_->setWordWrap(true);
  logitNote_->hide();
  auto* logitBox = new QWidget;
  auto* logitLayout = new QGridLayout(logitBox);
  logitLayout->setContentsMargins(0, 0, 0, 0);
  auto* promotes = new QLabel(tr("<b>Promotes</b> (W_dec &middot; W_U, top +)"));
  auto* suppresses = new QLabel(tr("<b>Suppresses</b> (top &minus;)"));
  logitLayout->addWidget(promotes, 0, 0);
  logitLayout->addWidget(suppresses, 0, 1);
  logitLayout->addWidget(positive_, 1, 0);
  logitLayout->addWidget(negative_, 1, 1);
  logitLayout->addWidget(logitNote_, 2, 0, 1, 2);

  auto* upper = new QSplitter(Qt::Horizontal);
  upper->addWidget(histogram_);
  upper->addWidget(logitBox);
  upper->setStretchFactor(0, 3);
  upper->setStretchFactor(1, 2);

  contexts_ = new QTextBrowser;
  contexts_->setObjectName("featureContexts");
  contexts_->setOpenLinks(false);
  auto* contextsBox = new QWidget;
  auto* contextsLayout = new QVBoxLayout(contextsBox);
  contextsLayout->setContentsMargins(0, 0, 0, 0);
  contextsLayout->addWidget(
      new QLabel(tr("<b>Top contexts</b> (activation, then the tokens around the firing token; "
                    "&#8629; is a newline)")));
  contextsLayout->addWidget(contexts_, 1);

  auto* detailSplit = new QSplitter(Qt::Vertical);
  detailSplit->addWidget(upper);
  detailSplit->addWidget(contextsBox);
  detailSplit->setStretchFactor(0, 3);
  detailSplit->setStretchFactor(1, 2);
  detailSplit->setSizes({450, 330});

  auto* right = new QWidget;
  auto* rightLayout = new QVBoxLayout(right);
  rightLayout->setContentsMargins(0, 0, 0, 0);
  rightLayout->addWidget(title_);
  rightLayout->addWidget(stats_);
  rightLayout->addWidget(detailSplit, 1);

  split_ = new QSplitter(Qt::Horizontal);
  split_->addWidget(left);
  split_->addWidget(right);
  split_->setStretchFactor(0, 0);
  split_->setStretchFactor(1, 1);
  split_->setSizes({400, 1000});

  auto* layout = new QVBoxLayout(this);
  layout->addLayout(top);
  layout->addWidget(status_);
  layout->addWidget(split_, 1);

  connect(search_, &QLineEdit::textChanged, this, [this](const QString& text) {
    proxy_->setFilterFixedString(text.trimmed());
    if (!table_->selectionModel()->hasSelection() && proxy_->rowCount() > 0) table_->selectRow(0);
  });
  connect(table_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
          &FeatureBrowser::onSelectionChanged);
  connect(recompute_, &QPushButton::clicked, this, [this] { start(options_, true); });
}

bool FeatureBrowser::isBusy() const {
  return watcher_->isRunning();
}

void FeatureBrowser::start(const sae::FeatureBrowserOptions& options, bool recompute) {
  if (isBusy()) return;
  options_ = options;
  errorText_.clear();
  cancel_->store(false);
  recompute_->setEnabled(false);
  status_->setStyleSheet(QString());
  status_->setText(tr("Preparing..."));
  const QString runDir = runDir_;
  const auto cancel = cancel_;
  watcher_->setFuture(QtConcurrent::run([this, runDir, options, recompute, cancel]() {
    Outcome out;
    const std::string dir = runDir.toStdString();
    const std::string cache = sae::FeatureBrowserData::cachePath(dir);
    try {
      if (!recompute && QFileInfo::exists(QString::fromStdString(cache))) {
        try {
          auto cached = sae::FeatureBrowserData::load(cache);
          if (cached.isCurrentFor(dir, options)) {
            out.data = std::make_shared<const sae::FeatureBrowserData>(std::move(cached));
            out.note = tr("read from features.json");
            return out;
          }
        } catch (const std::exception& error) {
          out.note = tr("features.json not used: %1").arg(QString::fromStdString(error.what()));
        }
      }
      auto data = sae::FeatureBrowserData::compute(
          dir, options, [this, cancel](int64_t done, int64_t total, const std::string& message) {
            if (cancel->load()) return false;
            const QString text = QString::fromStdString(message);
            // Queued to the GUI thread; the destructor waits for this task, so `this` lives.
            QMetaObject::invokeMethod(
                this, [this, done, total, text] { onProgress(done, total, text); },
                Qt::QueuedConnection);
            return true;
          });
      try {
        data.save(cache);
      } catch (const std::exception& error) {
        out.note = tr("not cached: %1").arg(QString::fromStdString(error.what()));
      }
      out.data = std::make_shared<const sae::FeatureBrowserData>(std::move(data));
    } catch (const std::exception& error) {
      out.error = QString::fromStdString(error.what());
    }
    return out;
  }));
}

void FeatureBrowser::onProgress(qint64 done, qint64 total, const QString& message) {
  if (!isBusy()) return;  // a late report after the result arrived
  if (total > 0) {
    status_->setText(
        tr("Scanning tokens through the model and the SAE: %L1 / %L2").arg(done).arg(total));
  } else if (!message.isEmpty()) {
    status_->setText(message);
  }
}

void FeatureBrowser::onFinished() {
  recompute_->setEnabled(true);
  const Outcome out = watcher_->result();
  if (!out.error.isEmpty()) {
    showError(out.error);
    Q_EMIT finished(false);
    return;
  }
  note_ = out.note;
  setData(out.data);
  Q_EMIT finished(true);
}

void FeatureBrowser::showError(const QString& message) {
  errorText_ = message;
  status_->setStyleSheet("color:#b00020;");
  status_->setText(tr("Cannot show the features of %1:\n%2").arg(runDir_, message));
}

QString FeatureBrowser::summaryText() const {
  if (!data_) return tr("Run folder: %1").arg(runDir_);
  int64_t dead = 0;
  for (const auto& r : data_->features)
    dead += r.firingCount == 0 ? 1 : 0;
  const QString weights =
      QDir(runDir_).relativeFilePath(QFileInfo(QString::fromStdString(data_->weightsFile)).path());
  QString text = tr("<b>%1</b> &middot; %L2 features (%L3 never fire) &middot; %4 on %5 "
                    "&middot; %L6 tokens scanned &middot; weights: %7/")
                     .arg(QFileInfo(runDir_).fileName().toHtmlEscaped())
                     .arg(static_cast<qlonglong>(data_->features.size()))
                     .arg(dead)
                     .arg(QString::fromStdString(data_->hookPoint).toHtmlEscaped(),
                          QString::fromStdString(data_->modelName).toHtmlEscaped())
                     .arg(data_->tokensScanned)
                     .arg(weights.toHtmlEscaped());
  return text;
}

void FeatureBrowser::setData(std::shared_ptr<const sae::FeatureBrowserData> data) {
  data_ = std::move(data);
  current_ = -1;
  model_->setData(data_);
  summary_->setText(summaryText());
  QStringList notes;
  if (data_) {
    if (!data_->scanNote.empty()) notes << QString::fromStdString(data_->scanNote);
    if (data_->estimatedActivationScale) {
      notes << tr("activations scaled by %1, estimated on the first batch (the saved SAE expects "
                  "normalised activations)")
                   .arg(*data_->estimatedActivationScale, 0, 'g', 6);
    }
    if (data_->tokenizerPath.empty()) {
      notes << tr("no tokenizer.json next to the model: tokens are shown as <id>");
    }
  }
  if (!note_.isEmpty()) notes << note_;
  status_->setStyleSheet("color:#555;");
  status_->setText(notes.join(QStringLiteral("; ")));
  status_->setVisible(!notes.isEmpty());
  logitNote_->setVisible(data_ && !data_->logitNote.empty());
  if (data_) logitNote_->setText(QString::fromStdString(data_->logitNote));
  // Strongest first, as feature dashboards list them; the densest are the least specific.
  table_->sortByColumn(FeatureTableModel::MaxActivationColumn, Qt::DescendingOrder);
  if (proxy_->rowCount() > 0) table_->selectRow(0);
}

bool FeatureBrowser::showFeature(int64_t index) {
  if (!data_ || index < 0 || index >= static_cast<int64_t>(data_->features.size())) return false;
  const QModelIndex source = model_->index(static_cast<int>(index), 0);
  const QModelIndex row = proxy_->mapFromSource(source);
  if (!row.isValid()) return false;
  table_->selectRow(row.row());
  table_->scrollTo(row);
  return current_ == index;
}

void FeatureBrowser::onSelectionChanged() {
  const QModelIndex row = table_->selectionModel()->currentIndex();
  if (!data_ || !row.isValid()) return;
  const qlonglong index =
      proxy_->data(proxy_->index(row.row(), 0), FeatureTableModel::FeatureIndexRole).toLongLong();
  if (index < 0 || index >= static_cast<qlonglong>(data_->features.size())) return;
  showRecord(data_->features[static_cast<size_t>(index)]);
}

void FeatureBrowser::showRecord(const sae::FeatureRecord& r) {
  current_ = r.index;
  title_->setText(tr("Feature %1").arg(r.index));
  if (r.firingCount == 0) {
    stats_->setText(tr("Never fires in the %L1 scanned tokens (dead here). Decoder norm %2.")
                        .arg(data_->tokensScanned)
                        .arg(r.decoderNorm, 0, 'g', 4));
  } else {
    stats_->setText(tr("Density %1 (log10 %2): fires on %L3 of %L4 tokens &middot; max "
                       "activation %5 &middot; mean where it fires %6 &middot; decoder norm %7")
                        .arg(r.density, 0, 'g', 3)
                        .arg(FeatureTableModel::log10Density(r.density), 0, 'f', 2)
                        .arg(r.firingCount)
                        .arg(data_->tokensScanned)
                        .arg(r.maxActivation, 0, 'g', 4)
                        .arg(r.meanActivation, 0, 'g', 4)
                        .arg(r.decoderNorm, 0, 'g', 4));
  }

  // Histogram.
  histogram_->clearItems();
  const auto& bins = r.histogram;
  QVector<double> centres, counts;
  for (size_t i = 0; i + 1 < bins.edges.size(); ++i) {
    centres << 0.5 * (bins.edges[i] + bins.edges[i + 1]);
    counts << static_cast<double>(bins.counts[i]);
  }
  bars_->setWidth(bins.binWidth());
  bars_->setData(centres, counts, true);
  if (centres.isEmpty()) {
    auto* text = new QCPItemText(histogram_);
    text->position->setType(QCPItemPosition::ptAxisRectRatio);
    text->position->setCoords(0.5, 0.5);
    text->setText(tr("never fires in the scanned tokens"));
    text->setColor(QColor(110, 110, 110));
    histogram_->xAxis->setRange(0, 1);
    histogram_->yAxis->setRange(0, 1);
  } else {
    const double pad = 0.03 * (bins.edges.back() - bins.edges.front());
    histogram_->xAxis->setRange(std::min(0.0, bins.edges.front() - pad), bins.edges.back() + pad);
    histogram_->yAxis->setRange(0, *std::max_element(counts.begin(), counts.end()) * 1.1 + 1);
  }
  histogram_->replot(QCustomPlot::rpQueuedReplot);

  contexts_->setHtml(contextsHtml(*data_, r));
  fillLogits(positive_, r.positiveLogits);
  fillLogits(negative_, r.negativeLogits);
}

void FeatureBrowser::fillLogits(QTableWidget* table, const std::vector<sae::LogitEffect>& effects) {
  table->setRowCount(static_cast<int>(effects.size()));
  for (int i = 0; i < static_cast<int>(effects.size()); ++i) {
    const auto& e = effects[static_cast<size_t>(i)];
    auto* token = new QTableWidgetItem(FeatureTableModel::visibleText(data_->tokenText(e.token)));
    token->setToolTip(tr("token id %1").arg(e.token));
    auto* value = new QTableWidgetItem(signedValue(e.value));
    value->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    value->setForeground(e.value >= 0 ? QColor(20, 100, 200) : QColor(190, 40, 40));
    table->setItem(i, 0, token);
    table->setItem(i, 1, value);
  }
}

QString FeatureBrowser::contextsHtml(const sae::FeatureBrowserData& data,
                                     const sae::FeatureRecord& record) {
  if (record.contexts.empty()) {
    return QStringLiteral("<p style=\"color:#777;\">%1</p>")
        .arg(tr("No context: the feature never fires in the %L1 scanned tokens.")
                 .arg(data.tokensScanned));
  }
  QString html = QStringLiteral("<html><body>");
  for (const auto& c : record.contexts) {
    html += QStringLiteral(
                "<p style=\"margin-top:0px; margin-bottom:7px; white-space:pre-wrap;\">"
                "<span style=\"color:#666; font-family:monospace;\">%1</span>&nbsp;&nbsp;")
                .arg(QString::number(c.activation, 'f', 3).rightJustified(8, QLatin1Char(' ')));
    const int64_t first = c.position - c.firingIndex;
    if (first > 0) html += QStringLiteral("<span style=\"color:#aaa;\">&hellip;</span>");
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      const std::string text = data.tokenText(c.tokens[i]);
      const QString shown = FeatureTableModel::visibleText(text).toHtmlEscaped();
      if (static_cast<int>(i) == c.firingIndex) {
        html += QStringLiteral("<span style=\"%1\">%2</span>").arg(kFiringStyle, shown);
      } else if (isSpecialTokenText(text)) {
        html += QStringLiteral("<span style=\"%1\">%2</span>").arg(kSpecialStyle, shown);
      } else {
        html += shown;
      }
    }
    if (first + static_cast<int64_t>(c.tokens.size()) < data.contextSize) {
      html += QStringLiteral("<span style=\"color:#aaa;\">&hellip;</span>");
    }
    html += QStringLiteral("</p>");
  }
  html += QStringLiteral("</body></html>");
  return html;
}
