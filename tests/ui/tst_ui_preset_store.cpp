// The user's preset folder: save, rename, delete, import, export, and corrupt files that are
// reported and skipped instead of breaking the list.
#include <QFile>
#include <QTemporaryDir>
#include <QtTest>

#include "PresetStore.h"
#include "config/ConfigError.h"
#include "config/PresetLibrary.h"
#include "config/RunConfig.h"

namespace {

QByteArray readAll(const QString& path) {
  QFile file(path);
  return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

void writeAll(const QString& path, const QByteArray& bytes) {
  QFile file(path);
  QVERIFY(file.open(QIODevice::WriteOnly));
  file.write(bytes);
}

template <typename F>
QString errorOf(F&& f) {
  try {
    f();
  } catch (const std::exception& error) {
    return QString::fromStdString(error.what());
  }
  return {};
}

}  // namespace

class PresetStoreTest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void savesAndLoadsAFullConfig() {
    QTemporaryDir dir;
    PresetStore store(dir.path() + "/presets");  // missing folder: created on first save
    QVERIFY(store.names().isEmpty());
    sae::RunConfig config = sae::PresetLibrary::load("synthetic-demo");
    config.l1_coefficient = 0.35;
    config.lr_end = 2.5e-5;
    store.save("mine", config.toJson());
    QCOMPARE(store.names(), QStringList{"mine"});
    QVERIFY(store.contains("mine"));
    const sae::RunConfig back = sae::RunConfig::fromJson(store.load("mine"));
    QCOMPARE(back.toJson(), config.toJson());
    // Written atomically: no temporary file is left beside it.
    QCOMPARE(QDir(store.folder()).entryList(QDir::Files), QStringList{"mine.json"});
  }

  void renamesAndRefusesToOverwrite() {
    QTemporaryDir dir;
    PresetStore store(dir.path());
    store.save("a", {{"l1_coefficient", 1.0}});
    store.save("b", {{"l1_coefficient", 2.0}});
    store.rename("a", "c");
    QCOMPARE(store.names(), (QStringList{"b", "c"}));
    QCOMPARE(store.load("c")["l1_coefficient"].get<double>(), 1.0);
    const QString error = errorOf([&] { store.rename("c", "b"); });
    QVERIFY2(error.contains("exists"), qPrintable(error));
    QCOMPARE(store.load("b")["l1_coefficient"].get<double>(), 2.0);
    QVERIFY(errorOf([&] { store.rename("nope", "x"); }).contains("no user preset named 'nope'"));
  }

  void deletes() {
    QTemporaryDir dir;
    PresetStore store(dir.path());
    store.save("gone", {{"lr", 0.001}});
    store.remove("gone");
    QVERIFY(store.names().isEmpty());
    QVERIFY(!QFile::exists(dir.filePath("gone.json")));
    QVERIFY(errorOf([&] { store.remove("gone"); }).contains("no user preset named 'gone'"));
  }

  void rejectsNamesThatAreNotFileNames() {
    QTemporaryDir dir;
    PresetStore store(dir.path());
    for (const QString& bad : {QString(""), QString("a/b"), QString(".hidden"), QString(" x")}) {
      const QString error = errorOf([&] { store.save(bad, nlohmann::json::object()); });
      QVERIFY2(error.startsWith("cannot save preset"), qPrintable(bad + ": " + error));
    }
    QVERIFY(store.names().isEmpty());
  }

  void importsAndExports() {
    QTemporaryDir dir;
    PresetStore store(dir.path() + "/store");
    const QString source = dir.filePath("shared-config.json");
    writeAll(source, R"({"l1_coefficient": 0.5, "expansion_factor": 16})");
    QCOMPARE(store.importFile(source), QString("shared-config"));
    QCOMPARE(store.importFile(source, "renamed"), QString("renamed"));
    QCOMPARE(store.names(), (QStringList{"renamed", "shared-config"}));
    QCOMPARE(store.load("renamed")["expansion_factor"].get<int>(), 16);

    const QString target = dir.filePath("out/exported.json");
    store.exportTo("shared-config", target);
    const auto exported = nlohmann::json::parse(readAll(target).toStdString());
    QCOMPARE(exported["l1_coefficient"].get<double>(), 0.5);
    QCOMPARE(exported["expansion_factor"].get<int>(), 16);

    // Importing something that is not a JSON object names the file and adds nothing.
    const QString bad = dir.filePath("list.json");
    writeAll(bad, "[1, 2]");
    const QString error = errorOf([&] { store.importFile(bad); });
    QVERIFY2(error.contains("list.json") && error.contains("JSON object"), qPrintable(error));
    QCOMPARE(store.names().size(), 2);
  }

  void corruptFileIsReportedAndSkipped() {
    QTemporaryDir dir;
    PresetStore store(dir.path());
    store.save("good", {{"lr", 0.001}});
    writeAll(dir.filePath("broken.json"), "{\"lr\": 0.001,");  // cut off mid-write by hand
    writeAll(dir.filePath("number.json"), "42");
    QCOMPARE(store.names(), QStringList{"good"});
    QCOMPARE(store.problems().size(), 2);
    QVERIFY2(store.problems()[0].contains("broken.json") &&
                 store.problems()[0].contains("not valid JSON"),
             qPrintable(store.problems()[0]));
    QVERIFY2(store.problems()[1].contains("number.json"), qPrintable(store.problems()[1]));
    const QString error = errorOf([&] { store.load("broken"); });
    QVERIFY2(error.contains("broken.json"), qPrintable(error));
  }
};

QTEST_GUILESS_MAIN(PresetStoreTest)
#include "tst_ui_preset_store.moc"
