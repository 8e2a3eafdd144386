// The headless trainer as a user runs it: exit codes, messages, the preamble, and a real short
// run that leaves an SAE on disk.
#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "support/ProgramRun.h"

#include <sys/resource.h>

#include <csignal>
#include <cstring>

#include "formats/Safetensors.h"
#include "train/Bf16Gemm.h"

namespace {

const QString kTrainer = QStringLiteral(SAEWB_BINARY_DIR "/app/sae-train");

using Result = saetest::ProgramResult;

Result runTrainer(const QStringList& arguments, int timeoutMs = 300000) {
  return saetest::runProgram(kTrainer, arguments, timeoutMs);
}

QString writeFile(const QTemporaryDir& dir, const QString& name, const QByteArray& text) {
  const QString path = dir.filePath(name);
  QFile file(path);
  if (!file.open(QIODevice::WriteOnly)) return {};
  file.write(text);
  return path;
}

// The tiny synthetic run (steps of a few milliseconds) as --set arguments.
QStringList tinySyntheticRun(const QString& trainingTokens, const QString& checkpoints) {
  QStringList settings = {"--preset", "synthetic-demo"};
  for (const QString& kv :
       {QString("d_in=16"), QString("expansion_factor=2"), QString("train_batch_size=64"),
        QString("context_size=16"), QString("store_batch_size=2"), QString("n_batches_in_buffer=4"),
        QString("synthetic_n_features=32"), "training_tokens=" + trainingTokens,
        "n_checkpoints=" + checkpoints, QString("lr_decay_steps=0"), QString("l1_warm_up_steps=10"),
        QString("feature_sampling_window=100"), QString("dead_feature_window=100"),
        QString("num_threads=1")})
    settings << "--set" << kv;
  return settings;
}

// Whether an event file is a whole number of TFRecord frames (u64 length, u32 crc, data,
// u32 crc), i.e. it does not end in half a record.
bool isWholeTfRecordFile(const QByteArray& bytes) {
  qsizetype at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 12) return false;
    quint64 length = 0;
    std::memcpy(&length, bytes.constData() + at, 8);
    if (length > static_cast<quint64>(bytes.size() - at - 16)) return false;
    at += 16 + static_cast<qsizetype>(length);
  }
  return at == bytes.size();
}

}  // namespace

class SaeTrainCliTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void dryRunPrintsTheSeedPreamble() {
    const Result r = runTrainer({"--preset", "how-we-train-saes-gelu-1l", "--dry-run"});
    QCOMPARE(r.exitCode, 0);
    const QStringList lines = r.out.split('\n');
    const QStringList seed = {
        "Run name: 32768-L1-0.005-LR-5e-05-Tokens-8.192e+07",
        "n_tokens_per_buffer (millions): 1.048576",
        "Lower bound: n_contexts_per_buffer (millions): 0.001024",
        "Total training steps: 20000",
        "Total wandb updates: 400",
        "n_tokens_per_feature_sampling_window (millions): 4194.304",
        "n_tokens_per_dead_feature_window (millions): 4194.304",
        "We will reset the sparsity calculation 20 times.",
        "Number tokens in sparsity calculation window: 4.10e+06",
    };
    QVERIFY(lines.size() > seed.size());
    for (int i = 0; i < seed.size(); ++i)
      QCOMPARE(lines[i], seed[i]);
    QVERIFY(r.out.contains("config is valid"));
  }

  void listsPresets() {
    const Result r = runTrainer({"--list-presets"});
    QCOMPARE(r.exitCode, 0);
    QVERIFY(r.out.contains("how-we-train-saes-gelu-1l"));
    QVERIFY(r.out.contains("synthetic-demo"));
  }

  void misspelledFieldIsExitTwoWithSuggestion() {
    QTemporaryDir dir;
    const QString path = writeFile(dir, "typo.json", R"({"l1_coefficent": 5})");
    const Result r = runTrainer({"--config", path, "--dry-run"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("unknown field 'l1_coefficent'; did you mean 'l1_coefficient'?"),
             qPrintable(r.err));
  }

  void brokenJsonNamesLineAndColumn() {
    QTemporaryDir dir;
    const QString path =
        writeFile(dir, "broken.json", "{\n  \"lr\": 0.1,\n  \"l1_coefficient\" 5\n}\n");
    const Result r = runTrainer({"--config", path});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("broken.json") && r.err.contains("line 3"), qPrintable(r.err));
  }

  void badOverrideAndOptionAreExitTwo() {
    Result r = runTrainer({"--preset", "synthetic-demo", "--set", "lr_scheduler_name=linear"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("lr_scheduler_name") && r.err.contains("linear"), qPrintable(r.err));
    r = runTrainer({"--preset", "synthetic-demo", "--frobnicate"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY(r.err.contains("--frobnicate"));
    r = runTrainer({"--preset", "no-such-preset"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("synthetic-demo"), qPrintable(r.err));  // lists what exists
  }

  // autocast: the bf16 encoder product. The same 40 steps with and without it both finish; the
  // logged losses differ (the rounding happened) by under 5%. A CPU without bf16 matmul refuses
  // the config with exit 2 and a message naming the field.
  void autocastTrainsCloseToFp32() {
    QTemporaryDir dir;
    const auto train = [&](const QString& name, bool autocast) {
      return runTrainer({"--preset", "synthetic-demo", "--set", "training_tokens=40960", "--set",
                         "n_checkpoints=0", "--set", "wandb_log_frequency=10", "--set",
                         "lr_decay_steps=8", "--set", "l1_warm_up_steps=4", "--set",
                         QString("autocast=") + (autocast ? "true" : "false"), "--out",
                         dir.filePath(name)});
    };
    const Result bf16 = train("bf16", true);
    if (!sae::Bf16Gemm::available()) {
      QCOMPARE(bf16.exitCode, 2);
      QVERIFY2(bf16.err.contains("autocast"), qPrintable(bf16.err));
      return;
    }
    QVERIFY2(bf16.exitCode == 0, qPrintable(bf16.err));
    const Result fp32 = train("fp32", false);
    QVERIFY2(fp32.exitCode == 0, qPrintable(fp32.err));
    const auto lastMse = [&](const QString& name) {
      QFile metrics(dir.filePath(name) + "/metrics.jsonl");
      if (!metrics.open(QIODevice::ReadOnly)) return -1.0;
      const QByteArray last = metrics.readAll().trimmed().split('\n').last();
      return QJsonDocument::fromJson(last).object().value("losses/mse_loss").toDouble(-1);
    };
    const double bf16Mse = lastMse("bf16"), fp32Mse = lastMse("fp32");
    QVERIFY2(bf16Mse > 0 && fp32Mse > 0, qPrintable(QString("%1 %2").arg(bf16Mse).arg(fp32Mse)));
    const double relative = std::abs(bf16Mse - fp32Mse) / fp32Mse;
    QVERIFY2(relative > 1e-7 && relative < 0.05,
             qPrintable(QString("bf16 mse %1, fp32 mse %2").arg(bf16Mse).arg(fp32Mse)));
  }

  void missingCachedActivationsIsExitTwo() {
    QTemporaryDir dir;
    const Result r = runTrainer(
        {"--preset", "synthetic-demo", "--set", "use_synthetic_activations=false", "--set",
         "use_cached_activations=true", "--set",
         "cached_activations_path=" + dir.filePath("nowhere"), "--out", dir.filePath("run")});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("nowhere"), qPrintable(r.err));
  }

  void shortSyntheticRunLeavesAnSaeOnDisk() {
    QTemporaryDir dir;
    const QString out = dir.filePath("run");
    // 40 steps of 1024 tokens, logged every 10 steps.
    const Result r =
        runTrainer({"--preset", "synthetic-demo", "--set", "training_tokens=40960", "--set",
                    "n_checkpoints=0", "--set", "wandb_log_frequency=10", "--set",
                    "lr_decay_steps=8", "--set", "l1_warm_up_steps=4", "--out", out});
    QVERIFY2(r.exitCode == 0, qPrintable(r.err));
    QVERIFY(QFile::exists(out + "/config.json"));
    QVERIFY(QFile::exists(out + "/final/sae_weights.safetensors"));
    QVERIFY(QFile::exists(out + "/final/cfg.json"));
    QVERIFY(QFile::exists(out + "/final/sparsity.safetensors"));
    QFile metrics(out + "/metrics.jsonl");
    QVERIFY(metrics.open(QIODevice::ReadOnly));
    const QList<QByteArray> lines = metrics.readAll().trimmed().split('\n');
    QCOMPARE(lines.size(), 4);
    QVERIFY(lines[0].startsWith("{\"step\":9,"));
    QVERIFY(lines[3].contains("\"losses/mse_loss\""));
    QVERIFY(lines[3].contains("\"metrics/mmcs\""));
    QVERIFY(r.out.contains("MSE Loss"));
  }

  void interruptSavesCheckpointAndExits130() {
    QTemporaryDir dir;
    const QString out = dir.filePath("run");
    QProcess process;
    process.start(kTrainer, {"--preset", "synthetic-demo", "--set", "training_tokens=1024000000",
                             "--set", "wandb_log_frequency=1", "--out", out});
    QVERIFY(process.waitForStarted());
    // Wait until training is under way (the first metrics line is flushed).
    QTRY_VERIFY_WITH_TIMEOUT(QFile(out + "/metrics.jsonl").size() > 0, 120000);
    ::kill(static_cast<pid_t>(process.processId()), SIGINT);
    QVERIFY(process.waitForFinished(120000));
    QCOMPARE(process.exitCode(), 130);
    QDir checkpoints(out + "/checkpoints");
    const QStringList saved = checkpoints.entryList(QDir::Dirs | QDir::NoDotAndDotDot);
    QCOMPARE(saved.size(), 1);
    QVERIFY(QFile::exists(checkpoints.filePath(saved[0]) + "/sae_weights.safetensors"));
  }

  // A run killed with SIGKILL (no chance to save anything) continues from its last complete
  // checkpoint and ends with the same bytes in final/ as a run that was never killed.
  void killedRunResumesToTheSameWeights() {
    QTemporaryDir dir;
    const QString killed = dir.filePath("killed"), whole = dir.filePath("whole");
    // Tiny steps (a few milliseconds), 4000 of them, a checkpoint every 200.
    const QStringList settings =
        tinySyntheticRun("256000", "20") + QStringList{"--set", "wandb_log_frequency=50"};
    QProcess process;
    process.start(kTrainer, settings + QStringList{"--out", killed});
    QVERIFY(process.waitForStarted());
    // Kill once two checkpoints are complete (the state file is written last).
    auto completeCheckpoints = [&] {
      int n = 0;
      for (const QString& name :
           QDir(killed + "/checkpoints").entryList(QDir::Dirs | QDir::NoDotAndDotDot))
        n += QFile::exists(killed + "/checkpoints/" + name + "/training_state.safetensors");
      return n;
    };
    QTRY_VERIFY_WITH_TIMEOUT(completeCheckpoints() >= 2 || process.state() == QProcess::NotRunning,
                             120000);
    QVERIFY2(process.state() == QProcess::Running,
             qPrintable("the run ended before it could be killed: " +
                        QString::fromUtf8(process.readAllStandardError())));
    ::kill(static_cast<pid_t>(process.processId()), SIGKILL);
    QVERIFY(process.waitForFinished(60000));
    QVERIFY(!QFile::exists(killed + "/final/sae_weights.safetensors"));

    const Result resumed = runTrainer({"--resume", killed});
    QVERIFY2(resumed.exitCode == 0, qPrintable(resumed.err));
    QVERIFY(resumed.out.contains("Resuming " + killed + " at step "));
    const Result uninterrupted = runTrainer(settings + QStringList{"--out", whole});
    QVERIFY2(uninterrupted.exitCode == 0, qPrintable(uninterrupted.err));

    for (const QString file : {"final/sae_weights.safetensors", "final/sparsity.safetensors"}) {
      QFile a(whole + "/" + file), b(killed + "/" + file);
      QVERIFY(a.open(QIODevice::ReadOnly) && b.open(QIODevice::ReadOnly));
      QVERIFY2(a.readAll() == b.readAll(), qPrintable(file + " differs"));
    }
    // Same logged steps, none twice: the killed run's lines after its checkpoint were dropped.
    auto steps = [](const QString& path) {
      QFile f(path);
      QStringList out;
      if (!f.open(QIODevice::ReadOnly)) return out;
      for (const QByteArray& line : f.readAll().trimmed().split('\n'))
        out << QString(line.left(line.indexOf(',')));
      return out;
    };
    QCOMPARE(steps(killed + "/metrics.jsonl"), steps(whole + "/metrics.jsonl"));
  }

  // A full disk, simulated with a per-process file size limit (RLIMIT_FSIZE: a write past it
  // fails with EFBIG, as one on a full disk fails with ENOSPC): the run stops with an error that
  // names the file, and every file it leaves is whole (no temporary files, no half lines or
  // half records, every safetensors file readable).
  void fullDiskStopsTheRunAndLeavesNoHalfWrittenFile() {
    QTemporaryDir dir;
    const QString out = dir.filePath("run");
    QProcess process;
    process.setChildProcessModifier([] {
      ::signal(SIGXFSZ, SIG_IGN);  // report EFBIG from write() instead of killing the process
      const rlimit limit{64 * 1024, 64 * 1024};
      ::setrlimit(RLIMIT_FSIZE, &limit);
    });
    // 4000 steps, a checkpoint every 100; the metrics and event files pass 64 KiB after a few.
    process.start(kTrainer, tinySyntheticRun("256000", "40") +
                                QStringList{"--set", "wandb_log_frequency=5", "--out", out});
    QVERIFY(process.waitForFinished(120000));
    const QString err = QString::fromUtf8(process.readAllStandardError());
    QCOMPARE(process.exitStatus(), QProcess::NormalExit);
    QVERIFY2(process.exitCode() != 0, qPrintable(err));
    QVERIFY2(err.contains("File too large"), qPrintable(err));
    QVERIFY2(err.contains(out), qPrintable("the error should name the file: " + err));
    QVERIFY(!QFile::exists(out + "/final/sae_weights.safetensors"));

    int safetensorsFiles = 0, eventFiles = 0;
    QDirIterator files(out, QDir::Files, QDirIterator::Subdirectories);
    while (files.hasNext()) {
      const QString path = files.next();
      QVERIFY2(!path.contains(".tmp-"), qPrintable("temporary file left: " + path));
      QFile file(path);
      QVERIFY(file.open(QIODevice::ReadOnly));
      const QByteArray bytes = file.readAll();
      if (path.endsWith(".jsonl")) {
        for (const QByteArray& line : bytes.split('\n')) {
          if (line.isEmpty()) continue;
          QVERIFY2(QJsonDocument::fromJson(line).isObject(), qPrintable("half line in " + path));
        }
        QVERIFY(bytes.isEmpty() || bytes.endsWith('\n'));
      } else if (path.endsWith(".json")) {
        QVERIFY2(QJsonDocument::fromJson(bytes).isObject(), qPrintable("broken " + path));
      } else if (path.endsWith(".safetensors")) {
        ++safetensorsFiles;
        QVERIFY2(!sae::Safetensors::read(path.toStdString()).empty(), qPrintable(path));
      } else if (path.contains("tfevents")) {
        ++eventFiles;
        QVERIFY2(isWholeTfRecordFile(bytes), qPrintable("half record in " + path));
      }
    }
    QCOMPARE(eventFiles, 1);
    QVERIFY(safetensorsFiles >= 1);  // a checkpoint was written before the limit was reached
    // run.json (small, still writable) says why the run ended.
    QFile manifest(out + "/run.json");
    QVERIFY(manifest.open(QIODevice::ReadOnly));
    const QJsonObject run = QJsonDocument::fromJson(manifest.readAll()).object();
    QCOMPARE(run["status"].toString(), QString("failed"));
    QVERIFY2(run["message"].toString().contains("File too large"),
             qPrintable(run["message"].toString()));
  }

  // An output folder that cannot be created (a file stands where a parent folder should be; the
  // check works under root too, which ignores permission bits) is refused before training, with
  // the folder named, and nothing is written.
  void unwritableOutputFolderIsRefused() {
    QTemporaryDir dir;
    const QString blocker = writeFile(dir, "not-a-folder", "keep me\n");
    const Result r =
        runTrainer(tinySyntheticRun("6400", "0") + QStringList{"--out", blocker + "/run"});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("cannot create the run folder '" + blocker + "/run': Not a directory"),
             qPrintable(r.err));
    QFile file(blocker);
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(file.readAll(), QByteArray("keep me\n"));
    QCOMPARE(QDir(dir.path()).entryList(QDir::AllEntries | QDir::NoDotAndDotDot),
             QStringList{"not-a-folder"});
  }

  void resumeOfAFolderWithoutCheckpointsExits2() {
    QTemporaryDir dir;
    const Result r = runTrainer({"--resume", dir.path()});
    QCOMPARE(r.exitCode, 2);
    QVERIFY2(r.err.contains("is not a run folder: it has no config.json"), qPrintable(r.err));
    const Result mixed = runTrainer({"--resume", dir.path(), "--preset", "demo"});
    QCOMPARE(mixed.exitCode, 2);
    QVERIFY2(mixed.err.contains("--resume RUN_DIR takes no other options"), qPrintable(mixed.err));
  }
};

QTEST_GUILESS_MAIN(SaeTrainCliTest)
#include "tst_sae_train_cli.moc"
