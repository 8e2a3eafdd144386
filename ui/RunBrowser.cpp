#include "RunBrowser.h"

#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFileSystemWatcher>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QTreeView>
#include <QVBoxLayout>

#include <algorithm>

#include "RunListModel.h"

namespace {

QPushButton* button(const QString& text, const QString& tip, const QString& name) {
  auto* b = new QPushButton(text);
  b->setToolTip(tip);
  b->setObjectName(name);
  return b;
}

}  // namespace

RunBrowser::RunBrowser(QWidget* parent) : QWidget(parent) {
  model_ = new RunListModel(this);
  proxy_ = new QSortFilterProxyModel(this);
  proxy_->setSourceModel(model_);
  proxy_->setSortRole(RunListModel::SortRole);
  watcher_ = new QFileSystemWatcher(this);

  folderEdit_ = new QLineEdit;
  folderEdit_->setObjectName("runsFolderEdit");
  folderEdit_->setToolTip("The folder whose runs are listed; new runs are written here too");
  auto* chooseButton =
      button("Choose...", "list the runs of another folder (new runs go there too)",
             "chooseRunsFolderButton");
  auto* refreshButton = button("Refresh", "read the run folders again", "refreshRunsButton");
  auto* folderRow = new QHBoxLayout;
  folderRow->addWidget(new QLabel("Folder:"));
  folderRow->addWidget(folderEdit_, 1);
  folderRow->addWidget(chooseButton);
  folderRow->addWidget(refreshButton);

  view_ = new QTreeView;
  view_->setObjectName("runsView");
  view_->setModel(proxy_);
  view_->setSortingEnabled(true);
  view_->sortByColumn(RunListModel::Started, Qt::DescendingOrder);  // newest first
  view_->setSelectionMode(QAbstractItemView::SingleSelection);
  view_->setSelectionBehavior(QAbstractItemView::SelectRows);
  view_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  view_->setAlternatingRowColors(true);
  view_->setUniformRowHeights(true);
  view_->setTextElideMode(Qt::ElideMiddle);  // run names end in their distinguishing timestamp
  view_->setExpandsOnDoubleClick(false);     // a double-click opens the run
  view_->header()->setStretchLastSection(false);
  view_->header()->setSectionResizeMode(QHeaderView::Interactive);
  view_->setColumnWidth(RunListModel::Name, 250);
  view_->setColumnWidth(RunListModel::Status, 72);
  view_->setColumnWidth(RunListModel::Tokens, 130);
  view_->setColumnWidth(RunListModel::Started, 112);
  for (int c : {RunListModel::Mse, RunListModel::L0, RunListModel::ExplainedVariance,
                RunListModel::CeLossScore})
    view_->setColumnWidth(c, 66);

  openButton_ = button("Open", "show this run: its config in the form, its curves and histograms",
                       "openRunButton");
  continueButton_ =
      button("Continue", "continue this stopped or killed run from its latest checkpoint",
             "continueSelectedRunButton");
  featuresButton_ =
      button("Features...", "browse this finished run's features", "runFeaturesButton");
  auto* buttonRow = new QHBoxLayout;
  buttonRow->addWidget(openButton_);
  buttonRow->addWidget(continueButton_);
  buttonRow->addWidget(featuresButton_);
  buttonRow->addStretch(1);

  summary_ = new QLabel;
  summary_->setObjectName("runsSummary");
  summary_->setWordWrap(true);

  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 4, 0, 0);
  layout->addLayout(folderRow);
  layout->addWidget(view_, 1);
  layout->addLayout(buttonRow);
  layout->addWidget(summary_);

  connect(chooseButton, &QPushButton::clicked, this, &RunBrowser::chooseFolder);
  connect(refreshButton, &QPushButton::clicked, this, &RunBrowser::refresh);
  connect(folderEdit_, &QLineEdit::returnPressed, this, [this] {
    const QString folder = folderEdit_->text().trimmed();
    if (folder.isEmpty() || folder == rootFolder()) return;
    setRootFolder(folder);
    Q_EMIT rootFolderChosen(folder);
  });
  connect(openButton_, &QPushButton::clicked, this, [this] {
    if (!currentRunDir().isEmpty()) Q_EMIT openRequested(currentRunDir());
  });
  connect(continueButton_, &QPushButton::clicked, this, [this] {
    if (!currentRunDir().isEmpty()) Q_EMIT continueRequested(currentRunDir());
  });
  connect(featuresButton_, &QPushButton::clicked, this, [this] {
    if (!currentRunDir().isEmpty()) Q_EMIT featuresRequested(currentRunDir());
  });
  connect(view_, &QTreeView::doubleClicked, this, [this](const QModelIndex& index) {
    const QModelIndex source = proxy_->mapToSource(index);
    if (RunListModel::Kind(source.data(RunListModel::KindRole).toInt()) !=
            RunListModel::Kind::Run ||
        trainingActive_)
      return;
    Q_EMIT openRequested(source.data(RunListModel::RunDirRole).toString());
  });
  connect(view_->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
          [this] { updateButtons(); });
  connect(model_, &RunListModel::runCheckedChanged, this, [this](const QString& dir, bool on) {
    updateSummary();
    Q_EMIT overlayToggled(dir, on);
  });
  // Sweeps show their runs when they first appear.
  connect(proxy_, &QAbstractItemModel::rowsInserted, this,
          [this](const QModelIndex& parent, int first, int last) {
            if (parent.isValid()) return;
            for (int r = first; r <= last; ++r)
              view_->expand(proxy_->index(r, 0));
            fitColumns();
          });
  connect(model_, &RunListModel::refreshed, this, [this] {
    updateWatches();
    updateSummary();
    updateButtons();
  });

  rescanTimer_.setSingleShot(true);
  rescanTimer_.setInterval(500);
  connect(&rescanTimer_, &QTimer::timeout, this, &RunBrowser::refresh);
  connect(watcher_, &QFileSystemWatcher::directoryChanged, this, [this] { rescanTimer_.start(); });
  connect(watcher_, &QFileSystemWatcher::fileChanged, this, [this] { rescanTimer_.start(); });
  updateButtons();
}

