#pragma once
// The Runs tab: the run folders under a root folder (RunListModel) in a sortable tree, sweeps
// over their runs. Checking a run overlays its curves at once and unchecking removes them;
// Open (or a double-click) shows a run in the window, Continue resumes a stopped or killed run,
// Features... opens a finished run's feature browser. The browser only emits requests; the main
// window carries them out. The list follows the disk: a watcher on the root folder (and on
// sweeps and the run.json of running runs) rescans shortly after a change, and Refresh rescans.
#include <QString>
#include <QTimer>
#include <QWidget>

class QFileSystemWatcher;
class QLabel;
class QLineEdit;
class QPushButton;
class QSortFilterProxyModel;
class QTreeView;
class RunListModel;

class RunBrowser : public QWidget {
  Q_OBJECT

 public:
  explicit RunBrowser(QWidget* parent = nullptr);

  // Shows and rescans folder (does not emit rootFolderChosen).
  void setRootFolder(const QString& folder);
  QString rootFolder() const;
  void refresh();
  // While a run trains, Open and Continue are disabled (the window shows the live run).
  void setTrainingActive(bool active);

  RunListModel* model() const { return model_; }
  QTreeView* view() const { return view_; }
  // The selected row's run folder; "" when none or a sweep / not-a-run row is selected.
  QString currentRunDir() const;
  // Selects the row of runDir; false when it is not listed.
  bool selectRun(const QString& runDir);

 Q_SIGNALS:
  void openRequested(const QString& runDir);
  void continueRequested(const QString& runDir);
  void featuresRequested(const QString& runDir);
  void overlayToggled(const QString& runDir, bool on);
  // The user chose another root with "Choose..." (the window's runs folder follows it).
  void rootFolderChosen(const QString& folder);

 private:
  void updateButtons();
  void fitColumns();
  void updateWatches();
  void updateSummary();
  void chooseFolder();

  RunListModel* model_ = nullptr;
  QSortFilterProxyModel* proxy_ = nullptr;
  QTreeView* view_ = nullptr;
  QLineEdit* folderEdit_ = nullptr;
  QLabel* summary_ = nullptr;
  QPushButton* openButton_ = nullptr;
  QPushButton* continueButton_ = nullptr;
  QPushButton* featuresButton_ = nullptr;
  QFileSystemWatcher* watcher_ = nullptr;
  QTimer rescanTimer_;  // coalesces bursts of watcher events into one rescan
  bool trainingActive_ = false;
};
