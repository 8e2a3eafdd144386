// The GUI's training session on the synthetic source: start -> pause -> resume -> stop leaves a
// complete run folder; a finished run writes final/; a core error fails the run and the session
// can start again; batches reach the GUI thread at most ~20 times a second.
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include <thread>

#include "TrainingSession.h"
#include "config/PresetLibrary.h"

namespace {

// A tiny synthetic config (the demo preset with --set-like overrides) whose steps take a few
// milliseconds; `tokens` sets how long it can run.
sae::RunConfig tinyConfig(int64_t tokens) {
  sae::RunConfig config = sae::PresetLibrary::load("synthetic-demo");
  for (const char* kv :
       {"d_in=16", "expansion_factor=2", "train_batch_size=64", "context_size=16",
        "store_batch_size=2", "n_batches_in_buffer=4", "synthetic_n_features=32",
        "feature_sampling_window=20", "dead_feature_window=20", "wandb_log_frequency=5",
        "l1_warm_up_steps=10", "lr_decay_steps=0", "n_checkpoints=0", "num_threads=1"}) {
    config.applyOverride(kv);
  }
  config.applyOverride("training_tokens=" + std::to_string(tokens));
  return config;
}

QStringList jsonlLines(const QString& path) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) return {};
  return QString::fromUtf8(file.readAll()).split('\n', Qt::SkipEmptyParts);
}

struct Recorder {
  int64_t lastStep = -1;
  int64_t lastTokens = 0;
  int metrics = 0, histograms = 0;
  QStringList messages;
  void add(const TrainingBatch& batch) {
    if (batch.hasProgress) {
      lastStep = batch.progress.step;
      lastTokens = batch.progress.tokens_done;
    }
    metrics += static_cast<int>(batch.metrics.size());
    histograms += static_cast<int>(batch.histograms.size());
    messages << batch.messages;
  }
};

}  // namespace

class TrainingSessionTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void startPauseResumeStop() {
    QTemporaryDir dir;
    const sae::RunConfig config = tinyConfig(1'000'000'000);  // far more than it gets to run
    TrainingSession session;
    Recorder recorder;
    connect(&session, &TrainingSession::batchReady, this,
            [&recorder](const TrainingBatch& b) { recorder.add(b); });
    QSignalSpy ended(&session, &TrainingSession::ended);
    const QString runDir = TrainingSession::newRunDir(dir.path(), config);
    QVERIFY(
        runDir.startsWith(dir.path() + "/" + QString::fromStdString(config.effectiveRunName())));

    QElapsedTimer clock;
    clock.start();
    QVERIFY(session.start(config, runDir));
    QCOMPARE(session.state(), TrainingSession::State::Running);
    QVERIFY(!session.start(config, runDir));  // one run at a time
    QTRY_VERIFY_WITH_TIMEOUT(recorder.lastStep >= 30, 30000);

    session.pause();
    QCOMPARE(session.state(), TrainingSession::State::Paused);
    QTest::qWait(300);  // batches already queued before the pause arrive
    const int64_t pausedAt = recorder.lastStep;
    QTest::qWait(500);
    QCOMPARE(recorder.lastStep, pausedAt);  // nothing trains while paused

    session.resume();
    QCOMPARE(session.state(), TrainingSession::State::Running);
    QTRY_VERIFY_WITH_TIMEOUT(recorder.lastStep >= pausedAt + 20, 30000);

    session.stop();
    QCOMPARE(session.state(), TrainingSession::State::Stopping);
    QTRY_COMPARE_WITH_TIMEOUT(ended.count(), 1, 30000);
    const double seconds = clock.elapsed() / 1000.0;
    QCOMPARE(session.state(), TrainingSession::State::Stopped);
    QCOMPARE(ended[0][0].value<TrainingSession::State>(), TrainingSession::State::Stopped);

    // Throttled: every step reports progress, but batches arrive at most ~20 per second.
    QVERIFY2(session.batchesReceived() <= 22 * seconds + 4,
             qPrintable(QString("%1 batches in %2 s").arg(session.batchesReceived()).arg(seconds)));
    QVERIFY(recorder.lastStep > 50);

    // A complete run folder: config, metrics, and a checkpoint at the step the stop finished.
    QVERIFY(QFile::exists(runDir + "/config.json"));
    const QStringList lines = jsonlLines(runDir + "/metrics.jsonl");
    QVERIFY(!lines.isEmpty());
    QCOMPARE(static_cast<int>(lines.size()), recorder.metrics);
    const auto last = nlohmann::json::parse(lines.last().toStdString());
    QVERIFY(last.contains("losses/mse_loss"));
    QVERIFY(last["step"].get<int64_t>() < recorder.lastStep);
    const QStringList checkpoints =
        QDir(runDir + "/checkpoints").entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    QCOMPARE(checkpoints.size(), 1);
    QCOMPARE(checkpoints[0].toLongLong(), recorder.lastTokens);
    QCOMPARE(checkpoints[0].toLongLong() % 64, 0LL);
    QVERIFY(QFile::exists(runDir + "/checkpoints/" + checkpoints[0] + "/sae_weights.safetensors"));
    QVERIFY(QFile::exists(runDir + "/checkpoints/" + checkpoints[0] + "/cfg.json"));
    QVERIFY(!QFile::exists(runDir + "/final"));
    // The log got the preamble and the stop message.
    QVERIFY(recorder.messages.join('\n').contains("Total training steps: 15625000"));
    QVERIFY(session.lastMessage().contains("checkpoint saved"));
    QVERIFY(recorder.histograms >= 2);  // decoder norms at init and at the end
  }