void RunBrowser::fitColumns() {
  // Wide enough for what is listed, but a long run name (SAELens's default names run to 60
  // characters) does not push the numbers out of view: it is elided in the middle instead.
  for (int c = 0; c < RunListModel::Columns; ++c)
    view_->resizeColumnToContents(c);
  view_->setColumnWidth(RunListModel::Name, std::min(view_->columnWidth(RunListModel::Name), 260));
}

void RunBrowser::setRootFolder(const QString& folder) {
  folderEdit_->setText(QDir::toNativeSeparators(folder));
  model_->setRootFolder(folder);
}

QString RunBrowser::rootFolder() const {
  return model_->rootFolder();
}

void RunBrowser::refresh() {
  const QString selected = currentRunDir();
  model_->refresh();
  if (!selected.isEmpty() && currentRunDir() != selected) selectRun(selected);
}

void RunBrowser::setTrainingActive(bool active) {
  trainingActive_ = active;
  updateButtons();
}

QString RunBrowser::currentRunDir() const {
  const QModelIndex index = proxy_->mapToSource(view_->currentIndex());
  if (!index.isValid() ||
      RunListModel::Kind(index.data(RunListModel::KindRole).toInt()) != RunListModel::Kind::Run)
    return {};
  return index.data(RunListModel::RunDirRole).toString();
}

bool RunBrowser::selectRun(const QString& runDir) {
  const QModelIndex index = proxy_->mapFromSource(model_->indexOfRun(runDir));
  if (!index.isValid()) return false;
  view_->setCurrentIndex(index);
  view_->scrollTo(index);
  return true;
}

void RunBrowser::updateButtons() {
  const QModelIndex index = proxy_->mapToSource(view_->currentIndex());
  const RunListModel::RunInfo* info = currentRunDir().isEmpty() ? nullptr : model_->info(index);
  const QString status = info ? info->status : QString();
  openButton_->setEnabled(info && !trainingActive_);
  continueButton_->setEnabled(info && !trainingActive_ &&
                              (status == "stopped" || status == "killed?"));
  featuresButton_->setEnabled(info &&
                              QFileInfo::exists(info->dir + "/final/sae_weights.safetensors"));
  openButton_->setToolTip(trainingActive_
                              ? "a run is training: stop it to open another run"
                              : "show this run: its config in the form, its curves and histograms");
}

void RunBrowser::updateSummary() {
  const QString root = rootFolder();
  if (root.isEmpty() || !QFileInfo(root).isDir()) {
    summary_->setText(QString("The folder %1 does not exist yet: runs appear here once one is "
                              "started.")
                          .arg(QDir::toNativeSeparators(root)));
    return;
  }
  const int runs = model_->runCount();
  const int overlaid = static_cast<int>(model_->checkedRuns().size());
  summary_->setText(runs == 0 ? QString("No runs in this folder yet.")
                              : QString("%1 run%2, %3 overlaid. Check a run to overlay its "
                                        "curves; double-click to open it.")
                                    .arg(runs)
                                    .arg(runs == 1 ? "" : "s")
                                    .arg(overlaid));
}

void RunBrowser::updateWatches() {
  // The root (runs appear and go), sweeps (members appear) and running runs (run.json is
  // replaced by a rename, which changes the folder). Finished runs change no more.
  QStringList wanted;
  const QString root = rootFolder();
  if (!root.isEmpty() && QFileInfo(root).isDir()) wanted << QDir::cleanPath(root);
  for (int r = 0; r < model_->rowCount(); ++r) {
    const QModelIndex top = model_->index(r, 0);
    const auto kind = RunListModel::Kind(top.data(RunListModel::KindRole).toInt());
    if (kind == RunListModel::Kind::Sweep) wanted << top.data(RunListModel::RunDirRole).toString();
    const auto watchIfRunning = [&](const QModelIndex& index) {
      if (index.data(RunListModel::StatusRole).toString() == "running")
        wanted << index.data(RunListModel::RunDirRole).toString();
    };
    watchIfRunning(top);
    for (int m = 0; m < model_->rowCount(top); ++m)
      watchIfRunning(model_->index(m, 0, top));
  }
  const QStringList current = watcher_->directories();
  QStringList gone;
  for (const QString& dir : current)
    if (!wanted.contains(dir)) gone << dir;
  if (!gone.isEmpty()) watcher_->removePaths(gone);
  QStringList added;
  for (const QString& dir : wanted)
    if (!current.contains(dir)) added << dir;
  if (!added.isEmpty()) watcher_->addPaths(added);
}

void RunBrowser::chooseFolder() {
  const QString folder =
      QFileDialog::getExistingDirectory(this, "Choose the runs folder", rootFolder());
  if (folder.isEmpty()) return;
  setRootFolder(folder);
  Q_EMIT rootFolderChosen(folder);
}
