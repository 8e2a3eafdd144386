#include "MainWindow.h"

#include <QCloseEvent>
#include <QComboBox>
#include <QDateTime>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QGroupBox>
#include <QGuiApplication>
#include <QHBoxLayout>
#include <QInputDialog>
#include <QLabel>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QVBoxLayout>

#include <algorithm>
#include <optional>

#include "ConfigForm.h"
#include "DerivedValuesPanel.h"
#include "FeatureBrowser.h"
#include "PlotDashboard.h"
#include "RunBrowser.h"
#include "RunListModel.h"
#include "WorkbenchArguments.h"
#include "analysis/MetricsJsonlReader.h"
#include "analysis/RunFolderHistograms.h"
#include "config/PresetLibrary.h"
#include "runs/RunManifest.h"
#include "train/TrainingRun.h"

namespace {

const char* const kBuiltInPrefix = "builtin:";
const char* const kUserPrefix = "user:";
const char* const kRunsFolderKey = "runsFolder";

QString durationText(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "-";
  const qint64 s = static_cast<qint64>(seconds + 0.5);
  return s >= 3600 ? QString("%1:%2:%3")
                         .arg(s / 3600)
                         .arg((s / 60) % 60, 2, 10, QChar('0'))
                         .arg(s % 60, 2, 10, QChar('0'))
                   : QString("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QChar('0'));
}

QPushButton* toolButton(const QString& text, const QString& tip, const QString& name) {
  auto* button = new QPushButton(text);
  button->setToolTip(tip);
  button->setObjectName(name);
  return button;
}

}  // namespace

MainWindow::MainWindow(const Options& options, QWidget* parent)
    : QMainWindow(parent),
      options_(options),
      store_(options.userPresetsFolder),
      runsFolder_(options.runsFolder.isEmpty() ? TrainingSession::defaultRunsFolder()
                                               : options.runsFolder) {
  session_ = new TrainingSession(this);
  if (options.runsFolder.isEmpty()) {
    // The folder last chosen in the Runs tab, while it still exists.
    const QString chosen = QSettings().value(kRunsFolderKey).toString();
    if (!chosen.isEmpty() && QFileInfo(chosen).isDir()) runsFolder_ = chosen;
  }
  buildUi();
  runBrowser_->setRootFolder(runsFolder_);
  connect(session_, &TrainingSession::batchReady, this, &MainWindow::onBatch);
  connect(session_, &TrainingSession::stateChanged, this, &MainWindow::onSessionState);
  connect(session_, &TrainingSession::ended, this, &MainWindow::onSessionEnded);
  refreshPresetList();

  QSettings settings;
  restoreGeometry(settings.value("window/geometry").toByteArray());
  dashboard_->restoreLayout(settings.value("window/plotLayout").toByteArray());
  bool opened = false;
  if (options_.restoreLastPreset) {
    const QString last = settings.value("lastPreset").toString();
    if (last.startsWith(kBuiltInPrefix)) {
      opened = openPreset(last.mid(int(qstrlen(kBuiltInPrefix))), true);
    } else if (last.startsWith(kUserPrefix)) {
      opened = openPreset(last.mid(int(qstrlen(kUserPrefix))), false);
    }
  }
  if (!opened) {
    const auto names = sae::PresetLibrary::names();
    const QString fallback = WorkbenchArguments::defaultPreset();
    if (!openPreset(fallback, true) && !names.empty()) {
      openPreset(QString::fromStdString(names.front()), true);
    }
  }
  updateButtons();
}

MainWindow::~MainWindow() = default;

void MainWindow::buildUi() {
  setWindowTitle("SAE Workbench[*]");
  resize(1500, 950);

  // Preset bar.
  auto* presetBar = new QWidget;
  auto* presetLayout = new QHBoxLayout(presetBar);
  presetLayout->setContentsMargins(6, 4, 6, 0);
  presetLayout->addWidget(new QLabel("Preset:"));
  presets_ = new QComboBox;
  presets_->setObjectName("presetCombo");
  presets_->setMinimumWidth(220);
  presets_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  presetLayout->addWidget(presets_);
  auto* newButton = toolButton("New", "start from the default config", "newPresetButton");
  saveButton_ = toolButton("Save", "save the form into this preset (Ctrl+S)", "savePresetButton");
  saveButton_->setShortcut(QKeySequence::Save);
  auto* saveAsButton = toolButton("Save As...", "save the form as a new preset", "saveAsButton");
  renameButton_ = toolButton("Rename...", "rename this preset", "renamePresetButton");
  deleteButton_ = toolButton("Delete", "delete this preset", "deletePresetButton");
  auto* importButton = toolButton("Import...", "add a preset from a JSON file", "importButton");
  auto* exportButton = toolButton("Export...", "write the form as a JSON file", "exportButton");
  for (auto* b : {newButton, saveButton_, saveAsButton, renameButton_, deleteButton_, importButton,
                  exportButton})
    presetLayout->addWidget(b);
  presetLayout->addStretch(1);
  auto* overlayButton =
      toolButton("Overlay run...", "draw an earlier run's curves beside this one", "overlayButton");
  auto* featuresButton = toolButton(
      "Features...",
      "browse a trained run's features: density, top contexts, activation histogram, logit effects",
      "featuresButton");
  auto* exportPlotsButton =
      toolButton("Export plots...", "PNG, SVG, PDF and CSV of every plot", "exportPlotsButton");
  presetLayout->addWidget(overlayButton);
  presetLayout->addWidget(featuresButton);
  presetLayout->addWidget(exportPlotsButton);

  // Left: the form, its validity line and the derived values.
  form_ = new ConfigForm;
  derived_ = new DerivedValuesPanel;
  validity_ = new QLabel;
  validity_->setObjectName("validityLabel");
  validity_->setWordWrap(true);
  auto* left = new QWidget;
  auto* leftLayout = new QVBoxLayout(left);
  leftLayout->setContentsMargins(6, 0, 0, 0);
  leftLayout->addWidget(form_, 1);
  leftLayout->addWidget(validity_);
  auto* derivedBox = new QGroupBox("Derived values");
  auto* derivedLayout = new QVBoxLayout(derivedBox);
  derivedLayout->setContentsMargins(2, 2, 2, 2);
  derivedLayout->addWidget(derived_);
  leftLayout->addWidget(derivedBox);
  left->setObjectName("configTab");
  runBrowser_ = new RunBrowser;
  runBrowser_->setObjectName("runBrowser");
  leftTabs_ = new QTabWidget;
  leftTabs_->setObjectName("leftTabs");
  leftTabs_->addTab(left, "Config");
  leftTabs_->addTab(runBrowser_, "Runs");
  leftTabs_->setTabToolTip(1, "the runs of the runs folder: open, overlay, continue");

  // Right: run controls, plots, log.
  startButton_ = toolButton("Start", "train the form's config", "startButton");
  pauseButton_ = toolButton("Pause", "pause between steps", "pauseButton");
  stopButton_ = toolButton("Stop", "finish the step, save a checkpoint and stop", "stopButton");
  continueButton_ = toolButton("Continue run...",
                               "continue a stopped or killed run from its latest checkpoint, "
                               "exactly as if it had not stopped",
                               "continueRunButton");
  progress_ = new QProgressBar;
  progress_->setObjectName("trainingProgress");
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  progress_->setTextVisible(true);
  progress_->setFormat("");
  progressText_ = new QLabel("tokens 0 / 0");
  progressText_->setObjectName("progressText");
  stateLabel_ = new QLabel("idle");
  stateLabel_->setObjectName("stateLabel");
  auto* controls = new QWidget;
  auto* controlsLayout = new QHBoxLayout(controls);
  controlsLayout->setContentsMargins(0, 0, 0, 0);
  controlsLayout->addWidget(startButton_);
  controlsLayout->addWidget(pauseButton_);
  controlsLayout->addWidget(stopButton_);
  controlsLayout->addWidget(continueButton_);
  controlsLayout->addWidget(progress_, 1);
  controlsLayout->addWidget(progressText_);
  controlsLayout->addWidget(stateLabel_);

  dashboard_ = new PlotDashboard;
  dashboard_->setObjectName("plotDashboard");
  log_ = new QPlainTextEdit;
  log_->setObjectName("logPanel");
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(5000);
  log_->setPlaceholderText("The run's preamble and messages appear here.");
  auto* rightSplit = new QSplitter(Qt::Vertical);
  rightSplit->addWidget(dashboard_);
  rightSplit->addWidget(log_);
  rightSplit->setStretchFactor(0, 4);
  rightSplit->setStretchFactor(1, 1);
  auto* right = new QWidget;
  auto* rightLayout = new QVBoxLayout(right);
  rightLayout->setContentsMargins(0, 0, 6, 0);
  rightLayout->addWidget(controls);
  rightLayout->addWidget(rightSplit, 1);

  auto* split = new QSplitter(Qt::Horizontal);
  split->addWidget(leftTabs_);
  split->addWidget(right);
  split->setStretchFactor(0, 0);
  split->setStretchFactor(1, 1);
  split->setSizes({470, 1030});
  split_ = split;
  // The run table has more columns than the form: the Runs tab widens the pane, the Config tab
  // gives the width back.
  connect(leftTabs_, &QTabWidget::currentChanged, this, [this](int index) {
    QList<int> sizes = split_->sizes();
    const int total = sizes.value(0) + sizes.value(1);
    if (sizes.size() != 2 || total <= 0) return;
    if (index == 1) {
      configPaneWidth_ = sizes[0];
      const int wanted = std::min(760, total / 2);
      if (sizes[0] < wanted) split_->setSizes({wanted, total - wanted});
    } else if (configPaneWidth_ > 0) {
      split_->setSizes({configPaneWidth_, total - configPaneWidth_});
    }
  });

  auto* central = new QWidget;
  auto* centralLayout = new QVBoxLayout(central);
  centralLayout->setContentsMargins(0, 0, 0, 0);
  centralLayout->addWidget(presetBar);
  centralLayout->addWidget(split, 1);
  setCentralWidget(central);
  statusBar()->showMessage("Ready");

  connect(presets_, &QComboBox::activated, this, &MainWindow::onPresetChosen);
  connect(newButton, &QPushButton::clicked, this, &MainWindow::newPreset);
  connect(saveButton_, &QPushButton::clicked, this, [this] { savePreset(); });
  connect(saveAsButton, &QPushButton::clicked, this, [this] { savePresetAs(); });
  connect(renameButton_, &QPushButton::clicked, this, &MainWindow::renamePreset);
  connect(deleteButton_, &QPushButton::clicked, this, &MainWindow::deletePreset);
  connect(importButton, &QPushButton::clicked, this, &MainWindow::importPreset);
  connect(exportButton, &QPushButton::clicked, this, &MainWindow::exportPreset);
  connect(overlayButton, &QPushButton::clicked, this, &MainWindow::overlayRun);
  connect(featuresButton, &QPushButton::clicked, this, &MainWindow::openFeatureBrowser);
  connect(exportPlotsButton, &QPushButton::clicked, this, &MainWindow::exportPlots);
  connect(startButton_, &QPushButton::clicked, this, [this] { startTraining(); });
  connect(pauseButton_, &QPushButton::clicked, this, [this] {
    if (session_->state() == TrainingSession::State::Paused) {
      session_->resume();
    } else {
      session_->pause();
    }
  });
  connect(stopButton_, &QPushButton::clicked, session_, &TrainingSession::stop);
  connect(continueButton_, &QPushButton::clicked, this, [this] {
    const QString dir =
        QFileDialog::getExistingDirectory(this, "Continue a run folder", runsFolder_);
    if (!dir.isEmpty()) continueRun(dir);
  });
  connect(runBrowser_, &RunBrowser::openRequested, this,
          [this](const QString& dir) { openRun(dir); });
  connect(runBrowser_, &RunBrowser::continueRequested, this,
          [this](const QString& dir) { continueRun(dir); });
  connect(runBrowser_, &RunBrowser::featuresRequested, this, &MainWindow::openFeatureBrowserFor);
  connect(runBrowser_, &RunBrowser::overlayToggled, this, &MainWindow::onOverlayToggled);
  connect(runBrowser_, &RunBrowser::rootFolderChosen, this, [this](const QString& folder) {
    setRunsFolder(folder);
    QSettings().setValue(kRunsFolderKey, folder);
    showStatus("Runs folder: " + folder + " (new runs go there too)");
  });
  // An overlaid run that is still training gets its newer points at each rescan.
  connect(runBrowser_->model(), &RunListModel::refreshed, this, [this] {
    RunListModel* model = runBrowser_->model();
    for (const QString& dir : model->checkedRuns()) {
      const RunListModel::RunInfo* info = model->info(model->indexOfRun(dir));
      if (info && info->status == "running") dashboard_->overlayRun(dir, nullptr);
    }
  });
  connect(form_, &ConfigForm::edited, this, &MainWindow::onFormEdited);
  connect(form_, &ConfigForm::validityChanged, this, &MainWindow::onFormValidity);
  onFormValidity(form_->isValid());
}

void MainWindow::refreshPresetList() {
  const QString current = presets_->currentData().toString();
  presets_->blockSignals(true);
  presets_->clear();
  for (const auto& name : sae::PresetLibrary::names()) {
    const QString n = QString::fromStdString(name);
    presets_->addItem(n + "  (built-in)", QString(kBuiltInPrefix) + n);
  }
  const QStringList names = store_.names();
  for (const QString& problem : store_.problems()) {
    appendLog("Skipped a preset: " + problem);
    showStatus("Skipped a corrupt preset file (see the log)");
  }
  if (!names.isEmpty()) presets_->insertSeparator(presets_->count());
  for (const QString& n : names)
    presets_->addItem(n, QString(kUserPrefix) + n);
  const QString wanted = presetName_.isEmpty()
                             ? current
                             : QString(presetBuiltIn_ ? kBuiltInPrefix : kUserPrefix) + presetName_;
  presets_->setCurrentIndex(presets_->findData(wanted));
  presets_->blockSignals(false);
}

bool MainWindow::openPreset(const QString& name, bool builtIn) {
  nlohmann::json object;
  try {
    if (builtIn) {
      object = PresetStore::readJsonObject(
          QString::fromStdString(sae::PresetLibrary::pathOf(name.toStdString())));
    } else {
      object = store_.load(name);
    }
  } catch (const std::exception& error) {
    const QString message = QString::fromStdString(error.what());
    appendLog("Cannot open preset: " + message);
    showStatus("Cannot open preset " + name);
    return false;
  }
  form_->setJson(object);
  presetName_ = name;
  presetBuiltIn_ = builtIn;
  openedRunName_.clear();
  setDirty(false);
  refreshPresetList();
  QSettings().setValue("lastPreset", QString(builtIn ? kBuiltInPrefix : kUserPrefix) + name);
  showStatus("Opened preset " + name);
  updateButtons();
  return true;
}

void MainWindow::showConfig(const sae::RunConfig& config, const QString& origin) {
  nlohmann::json object = config.toJson();
  form_->setJson(object);
  presetName_.clear();
  presetBuiltIn_ = false;
  openedRunName_.clear();
  refreshPresetList();
  presets_->setCurrentIndex(-1);
  setDirty(true);
  showStatus("Config from " + origin);
  updateButtons();
}

void MainWindow::setDirty(bool dirty) {
  dirty_ = dirty;
  updateTitle();
}

void MainWindow::updateTitle() {
  const QString name = !presetName_.isEmpty()      ? presetName_
                       : !openedRunName_.isEmpty() ? "run " + openedRunName_
                                                   : QString("unsaved config");
  setWindowTitle(QString("SAE Workbench - %1%2[*]").arg(name, presetBuiltIn_ ? " (built-in)" : ""));
  setWindowModified(dirty_);
}

void MainWindow::updateButtons() {
  const bool active = session_->isActive();
  const bool userPreset = !presetName_.isEmpty() && !presetBuiltIn_;
  startButton_->setEnabled(!active && form_->isValid());
  continueButton_->setEnabled(!active);
  runBrowser_->setTrainingActive(active);
  pauseButton_->setEnabled(session_->state() == TrainingSession::State::Running ||
                           session_->state() == TrainingSession::State::Paused);
  pauseButton_->setText(session_->state() == TrainingSession::State::Paused ? "Resume" : "Pause");
  stopButton_->setEnabled(session_->state() == TrainingSession::State::Running ||
                          session_->state() == TrainingSession::State::Paused);
  saveButton_->setEnabled(userPreset && dirty_);
  renameButton_->setEnabled(userPreset);
  deleteButton_->setEnabled(userPreset);
  presets_->setEnabled(!active);
  form_->setEditable(!active);
}

bool MainWindow::confirmDiscard(const QString& action) {
  if (!dirty_) return true;
  const auto answer = QMessageBox::question(
      this, "Unsaved changes",
      QString("The config has unsaved changes. Save them before %1?").arg(action),
      QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel, QMessageBox::Save);
  if (answer == QMessageBox::Cancel) return false;
  if (answer == QMessageBox::Save) return savePreset();
  return true;
}

void MainWindow::onFormEdited() {
  setDirty(true);
  updateButtons();
}

void MainWindow::onFormValidity(bool valid) {
  if (valid) {
    const sae::RunConfig& config = *form_->config();
    derived_->setConfig(&config);
    dashboard_->setSchedulePreview(config);
    validity_->setText("Config is valid.");
    validity_->setStyleSheet("color: #1b5e20;");
  } else {
    derived_->setConfig(nullptr);
    const QStringList problems = form_->problems();
    validity_->setText(QString("%1 problem%2 - Start is disabled:\n%3")
                           .arg(problems.size())
                           .arg(problems.size() == 1 ? "" : "s")
                           .arg(problems.mid(0, 3).join('\n')));
    validity_->setStyleSheet("color: #b00020;");
  }
  if (startButton_) updateButtons();
}

void MainWindow::onPresetChosen(int index) {
  const QString data = presets_->itemData(index).toString();
  const QString wanted = QString(presetBuiltIn_ ? kBuiltInPrefix : kUserPrefix) + presetName_;
  if (data.isEmpty() || data == wanted) return;
  if (!confirmDiscard("switching presets")) {
    refreshPresetList();
    return;
  }
  if (data.startsWith(kBuiltInPrefix)) {
    openPreset(data.mid(int(qstrlen(kBuiltInPrefix))), true);
  } else {
    openPreset(data.mid(int(qstrlen(kUserPrefix))), false);
  }
}

void MainWindow::newPreset() {
  if (!confirmDiscard("starting a new config")) return;
  form_->setJson(nlohmann::json::object());
  presetName_.clear();
  openedRunName_.clear();
  presetBuiltIn_ = false;
  refreshPresetList();
  presets_->setCurrentIndex(-1);
  setDirty(true);
  updateButtons();
}

bool MainWindow::savePreset() {
  if (presetName_.isEmpty() || presetBuiltIn_) return savePresetAs();
  try {
    store_.save(presetName_, form_->json());
  } catch (const std::exception& error) {
    QMessageBox::warning(this, "Save preset", QString::fromStdString(error.what()));
    return false;
  }
  setDirty(false);
  showStatus("Saved preset " + presetName_ + " to " + store_.folder());
  updateButtons();
  return true;
}

bool MainWindow::savePresetAs() {
  bool ok = false;
  const QString suggestion = presetName_.isEmpty() ? "my-preset" : presetName_ + "-copy";
  const QString name = QInputDialog::getText(this, "Save preset as",
                                             "Preset name:", QLineEdit::Normal, suggestion, &ok)
                           .trimmed();
  if (!ok || name.isEmpty()) return false;
  const QString problem = PresetStore::nameProblem(name);
  if (!problem.isEmpty()) {
    QMessageBox::warning(this, "Save preset", problem);
    return false;
  }
  const auto builtIns = sae::PresetLibrary::names();
  if (std::find(builtIns.begin(), builtIns.end(), name.toStdString()) != builtIns.end()) {
    QMessageBox::warning(this, "Save preset",
                         "'" + name + "' is a built-in preset (read-only); choose another name.");
    return false;
  }
  if (store_.contains(name) &&
      QMessageBox::question(this, "Save preset", "Replace your preset '" + name + "'?") !=
          QMessageBox::Yes) {
    return false;
  }
  presetName_ = name;
  presetBuiltIn_ = false;
  if (!savePreset()) return false;
  refreshPresetList();
  QSettings().setValue("lastPreset", QString(kUserPrefix) + name);
  return true;
}

void MainWindow::renamePreset() {
  if (presetName_.isEmpty() || presetBuiltIn_) return;
  bool ok = false;
  const QString name =
      QInputDialog::getText(this, "Rename preset", "New name:", QLineEdit::Normal, presetName_, &ok)
          .trimmed();
  if (!ok || name.isEmpty() || name == presetName_) return;
  try {
    store_.rename(presetName_, name);
  } catch (const std::exception& error) {
    QMessageBox::warning(this, "Rename preset", QString::fromStdString(error.what()));
    return;
  }
  presetName_ = name;
  QSettings().setValue("lastPreset", QString(kUserPrefix) + name);
  refreshPresetList();
  updateTitle();
}

void MainWindow::deletePreset() {
  if (presetName_.isEmpty() || presetBuiltIn_) return;
  if (QMessageBox::question(this, "Delete preset", "Delete your preset '" + presetName_ + "'?") !=
      QMessageBox::Yes) {
    return;
  }
  try {
    store_.remove(presetName_);
  } catch (const std::exception& error) {
    QMessageBox::warning(this, "Delete preset", QString::fromStdString(error.what()));
    return;
  }
  showStatus("Deleted preset " + presetName_);
  presetName_.clear();
  refreshPresetList();
  presets_->setCurrentIndex(-1);
  setDirty(true);  // the form still holds the deleted preset's values
  updateButtons();
}

void MainWindow::importPreset() {
  const QString path =
      QFileDialog::getOpenFileName(this, "Import preset", QString(), "JSON (*.json)");
  if (path.isEmpty() || !confirmDiscard("importing a preset")) return;
  try {
    const QString name = store_.importFile(path);
    openPreset(name, false);
  } catch (const std::exception& error) {
    QMessageBox::warning(this, "Import preset", QString::fromStdString(error.what()));
  }
}

void MainWindow::exportPreset() {
  const QString suggestion = (presetName_.isEmpty() ? QString("config") : presetName_) + ".json";
  const QString path =
      QFileDialog::getSaveFileName(this, "Export config", suggestion, "JSON (*.json)");
  if (path.isEmpty()) return;
  try {
    PresetStore::writeJson(path, form_->json());
    showStatus("Exported to " + path);
  } catch (const std::exception& error) {
    QMessageBox::warning(this, "Export config", QString::fromStdString(error.what()));
  }
}

void MainWindow::overlayRun() {
  const QString dir = QFileDialog::getExistingDirectory(this, "Overlay a run folder", runsFolder_);
  if (dir.isEmpty()) return;
  QString error;
  if (!dashboard_->overlayRun(dir, &error)) {
    QMessageBox::warning(this, "Overlay run", "Cannot overlay " + dir + ":\n" + error);
  } else {
    appendLog("Overlaid run " + dir);
  }
}

void MainWindow::openFeatureBrowser() {
  // The current session's run once it has an SAE to show, else the runs folder.
  const QString current = session_->runDir();
  const QString start =
      !current.isEmpty() && QFileInfo::exists(current + "/final/sae_weights.safetensors")
          ? current
          : runsFolder_;
  const QString dir =
      QFileDialog::getExistingDirectory(this, "Browse the features of a run", start);
  if (dir.isEmpty()) return;
  openFeatureBrowserFor(dir);
}

void MainWindow::openFeatureBrowserFor(const QString& dir) {
  auto* browser = new FeatureBrowser(dir, this);
  browser->setWindowFlag(Qt::Window);
  browser->setAttribute(Qt::WA_DeleteOnClose);
  browser->show();
  browser->start();
  appendLog("Feature browser: " + dir);
}

void MainWindow::exportPlots() {
  const QString start = session_->runDir().isEmpty() ? runsFolder_ : session_->runDir() + "/plots";
  const QString dir = QFileDialog::getExistingDirectory(this, "Export every plot into", start);
  if (dir.isEmpty()) return;
  QString error;
  const QStringList files = dashboard_->exportAll(dir, &error);
  if (!error.isEmpty()) {
    QMessageBox::warning(this, "Export plots", error);
  } else {
    showStatus(QString("Wrote %1 files into %2").arg(files.size()).arg(dir));
  }
}

bool MainWindow::startTraining() {
  if (session_->isActive() || !form_->isValid()) return false;
  const sae::RunConfig config = *form_->config();
  const QString runDir = TrainingSession::newRunDir(runsFolder_, config);
  dashboard_->clearRun();
  dashboard_->setSchedulePreview(config);
  log_->clear();
  progress_->setValue(0);
  progress_->setFormat("");
  appendLog(QString("Starting %1 at %2")
                .arg(presetName_.isEmpty() ? QString("the unsaved config") : presetName_,
                     QDateTime::currentDateTime().toString(Qt::ISODate)));
  if (!session_->start(config, runDir)) return false;
  updateButtons();
  return true;
}

bool MainWindow::continueRun(const QString& runDir) {
  if (session_->isActive()) return false;
  sae::RunConfig config;
  std::string checkpoint;
  try {
    config = sae::RunConfig::loadFile(QDir(runDir).filePath("config.json").toStdString());
    checkpoint = sae::TrainingRun::latestCheckpoint(runDir.toStdString());
  } catch (const std::exception& error) {
    QMessageBox::warning(
        this, "Continue run",
        "Cannot continue " + runDir + ":\n" + QString::fromStdString(error.what()));
    return false;
  }
  if (!confirmDiscard("continuing a run")) return false;
  showConfig(config, runDir);
  openedRunName_ = QFileInfo(QDir::cleanPath(runDir)).fileName();
  updateTitle();
  dashboard_->clearRun();
  dashboard_->setSchedulePreview(config);
  log_->clear();
  // The curves up to the checkpoint: a killed run may have logged later steps, which the
  // continued run logs again (checkpoint folders are named by tokens trained).
  const int64_t checkpointTokens =
      std::stoll(QFileInfo(QString::fromStdString(checkpoint)).fileName().toStdString());
  try {
    for (const auto& event :
         sae::MetricsJsonlReader::read(QDir(runDir).filePath("metrics.jsonl").toStdString()))
      if (event.n_training_tokens <= checkpointTokens) dashboard_->addMetrics(event);
  } catch (const std::exception& error) {
    appendLog(QString("Earlier metrics not shown: ") + error.what());
  }
  appendLog(QString("Continuing %1 from %2 at %3")
                .arg(runDir, QString::fromStdString(checkpoint),
                     QDateTime::currentDateTime().toString(Qt::ISODate)));
  if (!session_->resumeRun(config, runDir)) return false;
  updateButtons();
  return true;
}

void MainWindow::setRunsFolder(const QString& folder) {
  runsFolder_ = folder;
  if (runBrowser_->rootFolder() != folder) runBrowser_->setRootFolder(folder);
}

bool MainWindow::openRun(const QString& runDir) {
  const QString name = QFileInfo(QDir::cleanPath(runDir)).fileName();
  if (session_->isActive()) {
    showStatus("A run is training: stop it before opening " + name);
    return false;
  }
  const QDir dir(runDir);
  QStringList problems;
  std::optional<sae::RunConfig> config;
  try {
    config = sae::RunConfig::loadFile(QFile::encodeName(dir.filePath("config.json")).toStdString());
  } catch (const std::exception& error) {
    problems << QString("config not shown: %1").arg(QString::fromUtf8(error.what()));
  }
  std::vector<sae::MetricsEvent> events;
  bool haveMetrics = false;
  try {
    events = sae::MetricsJsonlReader::read(
        QFile::encodeName(dir.filePath("metrics.jsonl")).toStdString());
    haveMetrics = true;
  } catch (const std::exception& error) {
    problems << QString("curves not shown: %1").arg(QString::fromUtf8(error.what()));
  }
  if (!config && !haveMetrics) {
    for (const QString& problem : problems)
      appendLog("Cannot open " + runDir + ": " + problem);
    showStatus("Cannot open " + name + ": " + problems.join("; "));
    return false;
  }
  if (config) {
    if (!confirmDiscard("opening a run")) return false;
    showConfig(*config, runDir);
    // The config is the run's own, saved in its folder: nothing to lose when switching away.
    openedRunName_ = name;
    setDirty(false);
  }
  dashboard_->clearRun();
  if (config) dashboard_->setSchedulePreview(*config);
  log_->clear();
  appendLog(QString("Opened run %1 at %2")
                .arg(runDir, QDateTime::currentDateTime().toString(Qt::ISODate)));
  for (const auto& event : events)
    dashboard_->addMetrics(event);

  // Histograms: reading W_dec of a large SAE takes a moment.
  QGuiApplication::setOverrideCursor(Qt::WaitCursor);
  try {
    const sae::RunFolderHistogramsResult histograms =
        sae::RunFolderHistograms::read(QFile::encodeName(runDir).toStdString());
    for (const auto& event : histograms.histograms)
      dashboard_->addHistogram(event);
    appendLog("Histograms from " + QString::fromStdString(histograms.saeFolder));
    for (const auto& problem : histograms.problems)
      problems << QString::fromStdString(problem);
  } catch (const std::exception& error) {
    problems << QString("histograms not shown: %1").arg(QString::fromUtf8(error.what()));
  }
  QGuiApplication::restoreOverrideCursor();
  dashboard_->flush();

  // Progress and state as run.json last recorded them.
  progress_->setValue(0);
  progress_->setFormat("");
  progressText_->setText("tokens 0 / 0");
  stateLabel_->setText("idle");
  stateLabel_->setStyleSheet(QString());
  const QString manifestPath = dir.filePath(sae::RunManifest::kFileName);
  if (QFile::exists(manifestPath)) {
    try {
      const sae::RunManifestData run =
          sae::RunManifest::load(QFile::encodeName(manifestPath).toStdString());
      const double fraction = run.total_tokens > 0
                                  ? std::min(1.0, static_cast<double>(run.tokens_done) /
                                                      static_cast<double>(run.total_tokens))
                                  : 0.0;
      progress_->setValue(static_cast<int>(fraction * 1000));
      progress_->setFormat(QString("%1%").arg(fraction * 100, 0, 'f', 1));
      const QLocale english(QLocale::English);
      progressText_->setText(QString("tokens %1 / %2 | step %3/%4")
                                 .arg(english.toString(static_cast<qlonglong>(run.tokens_done)),
                                      english.toString(static_cast<qlonglong>(run.total_tokens)))
                                 .arg(run.step)
                                 .arg(run.total_steps));
      const RunListModel::RunInfo info =
          RunListModel::readRun(runDir, QDateTime::currentDateTimeUtc());
      stateLabel_->setText("opened: " + info.status);
      appendLog(QString("Status: %1%2")
                    .arg(info.status, info.message.isEmpty() ? QString() : " - " + info.message));
    } catch (const std::exception& error) {
      problems << QString::fromUtf8(error.what());
    }
  }
  for (const QString& problem : problems)
    appendLog("Problem: " + problem);
  showStatus(problems.isEmpty()
                 ? "Opened run " + name
                 : QString("Opened run %1; %2 (see the log)").arg(name, problems.first()));
  runBrowser_->selectRun(runDir);
  updateButtons();
  return true;
}

void MainWindow::onOverlayToggled(const QString& runDir, bool on) {
  const QString name = QFileInfo(QDir::cleanPath(runDir)).fileName();
  if (!on) {
    if (dashboard_->removeOverlay(runDir)) showStatus("Overlay removed: " + name);
    return;
  }
  QString error;
  if (dashboard_->overlayRun(runDir, &error)) {
    appendLog("Overlaid run " + runDir);
    showStatus("Overlaid " + name);
    return;
  }
  appendLog("Cannot overlay " + runDir + ": " + error);
  showStatus("Cannot overlay " + name + ": " + error);
  // The box follows the plots: nothing is drawn, so it is not checked.
  runBrowser_->model()->setRunChecked(runDir, false);
}

void MainWindow::onBatch(const TrainingBatch& batch) {
  for (const QString& line : batch.messages)
    appendLog(line);
  for (const auto& event : batch.metrics)
    dashboard_->addMetrics(event);
  for (const auto& event : batch.histograms)
    dashboard_->addHistogram(event);
  if (batch.hasProgress) {
    const auto& p = batch.progress;
    const double fraction =
        p.tokens_total > 0 ? static_cast<double>(p.tokens_done) / p.tokens_total : 0.0;
    progress_->setValue(static_cast<int>(fraction * 1000));
    progress_->setFormat(QString("%1%").arg(fraction * 100, 0, 'f', 1));
    // The last step may overshoot the budget (SAELens trains while tokens < total).
    const double remaining =
        p.tokens_per_second > 0
            ? std::max<int64_t>(0, p.tokens_total - p.tokens_done) / p.tokens_per_second
            : -1;
    const QLocale english(QLocale::English);
    progressText_->setText(QString("tokens %1 / %2 | %3 tok/s | %4 left | step %5/%6")
                               .arg(english.toString(static_cast<qlonglong>(p.tokens_done)),
                                    english.toString(static_cast<qlonglong>(p.tokens_total)),
                                    english.toString(p.tokens_per_second, 'f', 0),
                                    durationText(remaining))
                               .arg(p.step)
                               .arg(p.total_steps));
  }
}

void MainWindow::onSessionState(TrainingSession::State state) {
  stateLabel_->setText(TrainingSession::stateName(state));
  updateButtons();
  if (state == TrainingSession::State::Running) runBrowser_->refresh();  // its row appears
}

void MainWindow::onSessionEnded(TrainingSession::State outcome, const QString& message) {
  appendLog(message);
  stateLabel_->setText(TrainingSession::stateName(outcome));
  if (outcome == TrainingSession::State::Finished) {
    progress_->setValue(1000);
    progress_->setFormat("100%");
  }
  if (outcome == TrainingSession::State::Failed) {
    stateLabel_->setStyleSheet("color: #b00020; font-weight: bold;");
    // Non-modal: the app stays usable (and tests and the headless mode never block on it).
    auto* box =
        new QMessageBox(QMessageBox::Critical, "Training failed",
                        "The run failed:\n\n" + message + "\n\nRun folder: " + session_->runDir(),
                        QMessageBox::Ok, this);
    box->setObjectName("trainingFailedDialog");
    box->setAttribute(Qt::WA_DeleteOnClose);
    box->open();
  } else {
    stateLabel_->setStyleSheet(QString());
  }
  showStatus(message);
  updateButtons();
  // The run's row shows its new status (and a first run creates the runs folder).
  runBrowser_->refresh();
}

void MainWindow::appendLog(const QString& line) {
  log_->appendPlainText(line);
}

QString MainWindow::logText() const {
  return log_->toPlainText();
}

void MainWindow::showStatus(const QString& text) {
  statusBar()->showMessage(text, 10000);
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (!confirmDiscard("closing")) {
    event->ignore();
    return;
  }
  if (session_->isActive()) {
    appendLog("Stopping the run before closing: the current step finishes and is saved.");
    session_->stop();
  }
  QSettings settings;
  settings.setValue("window/geometry", saveGeometry());
  settings.setValue("window/plotLayout", dashboard_->saveLayout());
  event->accept();
}
