// The Runs tab: RunListModel lists the run folders of a runs folder (statuses from run.json,
// "killed?" for a running run whose process is gone, the last logged values exactly as written,
// sweeps as parents of their runs, broken folders with the reason); checking runs overlays
// exactly their curves and unchecking removes them; Open shows a run's config, curves and
// histograms (decoder row norms and log10 density from final/ or the latest checkpoint).
// The run folders are written by hand: config.json with RunConfig::saveFile, metrics.jsonl and
// run.json as text, the safetensors files byte by byte (u64 header length, JSON header, F32 data).
#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QLineEdit>
#include <QPushButton>
#include <QSortFilterProxyModel>
#include <QStandardPaths>
#include <QStatusBar>
#include <QSysInfo>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTreeView>
#include <QtTest>

#include <cmath>
#include <cstring>

#include "ConfigForm.h"
#include "HistogramView.h"
#include "MainWindow.h"
#include "MetricPlot.h"
#include "PlotDashboard.h"
#include "RunBrowser.h"
#include "RunListModel.h"
#include "TrainingSession.h"
#include "analysis/Histogram.h"
#include "analysis/RunFolderHistograms.h"
#include "config/PresetLibrary.h"
#include "runs/RunManifest.h"

namespace {

sae::RunConfig tinyConfig(double l1, int64_t tokens) {
  sae::RunConfig config = sae::PresetLibrary::load("synthetic-demo");
  for (const char* kv :
       {"d_in=16", "expansion_factor=2", "train_batch_size=64", "context_size=16",
        "store_batch_size=2", "n_batches_in_buffer=4", "synthetic_n_features=32",
        "feature_sampling_window=20", "dead_feature_window=20", "wandb_log_frequency=5",
        "l1_warm_up_steps=10", "lr_decay_steps=0", "n_checkpoints=0", "num_threads=1"})
    config.applyOverride(kv);
  config.l1_coefficient = l1;
  config.training_tokens = tokens;
  return config;
}

void writeText(const QString& path, const QByteArray& text) {
  QDir().mkpath(QFileInfo(path).path());
  QFile file(path);
  QVERIFY2(file.open(QIODevice::WriteOnly | QIODevice::Truncate), qPrintable(path));
  file.write(text);
}

struct F32Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// The safetensors layout: little-endian u64 header size, JSON header padded with spaces to a
// multiple of 8, then the tensors' bytes back to back.
void writeSafetensors(const QString& path, const std::vector<F32Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  QByteArray data;
  for (const F32Tensor& t : tensors) {
    const auto begin = static_cast<uint64_t>(data.size());
    data.append(reinterpret_cast<const char*>(t.values.data()),
                static_cast<qsizetype>(t.values.size() * sizeof(float)));
    header[t.name] = {{"dtype", "F32"},
                      {"shape", t.shape},
                      {"data_offsets", {begin, static_cast<uint64_t>(data.size())}}};
  }
  std::string text = header.dump();
  while (text.size() % 8 != 0)
    text += ' ';
  QByteArray bytes(8, '\0');
  uint64_t size = text.size();
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>((size >> (8 * i)) & 0xff);
  bytes.append(text.data(), static_cast<qsizetype>(text.size()));
  bytes.append(data);
  writeText(path, bytes);
}

// An SAE folder with W_dec rows of known norms; returns those norms (computed in double from
// the float values, as a numpy reference would).
std::vector<double> writeSaeFolder(const QString& folder, int dIn, int dSae, float scale,
                                   std::vector<double>* logDensity) {
  std::vector<float> wDec(static_cast<size_t>(dSae * dIn)), wEnc(wDec.size());
  std::vector<double> norms;
  for (int r = 0; r < dSae; ++r) {
    double sum = 0;
    for (int c = 0; c < dIn; ++c) {
      const float v = scale * static_cast<float>(std::sin(0.37 * r + 1.3 * c) + 0.05 * r);
      wDec[static_cast<size_t>(r * dIn + c)] = v;
      wEnc[static_cast<size_t>(c * dSae + r)] = v;
      sum += static_cast<double>(v) * static_cast<double>(v);
    }
    norms.push_back(std::sqrt(sum));
  }
  writeSafetensors(folder + "/sae_weights.safetensors",
                   {{"W_enc", {dIn, dSae}, wEnc},
                    {"b_enc", {dSae}, std::vector<float>(static_cast<size_t>(dSae), 0.f)},
                    {"W_dec", {dSae, dIn}, wDec},
                    {"b_dec", {dIn}, std::vector<float>(static_cast<size_t>(dIn), 0.f)}});
  std::vector<float> density;
  logDensity->clear();
  for (int r = 0; r < dSae; ++r) {
    density.push_back(-1.0f - 0.11f * static_cast<float>(r % 17));
    logDensity->push_back(density.back());
  }
  writeSafetensors(folder + "/sparsity.safetensors", {{"sparsity", {dSae}, density}});
  return norms;
}

struct RunSpec {
  QString status = "finished";
  QString message;
  int64_t tokensDone = 6400, tokensTotal = 6400;
  QString startTime = "2024-05-01T12:00:00Z";
  QString updatedTime;  // "" = startTime
  int64_t pid = 0;
  double l1 = 2.75;
  int lines = 8;
  double lastMse = 0.0123456789012345;
  bool metrics = true;
};

// config.json, metrics.jsonl (steps 4, 9, ...; mse falls towards lastMse) and run.json.
void writeRun(const QString& dir, const RunSpec& spec) {
  QDir().mkpath(dir);
  tinyConfig(spec.l1, spec.tokensTotal).saveFile(QDir(dir).filePath("config.json").toStdString());
  if (spec.metrics) {
    QByteArray text;
    for (int i = 0; i < spec.lines; ++i) {
      const bool last = i == spec.lines - 1;
      nlohmann::json line = {{"step", 4 + 5 * i},
                             {"n_training_tokens", 64 * (5 + 5 * i)},
                             {"wall_seconds", 0.25 * (i + 1)},
                             {"losses/mse_loss", last ? spec.lastMse : 0.5 / (i + 1)},
                             {"losses/l1_loss", 3.0 - 0.1 * i},
                             {"metrics/l0", 10.0 - i},
                             {"metrics/explained_variance", 0.1 * i}};
      text += QByteArray::fromStdString(line.dump()) + '\n';
    }
    writeText(QDir(dir).filePath("metrics.jsonl"), text);
  }
  sae::RunManifestData data;
  data.status = spec.status.toStdString();
  data.message = spec.message.toStdString();
  data.tokens_done = spec.tokensDone;
  data.total_tokens = spec.tokensTotal;
  data.step = spec.tokensDone / 64;
  data.total_steps = spec.tokensTotal / 64;
  data.start_time = spec.startTime.toStdString();
  data.end_time = spec.status == "running" ? "" : spec.startTime.toStdString();
  data.updated_time =
      (spec.updatedTime.isEmpty() ? spec.startTime : spec.updatedTime).toStdString();
  data.app_version = "test";
  data.libtorch_version = "1.13";
  data.hostname = QSysInfo::machineHostName().toStdString();
  data.pid = spec.pid;
  writeText(QDir(dir).filePath("run.json"),
            QByteArray::fromStdString(sae::RunManifest::toJson(data)));
}

QString isoNow() {
  return QDateTime::currentDateTimeUtc().toString(Qt::ISODate);
}

QStringList overlayLabels(MetricPlot* plot) {
  QStringList labels;
  for (int i = 1; i < plot->seriesCount(); ++i)  // series 0: the main run
    labels << plot->seriesLabel(i);
  labels.sort();
  return labels;
}

void compareBins(const sae::HistogramBins& shown, const std::vector<double>& values) {
  const sae::HistogramBins expected = sae::Histogram::autoBins(values);
  QCOMPARE(shown.counts, expected.counts);
  QCOMPARE(shown.edges.size(), expected.edges.size());
  for (size_t i = 0; i < expected.edges.size(); ++i)
    QVERIFY2(
        std::abs(shown.edges[i] - expected.edges[i]) < 1e-6,
        qPrintable(QString("edge %1: %2 vs %3").arg(i).arg(shown.edges[i]).arg(expected.edges[i])));
}

}  // namespace

