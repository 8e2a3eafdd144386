// The feature browser's widgets: the table model sorts by density and max activation and the
// search box filters by feature index and context text (hand-built data, no training); the
// detail pane escapes token text, shows whitespace and highlights the firing token. Then a real
// run (the lm_training fixture trained for its 384 tokens): `sae-workbench --features RUN
// --headless` writes features.json, and the window computes, caches and reopens it.
#include <QLineEdit>
#include <QPushButton>
#include <QRegularExpression>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTextBrowser>
#include <QtTest>

#include <cmath>
#include <memory>

#include <qcustomplot.h>

#include "FeatureBrowser.h"
#include "FeatureTableModel.h"
#include "MainWindow.h"
#include "analysis/FeatureBrowserData.h"
#include "config/RunConfig.h"
#include "support/ProgramRun.h"
#include "train/TrainingRun.h"

namespace {

const QString kWorkbench = QStringLiteral(SAEWB_BINARY_DIR "/app/sae-workbench");

sae::FeatureContext context(std::vector<int64_t> tokens, int firing, double activation,
                            int64_t position) {
  sae::FeatureContext c;
  c.tokens = std::move(tokens);
  c.firingIndex = firing;
  c.activation = activation;
  c.position = position;
  return c;
}

sae::FeatureRecord record(int64_t index, int64_t firing, double maxActivation) {
  sae::FeatureRecord r;
  r.index = index;
  r.firingCount = firing;
  r.density = double(firing) / 1000.0;
  r.maxActivation = maxActivation;
  r.meanActivation = maxActivation / 2;
  r.decoderNorm = 1;
  if (firing > 0) r.histogram = sae::Histogram::fixedBins({0.5, 1.0, maxActivation}, 4);
  return r;
}

// Vocabulary: 0 "<|endoftext|>", 1 " the", 2 " cat", 3 " sat", 4 " dog", 5 " <b>", 6 "\n",
// 7 "a", 8 "b".
std::shared_ptr<const sae::FeatureBrowserData> handBuilt() {
  auto data = std::make_shared<sae::FeatureBrowserData>();
  data->vocabulary = {"<|endoftext|>", " the", " cat", " sat", " dog", " <b>", "\n", "a", "b"};
  data->tokensScanned = 1000;
  data->contextSize = 16;
  data->hookPoint = "blocks.0.hook_mlp_out";
  data->features.push_back(record(0, 500, 2.0));  // density 0.5
  data->features.back().contexts = {context({0, 1, 2, 3}, 2, 2.0, 2), context({1, 2}, 1, 1.5, 5)};
  data->features.push_back(record(1, 10, 7.0));  // density 0.01
  data->features.back().contexts = {context({4, 5}, 1, 7.0, 9)};
  data->features.back().positiveLogits = {{2, 0.75}, {3, 0.5}};
  data->features.back().negativeLogits = {{4, -0.25}};
  data->features.push_back(record(2, 0, 0.0));    // dead
  data->features.push_back(record(3, 100, 3.0));  // density 0.1
  data->features.back().contexts = {context({7, 6, 8}, 1, 3.0, 1)};
  return data;
}

QList<qlonglong> shownOrder(const QSortFilterProxyModel& proxy) {
  QList<qlonglong> order;
  for (int row = 0; row < proxy.rowCount(); ++row)
    order << proxy.data(proxy.index(row, 0), FeatureTableModel::FeatureIndexRole).toLongLong();
  return order;
}

}  // namespace

class FeatureBrowserTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void tableSortsByDensityAndMaxActivation();
  void searchMatchesIndexOrContextText();
  void detailPaneShowsTheFeature();
  void headlessWritesFeaturesJson();
  void windowComputesThenReadsTheCache();
  void mainWindowHasAFeaturesButton();

 private:
  QString trainedRun();
  QTemporaryDir dir_;
  QString runDir_;
};

