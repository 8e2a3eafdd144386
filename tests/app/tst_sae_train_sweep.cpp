// sae-train with a sweep config (issue 5 §5) as a user runs it: the combinations printed, one
// run folder per SAE, the errors for lists that cannot be swept, and `sweep --emit-slurm`: one
// valid config per combination and an sbatch script that bash accepts, with the right array
// range, that trains a combination when Slurm starts it (checked with Slurm's variables set by
// hand, and a stand-in srun for the multi-rank job).
#include <QDir>
#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <fstream>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "config/RunConfig.h"
#include "config/SweepExpansion.h"
#include "formats/Safetensors.h"
#include "support/ProgramRun.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const QString kTrainer = QStringLiteral(SAEWB_BINARY_DIR "/app/sae-train");

saetest::ProgramResult runTrainer(const QStringList& arguments, int timeoutMs = 120000) {
  return saetest::runProgram(kTrainer, arguments, timeoutMs);
}

// The tiny synthetic run, as a sweep over l1_coefficient x lr (4 SAEs, 6 steps each).
json sweepConfig() {
  return json{{"model_name", "tiny"},
              {"dataset_path", ""},
              {"use_synthetic_activations", true},
              {"synthetic_n_features", 32},
              {"synthetic_feature_probability", 0.05},
              {"d_in", 16},
              {"expansion_factor", 2},
              {"context_size", 16},
              {"store_batch_size", 2},
              {"n_batches_in_buffer", 4},
              {"train_batch_size", 64},
              {"training_tokens", 64 * 6},
              {"l1_coefficient", {0.5, 2}},
              {"lr", {1e-3, 3e-3}},
              {"lr_warm_up_steps", 0},
              {"lr_decay_steps", 0},
              {"wandb_log_frequency", 1},
              {"n_checkpoints", 0},
              {"num_threads", 1},
              {"seed", 3}};
}

QString writeJson(const QTemporaryDir& dir, const QString& name, const json& object) {
  const QString path = dir.filePath(name);
  std::ofstream(path.toStdString()) << object.dump(2);
  return path;
}

QString readText(const QString& path) {
  QFile file(path);
  if (!file.open(QIODevice::ReadOnly)) return {};
  return QString::fromUtf8(file.readAll());
}

void writeExecutable(const QString& path, const QByteArray& text) {
  QFile file(path);
  QVERIFY(file.open(QIODevice::WriteOnly));
  file.write(text);
  file.close();
  QVERIFY(file.setPermissions(file.permissions() | QFileDevice::ExeOwner));
}

saetest::ProgramResult runBash(const QStringList& arguments, const QProcessEnvironment& env) {
  QProcess process;
  process.setProcessEnvironment(env);
  process.start("bash", arguments);
  if (!process.waitForFinished(120000)) {
    process.kill();
    process.waitForFinished();
    return {-1, {}, "timed out"};
  }
  return {process.exitStatus() == QProcess::NormalExit ? process.exitCode() : -2,
          QString::fromUtf8(process.readAllStandardOutput()),
          QString::fromUtf8(process.readAllStandardError())};
}

std::vector<std::string> expectedNames() {
  std::vector<std::string> names;
  for (const auto& c : sae::SweepExpansion::expand(sweepConfig()))
    names.push_back(c.folderName);
  return names;
}

}  // namespace

class TestSaeTrainSweep : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void sweepRunWritesOneFolderPerSae() {
    QTemporaryDir dir;
    const QString config = writeJson(dir, "sweep.json", sweepConfig());
    const QString out = dir.filePath("out");
    const auto result = runTrainer({"--config", config, "--out", out});
    QVERIFY2(result.exitCode == 0, qPrintable(result.err + result.out));
    QVERIFY2(result.out.contains("Sweep of 4 SAEs over l1_coefficient x lr:"),
             qPrintable(result.out));
    const auto names = expectedNames();
    QCOMPARE(names.front(),
             std::string("tiny_blocks.0.hook_mlp_out_32_l1_coefficient_0.5_lr_0.001"));
    for (const auto& name : names) {
      QVERIFY2(result.out.contains(QString::fromStdString(name)), name.c_str());
      QVERIFY2(QFile::exists(out + "/" + QString::fromStdString(name) +
                             "/final/sae_weights.safetensors"),
               name.c_str());
    }
    QVERIFY(QFile::exists(out + "/sweep.json"));
    QCOMPARE(QDir(out).entryList(QDir::Dirs | QDir::NoDotAndDotDot).size(), 4);

