#pragma once
// The feature browser window of a trained run (workbench-ux.md "Feature dashboards"): left a
// sortable, searchable table of the SAE's features; right the selected feature's density and
// activation statistics, a histogram of its activations, its top contexts with the firing token
// highlighted, and the tokens it promotes and suppresses (W_dec[f] . W_U).
//
// The figures come from sae::FeatureBrowserData, computed off the GUI thread (QtConcurrent) and
// cached as <run>/features.json; a cache made from other weights or options is computed again.
#include <QFutureWatcher>
#include <QString>
#include <QWidget>

#include <atomic>
#include <memory>

#include "analysis/FeatureBrowserData.h"

class FeatureTableModel;
class QCPBars;
class QCustomPlot;
class QLabel;
class QLineEdit;
class QPushButton;
class QSortFilterProxyModel;
class QSplitter;
class QTableView;
class QTableWidget;
class QTextBrowser;

class FeatureBrowser : public QWidget {
  Q_OBJECT

 public:
  explicit FeatureBrowser(const QString& runDir, QWidget* parent = nullptr);
  // Cancels a computation still running and waits for it.
  ~FeatureBrowser() override;

  // Loads runDir/features.json when it is current for these options, else computes it in the
  // background and writes it. `recompute` skips the cache.
  void start(const sae::FeatureBrowserOptions& options = {}, bool recompute = false);
  // Shows given data (tests, and the end of start()).
  void setData(std::shared_ptr<const sae::FeatureBrowserData> data);
  // Selects a feature in the table and shows it; false when it is not there (filtered out).
  bool showFeature(int64_t index);

  bool isBusy() const;
  QString runDir() const { return runDir_; }
  QString errorText() const { return errorText_; }
  int64_t currentFeature() const { return current_; }
  FeatureTableModel* tableModel() const { return model_; }
  QSortFilterProxyModel* proxyModel() const { return proxy_; }
  QTableView* tableView() const { return table_; }
  QLineEdit* searchBox() const { return search_; }
  QTextBrowser* contextsView() const { return contexts_; }
  QTableWidget* positiveLogitsView() const { return positive_; }
  QTableWidget* negativeLogitsView() const { return negative_; }
  QCPBars* histogramBars() const { return bars_; }

  // The HTML of a feature's contexts: one paragraph per context, the activation first, token
  // text escaped, whitespace visible, the firing token highlighted.
  static QString contextsHtml(const sae::FeatureBrowserData& data,
                              const sae::FeatureRecord& record);

 Q_SIGNALS:
  // The data is shown (ok) or the computation failed (errorText()).
  void finished(bool ok);

 private:
  struct Outcome {
    std::shared_ptr<const sae::FeatureBrowserData> data;
    QString error;
    QString note;  // e.g. "read from features.json" or why the cache could not be written
  };

  void buildUi();
  void onFinished();
  void onProgress(qint64 done, qint64 total, const QString& message);
  void onSelectionChanged();
  void showRecord(const sae::FeatureRecord& record);
  void showError(const QString& message);
  void fillLogits(QTableWidget* table, const std::vector<sae::LogitEffect>& effects);
  QString summaryText() const;

  QString runDir_;
  sae::FeatureBrowserOptions options_;
  std::shared_ptr<const sae::FeatureBrowserData> data_;
  std::shared_ptr<std::atomic<bool>> cancel_;
  QFutureWatcher<Outcome>* watcher_;
  QString errorText_;
  QString note_;
  int64_t current_ = -1;

  FeatureTableModel* model_;
  QSortFilterProxyModel* proxy_;
  QLabel* summary_;
  QLabel* status_;
  QPushButton* recompute_;
  QSplitter* split_;
  QLineEdit* search_;
  QTableView* table_;
  QLabel* title_;
  QLabel* stats_;
  QCustomPlot* histogram_;
  QCPBars* bars_;
  QTextBrowser* contexts_;
  QLabel* logitNote_;
  QTableWidget* positive_;
  QTableWidget* negative_;
};
