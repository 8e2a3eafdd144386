#pragma once
// The workbench window: preset bar, a left pane with the config form (and its derived values)
// and the run browser as tabs, the plot dashboard, run controls with progress, and the log.
// Training runs on a TrainingSession (worker thread); this window only touches widgets on the GUI
// thread.
#include <QMainWindow>
#include <QString>

#include <nlohmann/json.hpp>

#include "PresetStore.h"
#include "TrainingBatch.h"
#include "TrainingSession.h"

class ConfigForm;
class DerivedValuesPanel;
class PlotDashboard;
class QComboBox;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSplitter;
class QTabWidget;
class RunBrowser;

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  struct Options {
    QString runsFolder;         // empty: TrainingSession::defaultRunsFolder()
    QString userPresetsFolder;  // empty: PresetStore::defaultFolder()
    bool restoreLastPreset = true;
  };

  explicit MainWindow(const Options& options, QWidget* parent = nullptr);
  MainWindow() : MainWindow(Options{}) {}
  ~MainWindow() override;

  // Shows a built-in ("builtin") or user preset in the form; false (with a status message) when
  // it cannot be read.
  bool openPreset(const QString& name, bool builtIn);
  // Shows a config that came from the command line (no preset selected, marked unsaved).
  void showConfig(const sae::RunConfig& config, const QString& origin);
  // Starts training the form's config; false when the form is invalid or a run is active.
  bool startTraining();
  // Continues the stopped or killed run folder runDir from its latest checkpoint: shows its
  // config and the curves logged up to that checkpoint, then trains on. False (with a dialog
  // saying why) when the folder cannot be resumed or a run is active.
  bool continueRun(const QString& runDir);
  // Shows the saved run folder runDir as the window's run: its config in the form, its
  // metrics.jsonl curves as the main curves (overlays stay), the schedule preview of its config
  // and the decoder-norm and feature-density histograms of final/ or its latest checkpoint.
  // Refused (status message) while a run trains. What cannot be read is reported in the status
  // bar and the log; false when neither the config nor the curves could be read.
  bool openRun(const QString& runDir);
  // Where new runs go and whose runs the Runs tab lists.
  void setRunsFolder(const QString& folder);
  // Opens the feature browser of runDir in a window of its own.
  void openFeatureBrowserFor(const QString& runDir);

  ConfigForm* form() const { return form_; }
  TrainingSession* session() const { return session_; }
  PlotDashboard* dashboard() const { return dashboard_; }
  RunBrowser* runBrowser() const { return runBrowser_; }
  QTabWidget* leftTabs() const { return leftTabs_; }
  bool hasUnsavedChanges() const { return dirty_; }
  QString currentPresetName() const { return presetName_; }
  QString runsFolder() const { return runsFolder_; }
  PresetStore& presetStore() { return store_; }
  // The log panel's text.
  QString logText() const;

 protected:
  void closeEvent(QCloseEvent* event) override;

 private:
  void buildUi();
  void refreshPresetList();
  void setDirty(bool dirty);
  void updateTitle();
  void updateButtons();
  // Save / Discard / Cancel when the form has unsaved edits; true when it is fine to go on.
  bool confirmDiscard(const QString& action);
  void onFormEdited();
  void onFormValidity(bool valid);
  void onPresetChosen(int index);
  void newPreset();
  bool savePreset();
  bool savePresetAs();
  void renamePreset();
  void deletePreset();
  void importPreset();
  void exportPreset();
  void overlayRun();
  // A run's checkbox in the Runs tab: overlay it, or remove its overlay.
  void onOverlayToggled(const QString& runDir, bool on);
  // Asks for a run folder and opens its feature browser in a window of its own.
  void openFeatureBrowser();
  void exportPlots();
  void onBatch(const TrainingBatch& batch);
  void onSessionState(TrainingSession::State state);
  void onSessionEnded(TrainingSession::State outcome, const QString& message);
  void appendLog(const QString& line);
  void showStatus(const QString& text);

  Options options_;
  PresetStore store_;
  QString runsFolder_;
  TrainingSession* session_ = nullptr;
  ConfigForm* form_ = nullptr;
  DerivedValuesPanel* derived_ = nullptr;
  PlotDashboard* dashboard_ = nullptr;
  QTabWidget* leftTabs_ = nullptr;
  QSplitter* split_ = nullptr;
  int configPaneWidth_ = 0;  // the left pane's width on the Config tab, restored on return
  RunBrowser* runBrowser_ = nullptr;
  QComboBox* presets_ = nullptr;
  QPushButton* startButton_ = nullptr;
  QPushButton* continueButton_ = nullptr;
  QPushButton* pauseButton_ = nullptr;
  QPushButton* stopButton_ = nullptr;
  QPushButton* saveButton_ = nullptr;
  QPushButton* renameButton_ = nullptr;
  QPushButton* deleteButton_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* progressText_ = nullptr;
  QLabel* stateLabel_ = nullptr;
  QLabel* validity_ = nullptr;
  QPlainTextEdit* log_ = nullptr;
  QString presetName_;     // empty: not a saved preset
  QString openedRunName_;  // the run folder the form shows (Open / Continue); "" otherwise
  bool presetBuiltIn_ = false;
  bool dirty_ = false;
  bool switchingPreset_ = false;
};