void FeatureBrowserTest::tableSortsByDensityAndMaxActivation() {
  FeatureTableModel model;
  model.setData(handBuilt());
  QCOMPARE(model.rowCount(), 4);
  QCOMPARE(model.index(0, FeatureTableModel::DensityColumn).data().toString(), QString("-0.30"));
  QCOMPARE(model.index(2, FeatureTableModel::DensityColumn).data().toString(), QString("dead"));
  QCOMPARE(model.index(1, FeatureTableModel::TopTokenColumn).data().toString(), QString(" <b>"));
  QCOMPARE(model.index(3, FeatureTableModel::TopTokenColumn).data().toString(),
           QString::fromUtf8("\u21b5"));
  QSortFilterProxyModel proxy;
  proxy.setSourceModel(&model);
  proxy.setSortRole(FeatureTableModel::SortRole);
  proxy.sort(FeatureTableModel::DensityColumn, Qt::DescendingOrder);
  QCOMPARE(shownOrder(proxy), (QList<qlonglong>{0, 3, 1, 2}));
  proxy.sort(FeatureTableModel::DensityColumn, Qt::AscendingOrder);
  QCOMPARE(shownOrder(proxy), (QList<qlonglong>{2, 1, 3, 0}));  // dead first
  proxy.sort(FeatureTableModel::MaxActivationColumn, Qt::DescendingOrder);
  QCOMPARE(shownOrder(proxy), (QList<qlonglong>{1, 3, 0, 2}));
  QVERIFY(std::isinf(FeatureTableModel::log10Density(0)));
}

void FeatureBrowserTest::searchMatchesIndexOrContextText() {
  FeatureBrowser browser(dir_.path());
  browser.setData(handBuilt());
  QSortFilterProxyModel* proxy = browser.proxyModel();
  QCOMPARE(proxy->rowCount(), 4);
  browser.searchBox()->setText("CAT");  // case-insensitive
  QCOMPARE(shownOrder(*proxy), QList<qlonglong>{0});
  browser.searchBox()->setText(" <b>");
  QCOMPARE(shownOrder(*proxy), QList<qlonglong>{1});
  browser.searchBox()->setText("3");  // the index; no context holds a "3"
  QCOMPARE(shownOrder(*proxy), QList<qlonglong>{3});
  browser.searchBox()->setText("zebra");
  QCOMPARE(proxy->rowCount(), 0);
  browser.searchBox()->clear();
  QCOMPARE(proxy->rowCount(), 4);
  QCOMPARE(browser.currentFeature(), int64_t(1));  // the strongest, selected first
}

void FeatureBrowserTest::detailPaneShowsTheFeature() {
  FeatureBrowser browser(dir_.path());
  const auto data = handBuilt();
  browser.setData(data);
  QVERIFY(browser.showFeature(1));
  QCOMPARE(browser.currentFeature(), int64_t(1));
  const QString html = FeatureBrowser::contextsHtml(*data, data->features[1]);
  QVERIFY2(html.contains("&lt;b&gt;"), qPrintable(html));  // escaped, not a bold tag
  QVERIFY2(html.contains("font-weight:600;\"> &lt;b&gt;</span>"), qPrintable(html));
  QVERIFY(browser.contextsView()->toPlainText().contains("dog <b>"));
  QCOMPARE(browser.positiveLogitsView()->rowCount(), 2);
  QCOMPARE(browser.positiveLogitsView()->item(0, 0)->text(), QString(" cat"));
  QCOMPARE(browser.positiveLogitsView()->item(0, 1)->text(), QString("+0.750"));
  QCOMPARE(browser.negativeLogitsView()->item(0, 1)->text(), QString("-0.250"));
  QCOMPARE(browser.histogramBars()->data()->size(), 4);

  QVERIFY(browser.showFeature(3));  // the firing token is a newline: shown as an arrow
  QVERIFY(browser.contextsView()->toPlainText().contains(QString::fromUtf8("a\u21b5b")));
  QVERIFY(browser.showFeature(2));  // dead: no contexts, no bars
  QVERIFY(browser.contextsView()->toPlainText().contains("never fires"));
  QCOMPARE(browser.histogramBars()->data()->size(), 0);

  const QString first = FeatureBrowser::contextsHtml(*data, data->features[0]);
  QVERIFY(first.contains("<|endoftext|>") == false);  // special token escaped
  QVERIFY(first.contains("&lt;|endoftext|&gt;"));
  QVERIFY(first.contains("&hellip;"));  // the second context starts inside its row
}

QString FeatureBrowserTest::trainedRun() {
  if (!runDir_.isEmpty()) return runDir_;
  sae::RunConfig config =
      sae::RunConfig::loadFile(std::string(SAEWB_FIXTURES_DIR) + "/lm_training/config.json");
  runDir_ = dir_.filePath("run");
  sae::TrainingRun run(config, runDir_.toStdString());
  if (!run.run()) return QString();
  return runDir_;
}

