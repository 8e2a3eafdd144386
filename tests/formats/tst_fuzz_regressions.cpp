// The inputs with which fuzzing (fuzz/, docs/robustness.md) found bugs, replayed through the
// readers in every test run: each must end in an error that names the problem, not in a crash,
// undefined behaviour, a huge allocation or a config that validates with a wrapped-around value.
#include <QDir>
#include <QtTest>

#include <string>
#include <vector>

#include "config/RunConfig.h"
#include "formats/ParquetReader.h"
#include "formats/PthReader.h"
#include "support/TestText.h"

namespace {

const QString kRegressions = QStringLiteral(SAEWB_FIXTURES_DIR "/fuzz-regressions/");

QStringList filesIn(const QString& folder) {
  QStringList files;
  const QDir dir(kRegressions + folder);
  for (const QString& name : dir.entryList(QDir::Files, QDir::Name))
    files << dir.filePath(name);
  return files;
}

}  // namespace

class TestFuzzRegressions : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  // Field values whose products or sums overflow int64 are rejected by validate() (naming the
  // field), and the derived values and preamble stay computable (the preamble's products are
  // taken in double, so a valid config with huge buffers still prints one).
  void configOverflowsAreRejected() {
    const QStringList files = filesIn("config");
    QCOMPARE(files.size(), 4);
    for (const QString& file : files) {
      std::string loadError;
      sae::RunConfig config;
      try {
        config = sae::RunConfig::loadFile(file.toStdString());
      } catch (const std::runtime_error& e) {
        loadError = e.what();
      }
      if (!loadError.empty()) continue;  // refused while loading: also fine
      const auto issues = config.validate();
      if (!file.contains("preamble")) QVERIFY2(!issues.empty(), qPrintable(file + " validated"));
      QVERIFY(config.derivedDSae() >= 0);
      QVERIFY(!config.preambleLines().empty());
    }
  }

  void parquetFilesFailWithAMessage() {
    const QStringList files = filesIn("parquet");
    QCOMPARE(files.size(), 2);
    for (const QString& file : files) {
      const std::string message = saetest::errorOf([&] {
        sae::ParquetReader reader(file.toStdString());
        std::vector<int64_t> tokens;
        bool continuation = false;
        for (int i = 0; i < 65536 && reader.next(tokens, continuation); ++i) {
        }
      });
      QVERIFY2(saetest::contains(message, QFileInfo(file).fileName().toStdString()),
               qPrintable(file + ": " + QString::fromStdString(message)));
    }
  }

  // A pickle that puts a list inside itself: an error, and (under the fuzz build's
  // LeakSanitizer) no leaked cycle.
  void selfContainingPickleFailsWithAMessage() {
    const QStringList files = filesIn("pth");
    QCOMPARE(files.size(), 1);
    const std::string message =
        saetest::errorOf([&] { sae::PthReader::read(files.front().toStdString()); });
    QVERIFY2(!message.empty(), "a self-containing pickle was read as a state dict");
  }
};

QTEST_GUILESS_MAIN(TestFuzzRegressions)
#include "tst_fuzz_regressions.moc"