class RunBrowserTest : public QObject {
  Q_OBJECT

  QTemporaryDir tmp_;
  QString root_;
  std::vector<double> alphaNorms_, alphaDensity_, betaNorms_, betaDensity_;

  QString run(const QString& name) const { return QDir(root_).filePath(name); }

  MainWindow::Options options() const {
    MainWindow::Options o;
    o.runsFolder = root_;
    o.userPresetsFolder = tmp_.filePath("presets");
    o.restoreLastPreset = false;
    return o;
  }

  static QModelIndex cell(RunListModel* model, const QString& dir, int column) {
    const QModelIndex index = model->indexOfRun(dir);
    return index.siblingAtColumn(column);
  }

 private Q_SLOTS:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(tmp_.isValid());
    root_ = tmp_.filePath("runs");
    // alpha: finished with final/.
    writeRun(run("alpha-run"), RunSpec{});
    alphaNorms_ = writeSaeFolder(run("alpha-run/final"), 16, 32, 0.25f, &alphaDensity_);
    // beta: stopped half way, a checkpoint only.
    RunSpec beta;
    beta.status = "stopped";
    beta.message = "stopped by the user";
    beta.tokensDone = 3200;
    beta.startTime = "2024-05-02T08:30:00Z";
    beta.l1 = 5;
    beta.lines = 5;
    beta.lastMse = 0.0625;
    writeRun(run("beta-run"), beta);
    writeSaeFolder(run("beta-run/checkpoints/1600"), 16, 32, 0.5f, &betaDensity_);
    betaNorms_ = writeSaeFolder(run("beta-run/checkpoints/3200"), 16, 32, 0.75f, &betaDensity_);
    // gamma: run.json says running, on this host, with a process id that does not exist.
    RunSpec gamma;
    gamma.status = "running";
    gamma.tokensDone = 1280;
    gamma.startTime = "2024-05-03T09:00:00Z";
    gamma.updatedTime = isoNow();
    gamma.pid = 999999999;
    gamma.lastMse = 0.03125;
    writeRun(run("gamma-run"), gamma);
    // A sweep of two runs: one alive (this process, fresh run.json), one finished.
    writeText(run("sweep-l1/sweep.json"), R"({"l1_coefficient": [1, 3]})");
    RunSpec live;
    live.status = "running";
    live.tokensDone = 640;
    live.updatedTime = isoNow();
    live.pid = QCoreApplication::applicationPid();
    live.l1 = 1;
    live.lastMse = 0.5;
    live.lines = 3;
    writeRun(run("sweep-l1/l1-1"), live);
    RunSpec done;
    done.l1 = 3;
    done.lastMse = 0.25;
    writeRun(run("sweep-l1/l1-3"), done);
    // Broken: run.json is not JSON. Not a run: an empty folder.
    RunSpec broken;
    broken.metrics = false;
    writeRun(run("broken-run"), broken);
    writeText(run("broken-run/run.json"), "{ not json");
    QVERIFY(QDir().mkpath(run("notes")));
  }

  void modelListsRunsWithTheirValues() {
    RunListModel model;
    model.setRootFolder(root_);
    // alpha, beta, broken, gamma, notes, sweep-l1 at the top; the sweep's two runs under it.
    QCOMPARE(model.rowCount(), 6);
    QCOMPARE(model.runCount(), 6);  // alpha beta broken gamma + two sweep members

    QCOMPARE(cell(&model, run("alpha-run"), RunListModel::Status).data().toString(),
             QString("finished"));
    QCOMPARE(cell(&model, run("alpha-run"), RunListModel::Tokens).data().toString(),
             QString("6,400 / 6,400"));
    // The last logged MSE exactly as written, and as the cell shows it.
    QCOMPARE(
        cell(&model, run("alpha-run"), RunListModel::Mse).data(RunListModel::ValueRole).toDouble(),
        0.0123456789012345);
    QCOMPARE(cell(&model, run("alpha-run"), RunListModel::Mse).data().toString(),
             QString("0.01235"));
    QCOMPARE(
        cell(&model, run("alpha-run"), RunListModel::L0).data(RunListModel::ValueRole).toDouble(),
        3.0);
    QCOMPARE(cell(&model, run("alpha-run"), RunListModel::ExplainedVariance)
                 .data(RunListModel::ValueRole)
                 .toDouble(),
             0.1 * 7);
    // No CE evals in a synthetic run: the cell stays empty.
    QCOMPARE(cell(&model, run("alpha-run"), RunListModel::CeLossScore).data().toString(),
             QString());
    QCOMPARE(cell(&model, run("alpha-run"), RunListModel::Started)
                 .data(RunListModel::SortRole)
                 .toLongLong(),
             QDateTime(QDate(2024, 5, 1), QTime(12, 0), Qt::UTC).toMSecsSinceEpoch());

    QCOMPARE(cell(&model, run("beta-run"), RunListModel::Status).data().toString(),
             QString("stopped"));
    QCOMPARE(cell(&model, run("beta-run"), RunListModel::Tokens).data().toString(),
             QString("3,200 / 6,400"));
    QVERIFY(cell(&model, run("beta-run"), 0)
                .data(Qt::ToolTipRole)
                .toString()
                .contains("stopped by the user"));
    QCOMPARE(
        cell(&model, run("beta-run"), RunListModel::Mse).data(RunListModel::ValueRole).toDouble(),
        0.0625);

    // Running on this host but its process is gone.
    QCOMPARE(cell(&model, run("gamma-run"), RunListModel::Status).data().toString(),
             QString("killed?"));
    QVERIFY(
        cell(&model, run("gamma-run"), 0).data(Qt::ToolTipRole).toString().contains("999999999"));

    // The sweep: a parent row over its two runs; the one whose process is alive stays running.
    const QModelIndex sweep = model.index(5, 0);
    QCOMPARE(sweep.data().toString(), QString("sweep-l1"));
    QCOMPARE(RunListModel::Kind(sweep.data(RunListModel::KindRole).toInt()),
             RunListModel::Kind::Sweep);
    QCOMPARE(model.rowCount(sweep), 2);
    QCOMPARE(model.index(0, 0, sweep).data().toString(), QString("l1-1"));
    QCOMPARE(model.index(1, 0, sweep).data().toString(), QString("l1-3"));
    QCOMPARE(cell(&model, run("sweep-l1/l1-1"), RunListModel::Status).data().toString(),
             QString("running"));
    QCOMPARE(cell(&model, run("sweep-l1/l1-3"), RunListModel::Mse)
                 .data(RunListModel::ValueRole)
                 .toDouble(),
             0.25);
    QCOMPARE(model.index(5, RunListModel::Status).data().toString(),
             QString("1 finished, 1 running"));

    // Broken and not-a-run folders are listed with the reason.
    const QModelIndex broken = cell(&model, run("broken-run"), RunListModel::Status);
    QCOMPARE(broken.data().toString(), QString("unreadable"));
    QVERIFY2(broken.data(Qt::ToolTipRole).toString().contains("run.json"),
             qPrintable(broken.data(Qt::ToolTipRole).toString()));
    QCOMPARE(model.index(4, 0).data().toString(), QString("notes"));
    QCOMPARE(model.index(4, RunListModel::Status).data().toString(), QString("not a run"));
    QVERIFY(model.index(4, 0).data(Qt::ToolTipRole).toString().contains("not a run folder"));
    QVERIFY(!(model.index(4, 0).flags() & Qt::ItemIsUserCheckable));

    // Numeric sorting: by last MSE ascending, alpha (0.0123) comes first and gamma (0.031) next.
    QSortFilterProxyModel proxy;
    proxy.setSourceModel(&model);
    proxy.setSortRole(RunListModel::SortRole);
    proxy.sort(RunListModel::Mse, Qt::DescendingOrder);
    QCOMPARE(proxy.index(0, 0).data().toString(), QString("beta-run"));
    proxy.sort(RunListModel::Started, Qt::DescendingOrder);
    QCOMPARE(proxy.index(0, 0).data().toString(), QString("gamma-run"));
  }

  void refreshFindsNewRunsAndKeepsRows() {
    QTemporaryDir dir;
    RunListModel model;
    model.setRootFolder(dir.path());
    QCOMPARE(model.rowCount(), 0);
    writeRun(dir.filePath("one"), RunSpec{});
    model.refresh();
    QCOMPARE(model.rowCount(), 1);
    QVERIFY(model.setRunChecked(dir.filePath("one"), true));
    // Large token counts are shortened (three significant digits), the tooltip has them exactly.
    RunSpec big;
    big.tokensDone = 102400;
    big.tokensTotal = 300'000'000;
    writeRun(dir.filePath("two"), big);
    model.refresh();
    QCOMPARE(cell(&model, dir.filePath("two"), RunListModel::Tokens).data().toString(),
             QString("102k / 300M"));
    QVERIFY(cell(&model, dir.filePath("two"), 0)
                .data(Qt::ToolTipRole)
                .toString()
                .contains("102,400 of 300,000,000"));
    QVERIFY(QDir(dir.filePath("two")).removeRecursively());
    model.refresh();
    QCOMPARE(model.rowCount(), 1);
    // Same folders: updated in place, the check stays.
    RunSpec more;
    more.lastMse = 0.001;
    writeRun(dir.filePath("one"), more);
    QSignalSpy removed(&model, &QAbstractItemModel::rowsRemoved);
    model.refresh();
    QCOMPARE(removed.count(), 0);
    QCOMPARE(cell(&model, dir.filePath("one"), RunListModel::Mse)
                 .data(RunListModel::ValueRole)
                 .toDouble(),
             0.001);
    QVERIFY(model.isChecked(dir.filePath("one")));
    // A checked run that is deleted is unchecked (its overlay goes).
    QSignalSpy toggled(&model, &RunListModel::runCheckedChanged);
    QVERIFY(QDir(dir.filePath("one")).removeRecursively());
    model.refresh();
    QCOMPARE(model.rowCount(), 0);
    QCOMPARE(toggled.count(), 1);
    QCOMPARE(toggled.first().at(1).toBool(), false);
  }

  void checkingRunsOverlaysExactlyThem() {
    MainWindow window(options());
    auto* tabs = window.findChild<QTabWidget*>("leftTabs");
    QVERIFY(tabs);
    QCOMPARE(tabs->count(), 2);
    QCOMPARE(tabs->tabText(0), QString("Config"));
    QCOMPARE(tabs->tabText(1), QString("Runs"));
    QCOMPARE(tabs->widget(1)->objectName(), QString("runBrowser"));
    RunBrowser* browser = window.runBrowser();
    QCOMPARE(browser->rootFolder(), root_);
    QCOMPARE(browser->findChild<QLineEdit*>("runsFolderEdit")->text(),
             QDir::toNativeSeparators(root_));
    RunListModel* model = browser->model();
    MetricPlot* mse = window.dashboard()->metricPlot("mse_loss");
    QCOMPARE(mse->seriesCount(), 1);

    // Checked the way the view's checkbox does it.
    QVERIFY(model->setData(model->indexOfRun(run("alpha-run")), Qt::Checked, Qt::CheckStateRole));
    QVERIFY(model->setData(model->indexOfRun(run("beta-run")), Qt::Checked, Qt::CheckStateRole));
    QCOMPARE(overlayLabels(mse), QStringList({"alpha-run", "beta-run"}));
    QCOMPARE(mse->pointCount(1) + mse->pointCount(2), 8 + 5);
    QCOMPARE(overlayLabels(window.dashboard()->metricPlot("l0")),
             QStringList({"alpha-run", "beta-run"}));
    QCOMPARE(model->checkedRuns().size(), 2);

    QVERIFY(model->setData(model->indexOfRun(run("alpha-run")), Qt::Unchecked, Qt::CheckStateRole));
    QCOMPARE(overlayLabels(mse), QStringList({"beta-run"}));
    QCOMPARE(overlayLabels(window.dashboard()->metricPlot("l0")), QStringList({"beta-run"}));

    // A sweep's box checks all its runs, and unchecks them again.
    const QModelIndex sweep = model->index(5, 0);
    QVERIFY(model->setData(sweep, Qt::Checked, Qt::CheckStateRole));
    QCOMPARE(overlayLabels(mse), QStringList({"beta-run", "l1-1", "l1-3"}));
    QCOMPARE(sweep.data(Qt::CheckStateRole).toInt(), int(Qt::Checked));
    QVERIFY(
        model->setData(model->indexOfRun(run("sweep-l1/l1-3")), Qt::Unchecked, Qt::CheckStateRole));
    QCOMPARE(sweep.data(Qt::CheckStateRole).toInt(), int(Qt::PartiallyChecked));
    QVERIFY(model->setData(sweep, Qt::Unchecked, Qt::CheckStateRole));
    QVERIFY(model->setData(model->indexOfRun(run("beta-run")), Qt::Unchecked, Qt::CheckStateRole));
    QCOMPARE(mse->seriesCount(), 1);

    // A run with no metrics cannot be overlaid: the box does not stay checked, the reason shows.
    model->setData(model->indexOfRun(run("broken-run")), Qt::Checked, Qt::CheckStateRole);
    QVERIFY(!model->isChecked(run("broken-run")));
    QCOMPARE(mse->seriesCount(), 1);
    QVERIFY2(window.statusBar()->currentMessage().contains("broken-run"),
             qPrintable(window.statusBar()->currentMessage()));
  }

  void openShowsConfigCurvesAndHistograms() {
    MainWindow window(options());
    QVERIFY(window.openRun(run("alpha-run")));
    QCOMPARE(window.form()->config()->l1_coefficient, 2.75);
    QCOMPARE(window.form()->config()->training_tokens, int64_t(6400));
    QCOMPARE(window.form()->config()->d_in, int64_t(16));
    QVERIFY(!window.hasUnsavedChanges());
    QVERIFY(window.windowTitle().contains("alpha-run"));
    window.dashboard()->flush();
    MetricPlot* mse = window.dashboard()->metricPlot("mse_loss");
    QCOMPARE(mse->seriesCount(), 1);  // the main curve, not an overlay
    QCOMPARE(mse->pointCount(0), 8);
    // The schedule preview of the run's config: one point per step, the coefficient at the end.
    QCOMPARE(window.dashboard()->schedulePlot("schedule_l1_coefficient")->pointCount(0), 100);

    HistogramView* norms = window.dashboard()->histogramView("weights/W_dec_norms");
    QVERIFY(norms && norms->hasData());
    QCOMPARE(norms->snapshotCount(), 1);
    compareBins(norms->currentBins(), alphaNorms_);
    HistogramView* density = window.dashboard()->histogramView("plots/feature_density_line_chart");
    QVERIFY(density && density->hasData());
    compareBins(density->currentBins(), alphaDensity_);

    // beta has no final/: the latest checkpoint (3200 tokens = step 50) gives its histograms.
    QVERIFY(window.openRun(run("beta-run")));
    QCOMPARE(window.form()->config()->l1_coefficient, 5.0);
    QCOMPARE(norms->snapshotCount(), 1);
    compareBins(norms->currentBins(), betaNorms_);
    QVERIFY(norms->titleText().size() > 0);

    // A broken folder: nothing to show, a message and no crash.
    QVERIFY(!window.openRun(run("notes")));
    QVERIFY(window.statusBar()->currentMessage().contains("notes"));
  }

  void histogramValuesAreTheRowNorms() {
    const auto result = sae::RunFolderHistograms::read(run("alpha-run").toStdString());
    QCOMPARE(QString::fromStdString(result.saeFolder), run("alpha-run/final"));
    QCOMPARE(result.histograms.size(), size_t(2));
    QCOMPARE(result.histograms[0].name, std::string("weights/W_dec_norms"));
    QCOMPARE(result.histograms[0].step, int64_t(100));  // run.json's step
    QCOMPARE(result.histograms[0].values.size(), alphaNorms_.size());
    for (size_t i = 0; i < alphaNorms_.size(); ++i)
      QVERIFY(std::abs(result.histograms[0].values[i] - alphaNorms_[i]) < 1e-6);
    QCOMPARE(result.histograms[1].name, std::string("plots/feature_density_line_chart"));
    for (size_t i = 0; i < alphaDensity_.size(); ++i)
      QCOMPARE(result.histograms[1].values[i], alphaDensity_[i]);  // float -> double, exact
    const auto beta = sae::RunFolderHistograms::read(run("beta-run").toStdString());
    QCOMPARE(QString::fromStdString(beta.saeFolder), run("beta-run/checkpoints/3200"));
    QCOMPARE(beta.histograms[0].step, int64_t(50));
    QVERIFY_THROWS_EXCEPTION(std::runtime_error,
                             sae::RunFolderHistograms::read(run("gamma-run").toStdString()));
  }

  // Open is refused while a run trains; when it stops, its row shows it stopped.
  void openRefusedWhileTrainingAndListRefreshesAfter() {
    QTemporaryDir dir;
    MainWindow::Options o = options();
    o.runsFolder = dir.filePath("runs");
    MainWindow window(o);
    const QString runDir = dir.filePath("runs/live");
    QVERIFY(window.session()->start(tinyConfig(1, 1'000'000'000), runDir));
    QVERIFY(!window.openRun(run("alpha-run")));
    QVERIFY2(window.statusBar()->currentMessage().contains("training"),
             qPrintable(window.statusBar()->currentMessage()));
    QVERIFY(!window.findChild<QPushButton*>("openRunButton")->isEnabled());
    QTRY_VERIFY_WITH_TIMEOUT(QFile::exists(runDir + "/run.json"), 30000);
    window.session()->stop();
    QTRY_COMPARE_WITH_TIMEOUT(window.session()->state(), TrainingSession::State::Stopped, 30000);
    RunListModel* model = window.runBrowser()->model();
    QVERIFY(model->indexOfRun(runDir).isValid());
    QCOMPARE(cell(model, runDir, RunListModel::Status).data().toString(), QString("stopped"));
    // Selecting it enables Continue (a stopped run) and Open again.
    QVERIFY(window.runBrowser()->selectRun(runDir));
    QVERIFY(window.findChild<QPushButton*>("openRunButton")->isEnabled());
    QVERIFY(window.findChild<QPushButton*>("continueSelectedRunButton")->isEnabled());
  }
};

QTEST_MAIN(RunBrowserTest)
#include "tst_ui_run_browser.moc"