void FeatureBrowserTest::headlessWritesFeaturesJson() {
  const QString run = trainedRun();
  QVERIFY(!run.isEmpty());
  const auto r = saetest::runProgram(
      kWorkbench, {"--features", run, "--headless", "--feature-tokens", "256"}, 120000);
  QVERIFY2(r.exitCode == 0, qPrintable(r.out + r.err));
  QVERIFY2(r.out.contains("Wrote " + run + "/features.json"), qPrintable(r.out));
  QVERIFY2(r.out.contains("32 features on blocks.0.hook_mlp_out, 256 tokens scanned"),
           qPrintable(r.out));
  const auto data = sae::FeatureBrowserData::load((run + "/features.json").toStdString());
  QCOMPARE(data.tokensScanned, int64_t(256));
  QCOMPARE(data.features.size(), size_t(32));
  QVERIFY(data.tokenizerPath.empty());  // the fixture model has no tokenizer.json
  QVERIFY2(
      r.out.contains(QRegularExpression("feature \\d+: density [0-9.e-]+, max [0-9.]+: .*\\[<")),
      qPrintable(r.out));

  // Bad input: a folder that is not a run, and --features with a config.
  const auto bad =
      saetest::runProgram(kWorkbench, {"--features", dir_.path(), "--headless"}, 60000);
  QCOMPARE(bad.exitCode, 1);
  QVERIFY2(bad.err.contains("no config.json"), qPrintable(bad.err));
  const auto both =
      saetest::runProgram(kWorkbench, {"--features", run, "--preset", "demo", "--headless"}, 60000);
  QCOMPARE(both.exitCode, 2);
  QVERIFY2(both.err.contains("--features opens a trained run"), qPrintable(both.err));
}

void FeatureBrowserTest::windowComputesThenReadsTheCache() {
  const QString run = trainedRun();
  QVERIFY(!run.isEmpty());
  QFile::remove(run + "/features.json");
  sae::FeatureBrowserOptions options;
  options.tokens = 128;
  {
    FeatureBrowser browser(run);
    QSignalSpy finished(&browser, &FeatureBrowser::finished);
    browser.start(options);
    QVERIFY(browser.isBusy());
    QVERIFY(finished.wait(120000));
    QCOMPARE(finished.front().front().toBool(), true);
    QVERIFY2(browser.errorText().isEmpty(), qPrintable(browser.errorText()));
    QCOMPARE(browser.tableModel()->rowCount(), 32);
    QVERIFY(browser.currentFeature() >= 0);
    QVERIFY(QFileInfo::exists(run + "/features.json"));
  }
  const QDateTime written = QFileInfo(run + "/features.json").lastModified();
  {
    FeatureBrowser browser(run);
    QSignalSpy finished(&browser, &FeatureBrowser::finished);
    browser.start(options);
    QVERIFY(finished.wait(60000));
    QCOMPARE(browser.tableModel()->rowCount(), 32);
    QCOMPARE(browser.tableModel()->browserData()->tokensScanned, int64_t(128));
    QCOMPARE(QFileInfo(run + "/features.json").lastModified(), written);  // read, not rewritten
  }
  {
    // A folder that is not a run: the error is shown in the window.
    FeatureBrowser browser(dir_.path());
    QSignalSpy finished(&browser, &FeatureBrowser::finished);
    browser.start(options);
    QVERIFY(finished.wait(60000));
    QCOMPARE(finished.front().front().toBool(), false);
    QVERIFY2(browser.errorText().contains("no config.json"), qPrintable(browser.errorText()));
  }
}

void FeatureBrowserTest::mainWindowHasAFeaturesButton() {
  MainWindow::Options options;
  options.runsFolder = dir_.filePath("runs");
  options.userPresetsFolder = dir_.filePath("presets");
  options.restoreLastPreset = false;
  MainWindow window(options);
  auto* button = window.findChild<QPushButton*>("featuresButton");
  QVERIFY(button);
  QCOMPARE(button->text(), QString("Features..."));
  QVERIFY(button->isEnabled());
}

QTEST_MAIN(FeatureBrowserTest)
#include "tst_ui_feature_browser.moc"