    // Combination 3 trained alone (a fresh process, its own config.json) ends with the same
    // weights, bit for bit, as in the sweep.
    const QString sweptRun = out + "/" + QString::fromStdString(names[3]);
    const auto alone =
        runTrainer({"--config", sweptRun + "/config.json", "--out", dir.filePath("alone")});
    QVERIFY2(alone.exitCode == 0, qPrintable(alone.err));
    const auto a =
        sae::Safetensors::read((sweptRun + "/final/sae_weights.safetensors").toStdString());
    const auto b =
        sae::Safetensors::read(dir.filePath("alone/final/sae_weights.safetensors").toStdString());
    QCOMPARE(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i)
      QVERIFY2(torch::equal(a[i].second, b[i].second), a[i].first.c_str());

    // A second sweep into the same folder is refused; resuming the sweep folder says what works.
    const auto again = runTrainer({"--config", config, "--out", out});
    QCOMPARE(again.exitCode, 2);
    QVERIFY2(again.err.contains("already holds a sweep"), qPrintable(again.err));
    const auto resume = runTrainer({"--resume", out});
    QCOMPARE(resume.exitCode, 2);
    QVERIFY2(resume.err.contains("is a sweep folder (it holds sweep.json)") &&
                 resume.err.contains("continue one SAE with sae-train --resume"),
             qPrintable(resume.err));

