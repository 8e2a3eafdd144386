// PlotDashboard, MetricPlot and HistogramView offscreen: live metrics land in their plots,
// TensorBoard smoothing against the reference, CSV rows equal what was added, every export
// format readable, histogram bins equal the core's, schedule previews equal the core's
// schedulers, overlays from a metrics.jsonl written by the real sink, the remembered layout.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <QImage>
#include <QSvgRenderer>
#include <QTemporaryDir>
#include <QtTest>
#include <nlohmann/json.hpp>

#include <qcustomplot.h>

#include "HistogramView.h"
#include "MetricPlot.h"
#include "PlotDashboard.h"
#include "PlotMath.h"
#include "analysis/Histogram.h"
#include "runs/MetricsJsonlSink.h"
#include "train/L1Scheduler.h"
#include "train/LrScheduler.h"

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

nlohmann::json loadFixture(const std::string& relative) {
  QFile file(QString::fromStdString(std::string(SAEWB_FIXTURES_DIR) + "/" + relative));
  if (!file.open(QIODevice::ReadOnly)) throw std::runtime_error("missing fixture " + relative);
  return nlohmann::json::parse(file.readAll().toStdString());
}

double fromJson(const nlohmann::json& v) {
  if (v.is_number()) return v.get<double>();
  const std::string s = v.get<std::string>();
  if (s == "nan") return kNaN;
  return s == "inf" ? std::numeric_limits<double>::infinity()
                    : -std::numeric_limits<double>::infinity();
}

bool sameValue(double a, double b, double rel = 1e-12) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  return std::fabs(a - b) <= rel * std::max(1.0, std::fabs(b));
}

// Step s of a fake run: MSE falls, tokens 4096 per step, 0.5 s per step.
sae::MetricsEvent fakeStep(int64_t step) {
  sae::MetricsEvent e;
  e.step = step;
  e.n_training_tokens = (step + 1) * 4096;
  e.wall_seconds = 0.5 * static_cast<double>(step + 1);
  e.values["losses/mse_loss"] = 1.0 / static_cast<double>(step + 1);
  e.values["losses/l1_loss"] = 10.0 + static_cast<double>(step % 7);
  e.values["details/current_l1_coefficient"] = 0.001 * static_cast<double>(step);
  e.values["metrics/l0"] = 40.0 - static_cast<double>(step) * 0.1;
  e.values["details/n_training_tokens"] = static_cast<double>(e.n_training_tokens);
  return e;
}

QStringList csvLines(const QByteArray& csv) {
  QStringList lines = QString::fromUtf8(csv).split(QLatin1Char('\n'));
  if (!lines.isEmpty() && lines.back().isEmpty()) lines.pop_back();
  return lines;
}

}  // namespace

class TestPlotDashboard : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void emaMatchesTensorBoardReference() {
    // Hand-checked: w = 0.5 on [1, 3, NaN, 5] -> 0.5/0.5, 1.75/0.75, NaN, 3.375/0.875.
    const auto hand = plotmath::emaSmooth({1, 3, kNaN, 5}, 0.5);
    QVERIFY(sameValue(hand[0], 1.0));
    QVERIFY(sameValue(hand[1], 7.0 / 3.0));
    QVERIFY(std::isnan(hand[2]));
    QVERIFY(sameValue(hand[3], 27.0 / 7.0));

    const auto fixture = loadFixture("analysis/ema_smoothing.json");
    std::vector<double> ys;
    for (const auto& v : fixture["ys"])
      ys.push_back(fromJson(v));
    int checked = 0;
    for (const auto& c : fixture["cases"]) {
      const double w = c["weight"].get<double>();
      const auto smoothed = plotmath::emaSmooth(ys, w);
      for (size_t i = 0; i < ys.size(); ++i) {
        QVERIFY2(sameValue(smoothed[i], fromJson(c["smoothed"][i])),
                 qPrintable(QStringLiteral("w=%1 i=%2").arg(w).arg(i)));
        ++checked;
      }
    }
    QCOMPARE(checked, 4 * 300);

