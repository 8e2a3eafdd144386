// `sae-workbench --headless` as a script runs it: trains without a window, writes the run folder
// with its plots, and rejects bad arguments with a message and exit code 2.
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "support/ProgramRun.h"

namespace {

const QString kWorkbench = QStringLiteral(SAEWB_BINARY_DIR "/app/sae-workbench");

using Result = saetest::ProgramResult;

Result runWorkbench(const QStringList& arguments, int timeoutMs = 120000) {
  return saetest::runProgram(kWorkbench, arguments, timeoutMs);
}

}  // namespace

class HeadlessTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    QVERIFY2(QFileInfo(kWorkbench).isExecutable(),
             qPrintable(kWorkbench + " is missing: build the sae-workbench target first"));
  }

  void trainsAndWritesTheRunWithPlots() {
    QTemporaryDir dir;
    const Result r = runWorkbench({"--headless",
                                   "--preset",
                                   "synthetic-demo",
                                   "--set",
                                   "d_in=16",
                                   "--set",
                                   "expansion_factor=2",
                                   "--set",
                                   "train_batch_size=64",
                                   "--set",
                                   "context_size=16",
                                   "--set",
                                   "store_batch_size=2",
                                   "--set",
                                   "n_batches_in_buffer=4",
                                   "--set",
                                   "synthetic_n_features=32",
                                   "--set",
                                   "feature_sampling_window=20",
                                   "--set",
                                   "dead_feature_window=20",
                                   "--set",
                                   "wandb_log_frequency=5",
                                   "--set",
                                   "l1_warm_up_steps=10",
                                   "--set",
                                   "lr_decay_steps=0",
                                   "--set",
                                   "n_checkpoints=2",
                                   "--set",
                                   "num_threads=1",
                                   "--set",
                                   "training_tokens=6400",
                                   "--out",
                                   dir.path()});
    QVERIFY2(r.exitCode == 0, qPrintable(r.out + "\n" + r.err));
    const QStringList runs = QDir(dir.path()).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    QCOMPARE(runs.size(), 1);
    const QString run = dir.filePath(runs[0]);
    QVERIFY(runs[0].startsWith("32-L1-0.2-LR-0.001-Tokens-6.400e+03-"));
    QVERIFY(r.out.contains("Run folder: " + run));
    QVERIFY(r.out.contains("Total training steps: 100"));          // the preamble
    QVERIFY2(r.out.contains("100| MSE Loss"), qPrintable(r.out));  // the final progress line
    QVERIFY(QFile::exists(run + "/config.json"));
    QVERIFY(QFile::exists(run + "/final/sae_weights.safetensors"));
    // SAELens 1.5: range(0, T, T // n_checkpoints)[1:] -> one checkpoint at half time.
    QCOMPARE(QDir(run + "/checkpoints").entryList(QDir::Dirs | QDir::NoDotAndDotDot).size(), 1);
    QFile metrics(run + "/metrics.jsonl");
    QVERIFY(metrics.open(QIODevice::ReadOnly));
    QCOMPARE(QString::fromUtf8(metrics.readAll()).split('\n', Qt::SkipEmptyParts).size(), 20);
    const QStringList plots = QDir(run + "/plots").entryList(QDir::Files);
    QVERIFY2(!plots.isEmpty(), qPrintable(r.err));
    for (const char* ext : {".png", ".svg", ".pdf", ".csv"}) {
      QVERIFY2(!plots.filter(ext).isEmpty(), ext);
    }
    QVERIFY(r.out.contains(QString("Plots written: %1 files").arg(plots.size())));
  }

  void badArgumentsExitTwoWithAMessage() {
    Result r = runWorkbench({"--headless", "--bogus"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("unknown option '--bogus'"), qPrintable(r.err));

    r = runWorkbench({"--headless", "--preset", "no-such-preset"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("no-such-preset") && r.err.contains("synthetic-demo"),
             qPrintable(r.err));

    r = runWorkbench({"--headless", "--set", "l1_coefficent=5"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("l1_coefficient"), qPrintable(r.err));

    r = runWorkbench({"--headless", "--set", "lr=0"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("lr"), qPrintable(r.err));

    r = runWorkbench({"--preset"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("--preset needs a value"), qPrintable(r.err));

    r = runWorkbench({"--help"});
    QCOMPARE(r.exitCode, 0);
    QVERIFY(r.out.startsWith("usage: sae-workbench"));
  }
};

QTEST_GUILESS_MAIN(HeadlessTest)
#include "tst_ui_headless.moc"