  // Stop, then Continue: the run picks up at its checkpoint and finishes, and its metrics.jsonl
  // holds every logged step once, in order.
  void stoppedRunContinuesToTheEnd() {
    QTemporaryDir dir;
    // 40,000 steps: the sparse-aware step runs a tiny step in well under a millisecond, and the
    // stop must land before the run ends even on a loaded machine.
    const sae::RunConfig config = tinyConfig(64 * 40000);
    const QString runDir = dir.filePath("run");
    TrainingSession session;
    Recorder recorder;
    connect(&session, &TrainingSession::batchReady, this,
            [&recorder](const TrainingBatch& b) { recorder.add(b); });
    QVERIFY(session.start(config, runDir));
    QTRY_VERIFY_WITH_TIMEOUT(recorder.lastStep >= 20, 30000);
    session.stop();
    QTRY_COMPARE_WITH_TIMEOUT(session.state(), TrainingSession::State::Stopped, 30000);
    const int64_t stoppedAt = recorder.lastStep;
    QVERIFY(stoppedAt < 40000);

    QVERIFY(session.resumeRun(config, runDir));
    QTRY_COMPARE_WITH_TIMEOUT(session.state(), TrainingSession::State::Finished, 60000);
    QVERIFY(recorder.messages.join('\n').contains(
        QString("at step %1 (%2 tokens)").arg(stoppedAt).arg(stoppedAt * 64)));
    QCOMPARE(recorder.lastStep, int64_t(40000));
    QVERIFY(QFile::exists(runDir + "/final/sae_weights.safetensors"));
    const QStringList lines = jsonlLines(runDir + "/metrics.jsonl");
    QCOMPARE(lines.size(), 40000 / 5);
    for (int i = 0; i < lines.size(); ++i)
      QCOMPARE(nlohmann::json::parse(lines[i].toStdString())["step"].get<int64_t>(),
               int64_t(5 * i + 4));
  }

  void finishedRunWritesFinal() {
    QTemporaryDir dir;
    const sae::RunConfig config = tinyConfig(64 * 40);
    TrainingSession session;
    Recorder recorder;
    connect(&session, &TrainingSession::batchReady, this,
            [&recorder](const TrainingBatch& b) { recorder.add(b); });
    const QString runDir = dir.filePath("run");
    QVERIFY(session.start(config, runDir));
    QTRY_COMPARE_WITH_TIMEOUT(session.state(), TrainingSession::State::Finished, 60000);
    QCOMPARE(recorder.lastStep, int64_t{40});
    QCOMPARE(recorder.lastTokens, int64_t{64 * 40});
    QCOMPARE(recorder.metrics, 8);  // every 5th of 40 steps
    QCOMPARE(jsonlLines(runDir + "/metrics.jsonl").size(), 8);
    QVERIFY(QFile::exists(runDir + "/final/sae_weights.safetensors"));
    QVERIFY(QFile::exists(runDir + "/final/sparsity.safetensors"));
  }

  void coreErrorFailsTheRunAndTheSessionStaysUsable() {
    QTemporaryDir dir;
    sae::RunConfig bad = tinyConfig(64 * 10);
    bad.use_synthetic_activations = false;
    bad.use_cached_activations = true;
    bad.cached_activations_path = dir.filePath("no-such-activations").toStdString();
    TrainingSession session;
    QSignalSpy ended(&session, &TrainingSession::ended);
    QVERIFY(session.start(bad, dir.filePath("bad-run")));
    QTRY_COMPARE_WITH_TIMEOUT(ended.count(), 1, 30000);
    QCOMPARE(session.state(), TrainingSession::State::Failed);
    const QString message = ended[0][1].toString();
    QVERIFY2(message.contains("no-such-activations"), qPrintable(message));

    // The same session trains the next config.
    QVERIFY(session.start(tinyConfig(64 * 10), dir.filePath("good-run")));
    QTRY_COMPARE_WITH_TIMEOUT(session.state(), TrainingSession::State::Finished, 60000);
    QVERIFY(QFile::exists(dir.filePath("good-run/final/cfg.json")));
  }

  void destroyingARunningSessionStopsAndSaves() {
    QTemporaryDir dir;
    const QString runDir = dir.filePath("run");
    {
      TrainingSession session;
      int64_t step = -1;
      connect(&session, &TrainingSession::batchReady, this, [&step](const TrainingBatch& b) {
        if (b.hasProgress) step = b.progress.step;
      });
      QVERIFY(session.start(tinyConfig(1'000'000'000), runDir));
      QTRY_VERIFY_WITH_TIMEOUT(step >= 5, 30000);
    }  // the window closing mid-run: the destructor stops and waits
    QCOMPARE(QDir(runDir + "/checkpoints").entryList(QDir::Dirs | QDir::NoDotAndDotDot).size(), 1);
  }
};

QTEST_GUILESS_MAIN(TrainingSessionTest)
#include "tst_ui_training_session.moc"