    // The plot's smoothed curve is the same EMA.
    MetricPlot plot("p", "P", "y", "empty");
    plot.addSeries("y", QString(), Qt::blue);
    plot.setSmoothing(0.9);
    for (size_t i = 0; i < ys.size(); ++i)
      plot.appendPoint(0, static_cast<double>(i), kNaN, kNaN, ys[i]);
    plot.refresh();
    const auto expected = plotmath::emaSmooth(ys, 0.9);
    const auto data = plot.smoothedGraph(0)->data();
    QCOMPARE(data->size(), 300);
    for (int i = 0; i < data->size(); ++i) {
      QCOMPARE(data->at(i)->key, static_cast<double>(i));
      QVERIFY(sameValue(data->at(i)->value, expected[static_cast<size_t>(i)]));
    }
  }

  void metricsLandInTheirPlots() {
    PlotDashboard dashboard;
    dashboard.setSmoothing(0.0);
    for (int64_t s = 0; s < 50; ++s)
      dashboard.addMetrics(fakeStep(s));
    dashboard.flush();
    MetricPlot* mse = dashboard.metricPlot("mse_loss");
    QVERIFY(mse);
    const auto data = mse->rawGraph(0)->data();
    QCOMPARE(data->size(), 50);
    for (int i = 0; i < 50; ++i) {
      QCOMPARE(data->at(i)->key, static_cast<double>(i));
      QCOMPARE(data->at(i)->value, 1.0 / (i + 1));
    }
    // Tokens/s between logged steps: 4096 tokens per 0.5 s.
    MetricPlot* rate = dashboard.metricPlot("tokens_per_second");
    QCOMPARE(rate->pointCount(0), 49);
    QCOMPARE(rate->rawGraph(0)->data()->at(10)->value, 8192.0);
    // No CE metric arrived: the CE plots say why they are empty.
    for (const char* id : {"ce_loss_score", "ce_losses"}) {
      MetricPlot* ce = dashboard.metricPlot(id);
      QVERIFY(!ce->hasData());
      QVERIFY(ce->emptyMessage().contains("language-model run"));
    }
    QCOMPARE(dashboard.metricPlot("ce_losses")->seriesCount(), 3);
    // x as tokens.
    dashboard.setXAxisMode(XAxisMode::Tokens);
    dashboard.flush();
    QCOMPARE(mse->rawGraph(0)->data()->at(3)->key, 4.0 * 4096);
    // A new run clears the live curves.
    dashboard.clearRun();
    QVERIFY(!mse->hasData());
  }

  void csvHasThePlottedRows() {
    MetricPlot plot("mse_loss", "MSE", "MSE", "empty");
    plot.addSeries("MSE", QString(), Qt::blue);
    plot.addSeries("other", "run-b", Qt::red);
    std::vector<double> ys;
    for (int i = 0; i < 40; ++i) {
      ys.push_back(std::sin(i * 0.3) + 2);
      plot.appendPoint(0, i, i * 100.0, i * 0.25, ys.back());
    }
    plot.appendPoint(1, 5, 500, kNaN, 42.5);  // shares x = 5, no wall time
    plot.refresh();
    QStringList lines = csvLines(plot.csv());
    QCOMPARE(lines.size(), 41);
    QCOMPARE(lines[0], QStringLiteral("step,MSE,other"));
    for (int i = 0; i < 40; ++i) {
      const QStringList cells = lines[i + 1].split(',');
      QCOMPARE(cells.size(), 3);
      QCOMPARE(cells[0].toDouble(), static_cast<double>(i));
      QCOMPARE(cells[1].toDouble(), ys[static_cast<size_t>(i)]);  // 17 digits: exact
      QCOMPARE(cells[2], i == 5 ? QStringLiteral("42.5") : QString());
    }
    // Smoothing on: raw column plus a smoothed one.
    plot.setSmoothing(0.6);
    plot.setXMode(XAxisMode::WallTime);
    lines = csvLines(plot.csv());
    QCOMPARE(lines[0], QStringLiteral("wall_seconds,MSE,MSE (smoothed),other,other (smoothed)"));
    QCOMPARE(lines.size(), 41);  // the other run has no wall time
    const auto smoothed = plotmath::emaSmooth(ys, 0.6);
    for (int i = 0; i < 40; ++i) {
      const QStringList cells = lines[i + 1].split(',');
      QCOMPARE(cells[0].toDouble(), i * 0.25);
      QCOMPARE(cells[1].toDouble(), ys[static_cast<size_t>(i)]);
      QVERIFY(sameValue(cells[2].toDouble(), smoothed[static_cast<size_t>(i)], 1e-15));
    }
  }

  void exportAllWritesReadableFiles() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    PlotDashboard dashboard;
    for (int64_t s = 0; s < 30; ++s)
      dashboard.addMetrics(fakeStep(s));
    sae::HistogramEvent h;
    h.name = "weights/W_dec_norms";
    for (int i = 0; i < 256; ++i)
      h.values.push_back(1.0 + 0.01 * (i % 17));
    dashboard.addHistogram(h);
    sae::RunConfig config;
    config.training_tokens = 4096 * 200;
    config.train_batch_size = 4096;
    config.l1_warm_up_steps = 20;
    config.lr_warm_up_steps = 10;
    dashboard.setSchedulePreview(config);

    QString error;
    const QStringList files = dashboard.exportAll(dir.filePath("plots"), &error);
    QVERIFY2(error.isEmpty(), qPrintable(error));
    // Plots with data: mse, l1, l1 coefficient, l0, tokens/s, two schedules, one histogram.
    QCOMPARE(files.size(), 8 * 4);
    QVERIFY(files.contains(dir.filePath("plots/mse_loss.svg")));
    QVERIFY(files.contains(dir.filePath("plots/hist_weights_W_dec_norms.pdf")));
    QVERIFY(!files.contains(dir.filePath("plots/ce_losses.png")));  // no data, not exported
    for (const QString& path : files) {
      QFile file(path);
      QVERIFY2(file.open(QIODevice::ReadOnly), qPrintable(path));
      const QByteArray bytes = file.readAll();
      QVERIFY2(bytes.size() > 100, qPrintable(path));
      if (path.endsWith(".png")) {
        QImage image;
        QVERIFY2(image.loadFromData(bytes, "PNG"), qPrintable(path));
        QCOMPARE(image.size(), QSize(960, 540));
      } else if (path.endsWith(".svg")) {
        QVERIFY2(QSvgRenderer(path).isValid(), qPrintable(path));
      } else if (path.endsWith(".pdf")) {
        QVERIFY2(bytes.startsWith("%PDF"), qPrintable(path));
        QVERIFY(QFileInfo(path).permissions() & QFileDevice::ReadOther);  // not the temp's 0600
      } else {
        QVERIFY(path.endsWith(".csv"));
      }
    }
    // Nothing left behind under a temporary name.
    QCOMPARE(QDir(dir.filePath("plots")).entryList(QDir::Files).size(), files.size());
    // CSV rows equal what was added.
    QFile csv(dir.filePath("plots/l0.csv"));
    QVERIFY(csv.open(QIODevice::ReadOnly));
    const QStringList lines = csvLines(csv.readAll());
    QCOMPARE(lines.size(), 31);
    QVERIFY(lines[0].startsWith("step,L0"));
    QCOMPARE(lines[8].split(',')[1].toDouble(), 40.0 - 7 * 0.1);
    QFile histCsv(dir.filePath("plots/hist_weights_W_dec_norms.csv"));
    QVERIFY(histCsv.open(QIODevice::ReadOnly));
    const auto bins = sae::Histogram::autoBins(h.values);
    QCOMPARE(csvLines(histCsv.readAll()).size(), static_cast<int>(bins.counts.size()) + 1);

    // A single plot, and a bad suffix with a message.
    QVERIFY(dashboard.metricPlot("mse_loss")->exportTo(dir.filePath("one.svg"), &error));
    QVERIFY(!dashboard.metricPlot("mse_loss")->exportTo(dir.filePath("one.bmpx"), &error));
    QVERIFY(error.contains("unknown format"));
  }

  void histogramBinsEqualTheCore() {
    PlotDashboard dashboard;
    sae::HistogramEvent first, later;
    first.name = later.name = "weights/W_dec_norms";
    later.step = 2000;
    for (int i = 0; i < 500; ++i) {
      first.values.push_back(0.9 + 0.2 * std::fmod(i * 0.6180339887, 1.0));
      later.values.push_back(0.5 + 1.5 * std::fmod(i * 0.4142135623, 1.0));
    }
    first.values.push_back(kNaN);
    dashboard.addHistogram(first);
    HistogramView* view = dashboard.histogramView("weights/W_dec_norms");
    QVERIFY(view);
    auto expected = sae::Histogram::autoBins(first.values);
    QVERIFY(view->currentBins().edges == expected.edges);
    QVERIFY(view->currentBins().counts == expected.counts);
    QCOMPARE(view->currentBins().nonFinite, int64_t{1});
    // The bars are those bins: centres and counts.
    const auto bars = view->bars()->data();
    QCOMPARE(bars->size(), static_cast<int>(expected.counts.size()));
    for (int i = 0; i < bars->size(); ++i) {
      const auto k = static_cast<size_t>(i);
      QCOMPARE(bars->at(i)->key, 0.5 * (expected.edges[k] + expected.edges[k + 1]));
      QCOMPARE(bars->at(i)->value, static_cast<double>(expected.counts[k]));
    }
    // A later snapshot is drawn over the first on shared edges; the slider steps back.
    dashboard.addHistogram(later);
    QCOMPARE(view->snapshotCount(), 2);
    QCOMPARE(view->currentIndex(), 1);
    std::vector<double> both = first.values;
    both.insert(both.end(), later.values.begin(), later.values.end());
    const auto shared = sae::Histogram::autoBins(both);
    QVERIFY(view->currentBins().edges == shared.edges);
    QVERIFY(view->currentBins().counts ==
            sae::Histogram::withEdges(later.values, shared.edges).counts);
    QVERIFY(view->firstBins().counts ==
            sae::Histogram::withEdges(first.values, shared.edges).counts);
    view->showSnapshot(0);
    QVERIFY(view->currentBins().counts == expected.counts);
    QVERIFY(view->firstBins().counts.empty());

    // Title and markers of an inspection event; an unknown name gets its own view.
    sae::HistogramEvent means;
    means.name = "activations/buffer_norm_means";
    means.values = {22.5, 22.6, 22.7, 22.6, 22.55};
    means.markers["sqrt(d_in)"] = std::sqrt(512.0);
    means.markers["estimated_norm_scaling_factor"] = 0.05;  // far off: listed, not drawn
    means.title = "Buffer Norm Mean over 5 batches, mean: 22.59 std: 0.0663";
    dashboard.addHistogram(means);
    HistogramView* meansView = dashboard.histogramView("activations/buffer_norm_means");
    QCOMPARE(meansView->titleText(), QString::fromStdString(means.title));
    int lines = 0, texts = 0;
    for (int i = 0; i < meansView->plot()->itemCount(); ++i) {
      if (qobject_cast<QCPItemStraightLine*>(meansView->plot()->item(i))) ++lines;
      if (qobject_cast<QCPItemText*>(meansView->plot()->item(i))) ++texts;
    }
    QCOMPARE(lines, 1);  // sqrt(d_in) near the data; the factor is in the note
    QCOMPARE(texts, 2);
    sae::HistogramEvent other;
    other.name = "custom/thing";
    other.values = {1, 2, 3};
    dashboard.addHistogram(other);
    QVERIFY(dashboard.histogramView("custom/thing"));
  }

  void schedulePreviewEqualsTheCoreSchedulers() {
    PlotDashboard dashboard;
    sae::RunConfig config;
    config.train_batch_size = 4096;
    config.training_tokens = 4096 * 1000;
    config.l1_coefficient = 5.0;
    config.l1_warm_up_steps = 100;
    config.lr = 4e-4;
    config.lr_scheduler_name = "cosineannealing";
    config.lr_warm_up_steps = 50;
    config.lr_decay_steps = 100;
    dashboard.setSchedulePreview(config);
    const sae::L1Scheduler l1(5.0, 100);
    const sae::LrScheduler lr("cosineannealing", 4e-4, 1000, 50, 100, config.effectiveLrEnd(), 1);
    auto l1Data = dashboard.schedulePlot("schedule_l1_coefficient")->rawGraph(0)->data();
    auto lrData = dashboard.schedulePlot("schedule_learning_rate")->rawGraph(0)->data();
    QCOMPARE(l1Data->size(), 1000);
    QCOMPARE(lrData->size(), 1000);
    for (int s = 0; s < 1000; ++s) {
      QCOMPARE(l1Data->at(s)->value, l1.coefficientAt(s));
      QCOMPARE(lrData->at(s)->value, lr.lrAt(s));
    }
    QCOMPARE(l1Data->at(50)->value, 2.5);

    // A long run is sampled (every value still the scheduler's), boundaries included.
    config.training_tokens = int64_t{4096} * 300000;
    config.l1_warm_up_steps = 12345;
    dashboard.setSchedulePreview(config);
    const sae::L1Scheduler longL1(5.0, 12345);
    l1Data = dashboard.schedulePlot("schedule_l1_coefficient")->rawGraph(0)->data();
    QVERIFY(l1Data->size() >= 4000 && l1Data->size() < 4020);
    bool sawCorner = false;
    for (int i = 0; i < l1Data->size(); ++i) {
      const auto step = static_cast<int64_t>(l1Data->at(i)->key);
      QCOMPARE(l1Data->at(i)->value, longL1.coefficientAt(step));
      sawCorner = sawCorner || step == 12345;
    }
    QVERIFY(sawCorner);

    // An invalid schedule says why.
    config.lr_scheduler_name = "nonsense";
    dashboard.setSchedulePreview(config);
    MetricPlot* lrPlot = dashboard.schedulePlot("schedule_learning_rate");
    QVERIFY(!lrPlot->hasData());
    QVERIFY(lrPlot->emptyMessage().contains("invalid"));
  }

  void overlayReadsAMetricsJsonl() {
    QTemporaryDir dir;
    const QString runDir = dir.filePath("run-a");
    QVERIFY(QDir().mkpath(runDir));
    {
      sae::MetricsJsonlSink sink(QDir(runDir).filePath("metrics.jsonl").toStdString());
      for (int64_t s = 0; s < 20; s += 2)
        sink.onMetrics(fakeStep(s));
    }
    PlotDashboard dashboard;
    dashboard.setSmoothing(0);
    dashboard.addMetrics(fakeStep(0));
    QString error;
    QVERIFY2(dashboard.overlayRun(runDir, &error), qPrintable(error));
    MetricPlot* mse = dashboard.metricPlot("mse_loss");
    QCOMPARE(mse->seriesCount(), 2);
    QCOMPARE(mse->seriesLabel(1), QStringLiteral("run-a"));
    QCOMPARE(mse->pointCount(1), 10);
    QCOMPARE(mse->rawGraph(1)->data()->at(3)->value, 1.0 / 7.0);
    QVERIFY(mse->rawGraph(1)->pen().color() != mse->rawGraph(0)->pen().color());
    QVERIFY(mse->legend->visible());
    // x as tokens works from details/n_training_tokens.
    dashboard.setXAxisMode(XAxisMode::Tokens);
    dashboard.flush();
    QCOMPARE(mse->rawGraph(1)->data()->at(1)->key, 3.0 * 4096);
    // Opening it again replaces it; a new live run keeps it.
    QVERIFY(dashboard.overlayRun(runDir, &error));
    QCOMPARE(mse->seriesCount(), 2);
    dashboard.clearRun();
    QCOMPARE(mse->pointCount(1), 10);
    // Legend click hides a curve (same path as the click handler).
    mse->setSeriesHidden(1, true);
    QVERIFY(!mse->rawGraph(1)->visible());

    // Broken line: the error names the file and the line.
    QFile broken(QDir(runDir).filePath("metrics.jsonl"));
    QVERIFY(broken.open(QIODevice::Append));
    broken.write("{\"step\": 40, \"losses/mse_loss\": 0.1}\n{not json\n{\"step\": 44}\n");
    broken.close();
    QVERIFY(!dashboard.overlayRun(runDir, &error));
    QVERIFY2(error.contains("line 12") && error.contains("metrics.jsonl"), qPrintable(error));
    QVERIFY(!dashboard.overlayRun(dir.filePath("missing"), &error));
    QVERIFY2(error.contains("missing/metrics.jsonl"), qPrintable(error));
  }

  void followLatestAutoscaleAndOutliers() {
    MetricPlot plot("p", "P", "y", "empty");
    plot.addSeries("y", QString(), Qt::blue);
    for (int i = 0; i < 200; ++i)
      plot.appendPoint(0, i, kNaN, kNaN, i == 3 ? 1000.0 : 1.0 + 0.001 * i);
    plot.refresh();
    QVERIFY(plot.followLatest());
    QVERIFY(plot.xAxis->range().lower <= 0 && plot.xAxis->range().upper >= 199);
    QVERIFY2(plot.yAxis->range().upper < 2.0, "the early spike should not set the scale");
    plot.setIgnoreOutliers(false);
    QVERIFY(plot.yAxis->range().upper >= 1000.0);
    // A zoom by the user ends following; more data then leaves the range alone.
    QSignalSpy spy(&plot, &MetricPlot::followLatestChanged);
    plot.xAxis->setRange(10, 20);
    QVERIFY(!plot.followLatest());
    QCOMPARE(spy.count(), 1);
    plot.appendPoint(0, 500, kNaN, kNaN, 1.0);
    plot.refresh();
    QCOMPARE(plot.xAxis->range().upper, 20.0);
    plot.setFollowLatest(true);
    QVERIFY(plot.xAxis->range().upper >= 500);
    // Log y leaves out values <= 0.
    plot.appendPoint(0, 501, kNaN, kNaN, 0.0);
    plot.setLogY(true);
    QVERIFY(std::isnan(plot.rawGraph(0)->data()->at(201)->value));
    QVERIFY(plot.yAxis->range().lower > 0);
  }

  void layoutIsRemembered() {
    QByteArray state;
    {
      PlotDashboard dashboard;
      dashboard.setPlotVisible("l0", false);
      dashboard.metricPlot("mse_loss")->setLogY(true);
      dashboard.setSmoothing(0.9);
      dashboard.setXAxisMode(XAxisMode::WallTime);
      state = dashboard.saveLayout();
    }
    PlotDashboard restored;
    QVERIFY(restored.restoreLayout(state));
    QVERIFY(!restored.isPlotVisible("l0"));
    QVERIFY(restored.isPlotVisible("mse_loss"));
    QVERIFY(restored.metricPlot("mse_loss")->logY());
    QVERIFY(!restored.metricPlot("l1_loss")->logY());
    QCOMPARE(restored.smoothing(), 0.9);
    QVERIFY(restored.metricPlot("l1_loss")->xMode() == XAxisMode::WallTime);
    QVERIFY(!restored.restoreLayout("not json"));
    QVERIFY(!restored.restoreLayout("{\"version\": 99}"));
  }
};

QTEST_MAIN(TestPlotDashboard)
#include "tst_plot_dashboard.moc"
