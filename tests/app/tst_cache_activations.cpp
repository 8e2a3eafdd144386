// `sae-train cache-activations` as a user runs it on the tiny fixture run
// (tests/fixtures/lm_training, written by tests/reference/lm_training_reference.py): the cached
// rows are the reference's blocks.0.hook_mlp_out values of the packed stream, in order (1e-5
// absolute: float32 forward passes), a run then trains from the cache, and bad arguments fail
// with exit code 2 and a message naming the problem.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include "support/ProgramRun.h"

#include <filesystem>

#include <torch/torch.h>

#include "formats/Safetensors.h"

namespace fs = std::filesystem;

namespace {

const QString kTrainer = QStringLiteral(SAEWB_BINARY_DIR "/app/sae-train");
const QString kConfig = QStringLiteral(SAEWB_FIXTURES_DIR "/lm_training/config.json");
const std::string kGolden = std::string(SAEWB_FIXTURES_DIR) + "/lm_training/golden.safetensors";

using Result = saetest::ProgramResult;

Result runTrainer(const QStringList& arguments, int timeoutMs = 120000) {
  return saetest::runProgram(kTrainer, arguments, timeoutMs);
}

}  // namespace

class TestCacheActivations : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void cachesTheHookValuesAndTrainsFromThem() {
    QTemporaryDir dir;
    const QString cache = dir.filePath("cache");
    const Result r = runTrainer({"cache-activations", "--config", kConfig, "--out", cache});
    QVERIFY2(r.exitCode == 0, qPrintable(r.err));
    // 384 training tokens, 128 rows a buffer: ceil(384 / 128) + 1 files.
    std::vector<torch::Tensor> parts;
    for (int i = 0; i < 4; ++i) {
      const std::string file =
          (fs::path(cache.toStdString()) / (std::to_string(i) + ".safetensors")).string();
      QVERIFY2(fs::exists(file), file.c_str());
      const torch::Tensor t = sae::Safetensors::readTensor(file, "activations");
      QCOMPARE(t.sizes().vec(), (std::vector<int64_t>{128, 1, 16}));
      parts.push_back(t.select(1, 0));
    }
    QVERIFY(!fs::exists(fs::path(cache.toStdString()) / "4.safetensors"));
    const torch::Tensor cached = torch::cat(parts);
    const torch::Tensor hook = sae::Safetensors::readTensor(kGolden, "hook").reshape({-1, 16});
    const torch::Tensor expected = hook.narrow(0, 0, cached.size(0));
    QVERIFY2(
        torch::allclose(cached, expected, 0, 1e-5),
        qPrintable(QString("max diff %1").arg((cached - expected).abs().max().item<double>())));

    const QString run = dir.filePath("run");
    const Result t = runTrainer({"--config", kConfig, "--set", "use_cached_activations=true",
                                 "--set", "cached_activations_path=" + cache, "--out", run});
    QVERIFY2(t.exitCode == 0, qPrintable(t.err));
    QVERIFY(fs::exists(fs::path(run.toStdString()) / "final" / "sae_weights.safetensors"));

    // A second cache into the same folder is refused rather than mixed with the first.
    const Result again = runTrainer({"cache-activations", "--config", kConfig, "--out", cache});
    QCOMPARE(again.exitCode, 2);
    QVERIFY2(again.err.contains("already holds a cache"), qPrintable(again.err));
  }

  void badArgumentsAreClearErrors() {
    const Result noOut = runTrainer({"cache-activations", "--config", kConfig});
    QCOMPARE(noOut.exitCode, 2);
    QVERIFY2(noOut.err.contains("--out DIR"), qPrintable(noOut.err));
    const Result noConfig = runTrainer({"cache-activations", "--out", "/tmp/x"});
    QCOMPARE(noConfig.exitCode, 2);
    QVERIFY2(noConfig.err.contains("--config FILE or --preset NAME"), qPrintable(noConfig.err));
    QTemporaryDir dir;
    const Result cached = runTrainer(
        {"cache-activations", "--config", kConfig, "--set", "use_cached_activations=true", "--set",
         "cached_activations_path=" + dir.path(), "--out", dir.filePath("c")});
    QCOMPARE(cached.exitCode, 2);
    QVERIFY2(cached.err.contains("use_cached_activations=false"), qPrintable(cached.err));
    const Result dryRun = runTrainer(
        {"cache-activations", "--config", kConfig, "--out", dir.filePath("d"), "--dry-run"});
    QCOMPARE(dryRun.exitCode, 2);
    QVERIFY2(dryRun.err.contains("takes only"), qPrintable(dryRun.err));
  }
};

QTEST_GUILESS_MAIN(TestCacheActivations)
#include "tst_cache_activations.moc"