    // The subcommand, a --set list and --dry-run.
    json scalar = sweepConfig();
    scalar["l1_coefficient"] = 1;
    scalar["lr"] = 1e-3;
    const QString single = writeJson(dir, "single.json", scalar);
    const auto dry =
        runTrainer({"sweep", "--config", single, "--set", "lr=[1e-3, 2e-3, 3e-3]", "--dry-run"});
    QVERIFY2(dry.exitCode == 0, qPrintable(dry.err));
    QVERIFY2(dry.out.contains("Sweep of 3 SAEs over lr:") && dry.out.contains("config is valid"),
             qPrintable(dry.out));
  }

  void listsThatCannotBeSweptAreRefused() {
    QTemporaryDir dir;
    json object = sweepConfig();
    object["context_size"] = {16, 32};
    object["training_tokens"] = {64, 128};
    const QString config = writeJson(dir, "bad.json", object);
    const auto result = runTrainer({"--config", config, "--out", dir.filePath("out")});
    QCOMPARE(result.exitCode, 2);
    QVERIFY2(result.err.contains("context_size: cannot be a list: it defines the activation "
                                 "stream") &&
                 result.err.contains("training_tokens: cannot be a list") &&
                 result.err.contains("bad.json"),
             qPrintable(result.err));
    QVERIFY(!QDir(dir.filePath("out")).exists());

    const auto emitWithoutSweep =
        runTrainer({"--config", config, "--emit-slurm", dir.filePath("slurm")});
    QCOMPARE(emitWithoutSweep.exitCode, 2);
    QVERIFY2(emitWithoutSweep.err.contains("--emit-slurm belongs to the sweep command"),
             qPrintable(emitWithoutSweep.err));
    const auto nodesAlone = runTrainer({"sweep", "--config", config, "--nodes", "2"});
    QCOMPARE(nodesAlone.exitCode, 2);
    QVERIFY2(nodesAlone.err.contains("go with --emit-slurm DIR"), qPrintable(nodesAlone.err));
    const auto badNodes = runTrainer(
        {"sweep", "--config", config, "--emit-slurm", dir.filePath("s"), "--nodes", "two"});
    QCOMPARE(badNodes.exitCode, 2);
    QVERIFY2(badNodes.err.contains("--nodes needs a positive whole number, got 'two'"),
             qPrintable(badNodes.err));
  }

  void emitSlurmArrayJob() {
    QTemporaryDir dir;
    const QString config = writeJson(dir, "sweep.json", sweepConfig());
    const QString slurm = dir.filePath("slurm");
    const auto result =
        runTrainer({"sweep", "--config", config, "--emit-slurm", slurm, "--partition", "cpu",
                    "--time", "01:00:00", "--cpus-per-task", "4"});
    QVERIFY2(result.exitCode == 0, qPrintable(result.err + result.out));
    QVERIFY2(result.out.contains("Submit with: sbatch"), qPrintable(result.out));

    // One scalar config per combination, each valid, in product order.
    const auto names = expectedNames();
    const double l1[] = {0.5, 0.5, 2, 2}, lr[] = {1e-3, 3e-3, 1e-3, 3e-3};
    QCOMPARE(QDir(slurm + "/configs").entryList({"*.json"}, QDir::Files).size(), 4);
    for (size_t k = 0; k < names.size(); ++k) {
      const QString path = slurm + "/configs/" + QString::fromStdString(names[k]) + ".json";
      const sae::RunConfig c = sae::RunConfig::loadFile(path.toStdString());
      QCOMPARE(c.l1_coefficient, l1[k]);
      QCOMPARE(c.lr, lr[k]);
      QVERIFY(c.validate().empty());
    }

    const QString script = slurm + "/sweep.sbatch";
    const QString text = readText(script);
    QVERIFY2(text.contains("\n#SBATCH --array=0-3\n"), qPrintable(text));
    QVERIFY(text.contains("\n#SBATCH --partition=cpu\n"));
    QVERIFY(text.contains("\n#SBATCH --time=01:00:00\n"));
    QVERIFY(text.contains("\n#SBATCH --cpus-per-task=4\n"));
    QVERIFY(text.contains("\n#SBATCH --output=" + QDir(slurm).absolutePath() + "/logs/"));
    QVERIFY(QDir(slurm + "/logs").exists());  // Slurm does not create it
    QVERIFY(!text.contains("srun"));
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    const auto syntax = runBash({"-n", script}, env);
    QVERIFY2(syntax.exitCode == 0, qPrintable(syntax.err));

    // Array task 2 as Slurm would start it: trains combination 2 into runs/<name 2>.
    env.insert("SLURM_ARRAY_TASK_ID", "2");
    env.insert("SAE_TRAIN", kTrainer);
    const auto task = runBash({script}, env);
    QVERIFY2(task.exitCode == 0, qPrintable(task.err + task.out));
    const QString run = slurm + "/runs/" + QString::fromStdString(names[2]);
    QVERIFY(QFile::exists(run + "/final/sae_weights.safetensors"));
    QCOMPARE(sae::RunConfig::loadFile((run + "/config.json").toStdString()).l1_coefficient, 2.0);
    QCOMPARE(QDir(slurm + "/runs").entryList(QDir::Dirs | QDir::NoDotAndDotDot).size(), 1);
    // Requeued after it finished: nothing to do.
    const auto requeued = runBash({script}, env);
    QVERIFY2(requeued.exitCode == 0 && requeued.out.contains("has finished already"),
             qPrintable(requeued.err + requeued.out));
  }

  void emitSlurmMultiRankJob() {
    QTemporaryDir dir;
    json object = sweepConfig();
    object["lr"] = 1e-3;  // 2 SAEs
    const QString config = writeJson(dir, "sweep.json", object);
    const QString slurm = dir.filePath("slurm");
    const auto result =
        runTrainer({"sweep", "--config", config, "--emit-slurm", slurm, "--nodes", "2",
                    "--ranks-per-node", "2", "--runs-dir", dir.filePath("elsewhere")});
    QVERIFY2(result.exitCode == 0, qPrintable(result.err + result.out));
    const QString script = slurm + "/sweep.sbatch";
    const QString text = readText(script);
    for (const char* line : {"\n#SBATCH --array=0-1\n", "\n#SBATCH --nodes=2\n",
                             "\n#SBATCH --ntasks-per-node=2\n", "WORLD_SIZE=\"$SLURM_NTASKS\"",
                             "RANK=\"$SLURM_PROCID\"", "MASTER_ADDR=", "MASTER_PORT=", "srun "})
      QVERIFY2(text.contains(line), line);
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    QVERIFY(runBash({"-n", script}, env).exitCode == 0);

    // Stand-ins: scontrol names the first node, srun starts "rank 1 of 4", and the trainer
    // records what it was given.
    const QString bin = dir.filePath("bin");
    QDir().mkpath(bin);
    writeExecutable(bin + "/scontrol", "#!/bin/bash\necho node-a\necho node-b\n");
    writeExecutable(bin + "/srun",
                    "#!/bin/bash\nwhile [[ \"$1\" == --* ]]; do shift; done\n"
                    "export SLURM_PROCID=1 SLURM_LOCALID=1\nexec \"$@\"\n");
    const QString record = dir.filePath("record.txt");
    writeExecutable(bin + "/fake-sae-train",
                    ("#!/bin/bash\necho \"$MASTER_ADDR $MASTER_PORT $RANK $LOCAL_RANK "
                     "$WORLD_SIZE $*\" > " +
                     record + "\n")
                        .toUtf8());
    env.insert("PATH", bin + ":" + env.value("PATH"));
    env.insert("SLURM_ARRAY_TASK_ID", "1");
    env.insert("SLURM_JOB_NODELIST", "node-[a-b]");
    env.insert("SLURM_NTASKS", "4");
    env.insert("SAE_TRAIN", bin + "/fake-sae-train");
    const auto task = runBash({script}, env);
    QVERIFY2(task.exitCode == 0, qPrintable(task.err + task.out));
    const auto names = sae::SweepExpansion::expand(object);
    const QString name = QString::fromStdString(names[1].folderName);
    const QString expected = "node-a 29501 1 1 4 --config " + QDir(slurm).absolutePath() +
                             "/configs/" + name + ".json --out " +
                             QDir(dir.filePath("elsewhere")).absolutePath() + "/" + name;
    QCOMPARE(readText(record).trimmed(), expected);
  }
};

QTEST_GUILESS_MAIN(TestSaeTrainSweep)
#include "tst_sae_train_sweep.moc"
