#pragma once
// The run folders under a root folder as a tree model for the Runs tab (TensorBoard's runs
// selector, W&B's run table): one row per run folder, a sweep folder (sweep.json, or any folder
// whose subfolders are runs) as a parent row over its member runs. Columns: name, status
// (run.json; a "running" run that is no longer alive shows as "killed?"), tokens done / total,
// start time and the last logged MSE, L0, explained variance and CE loss score (metrics.jsonl).
// Column 0 carries a checkbox per run (checked = overlaid on the plots); checking a sweep row
// checks all its runs. Folders that cannot be read are listed with the reason, never dropped.
// Refresh rescans the disk; a scan that finds the same folders updates the rows in place, so
// the view keeps its selection, expansion and scroll position.
#include <QDateTime>
#include <QSet>
#include <QStandardItemModel>
#include <QString>

#include <optional>
#include <vector>

class RunListModel : public QStandardItemModel {
  Q_OBJECT

 public:
  enum Column { Name, Status, Tokens, Started, Mse, L0, ExplainedVariance, CeLossScore, Columns };
  enum Role {
    RunDirRole = Qt::UserRole + 1,  // the folder's absolute path (every row)
    SortRole,                       // numbers for numeric columns, so sorting is numeric
    KindRole,                       // int(Kind)
    StatusRole,                     // the status word (column 0), e.g. "killed?"
    ValueRole,                      // the raw double of a metric column (NaN when not logged)
  };
  enum class Kind { Run, Sweep, NotARun };

  // What one folder says about its run (or, for a sweep, its members).
  struct RunInfo {
    Kind kind = Kind::Run;
    QString dir;   // absolute and clean
    QString name;  // the folder's name
    // "running", "finished", "stopped", "failed", "killed?", "unknown" (no run.json),
    // "unreadable" (the folder's files cannot be read) or "" (sweep / not a run).
    QString status;
    QString message;  // run.json's message, or why the status is what it is
    QString problem;  // what could not be read, naming the file; "" when everything was read
    qint64 tokensDone = -1, tokensTotal = -1;                       // -1: unknown
    QDateTime started;                                              // invalid when unknown
    std::optional<double> mse, l0, explainedVariance, ceLossScore;  // NaN: logged as null
    std::vector<RunInfo> members;                                   // a sweep's runs
  };

  // A running run whose run.json was not rewritten for this long (and whose process cannot be
  // checked because it ran on another host) shows as "killed?". run.json is rewritten at least
  // every 10 s while a run makes progress.
  static constexpr qint64 kStaleSeconds = 120;

  explicit RunListModel(QObject* parent = nullptr);

  // Sets the root and rescans it.
  void setRootFolder(const QString& folder);
  QString rootFolder() const { return root_; }
  // Rescans the root folder. Checked runs that are gone are unchecked (runCheckedChanged).
  void refresh();

  // Reads one run folder; never throws (problems go into RunInfo::problem). `now` decides
  // staleness.
  static RunInfo readRun(const QString& dir, const QDateTime& now);
  // The top level of root: runs, sweeps (with their members) and folders that are neither.
  static std::vector<RunInfo> scan(const QString& root, const QDateTime& now);

  // The run of a row (source-model index), or null.
  const RunInfo* info(const QModelIndex& index) const;
  QModelIndex indexOfRun(const QString& runDir) const;  // column 0; invalid when not listed
  QStringList checkedRuns() const;
  bool isChecked(const QString& runDir) const;
  // Checks or unchecks a listed run (emits runCheckedChanged when it changes).
  bool setRunChecked(const QString& runDir, bool checked);
  // Number of runs listed, sweep members included (not sweep or not-a-run rows).
  int runCount() const;

  bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;

 Q_SIGNALS:
  void runCheckedChanged(const QString& runDir, bool checked);
  void refreshed();

 private:
  void rebuild();
  void fillRow(const QList<QStandardItem*>& row, const RunInfo& info);
  QList<QStandardItem*> makeRow(const RunInfo& info);
  void updateSweepCheckState(QStandardItem* sweep);
  static bool sameLayout(const std::vector<RunInfo>& a, const std::vector<RunInfo>& b);

  QString root_;
  std::vector<RunInfo> runs_;
  QSet<QString> checked_;
  bool updating_ = false;  // setData calls from fillRow are not user checks
};
