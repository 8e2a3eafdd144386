// AtomicFile: writes whole files, replaces existing ones, creates folders, leaves no temporary
// behind, and reports failures with the path.
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>
#include <stdexcept>

#include "config/AtomicFile.h"
#include "support/QtTestStrings.h"
#include "support/TestText.h"

using sae::AtomicFile;
using saetest::readText;
namespace fs = std::filesystem;

namespace {

size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

}  // namespace

class TestConfigAtomicFile : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void writesAndReplaces() {
    QTemporaryDir dir;
    const fs::path path = fs::path(dir.path().toStdString()) / "a.json";
    AtomicFile::write(path.string(), "first");
    QCOMPARE(readText(path), std::string("first"));
    AtomicFile::write(path.string(), std::string("second\0with nul", 15));
    QCOMPARE(readText(path), std::string("second\0with nul", 15));
    AtomicFile::write(path.string(), "");
    QCOMPARE(readText(path), std::string(""));
    QCOMPARE(entries(path.parent_path()), size_t(1));  // no .tmp-<pid> left
  }

  void largeFile() {
    QTemporaryDir dir;
    const fs::path path = fs::path(dir.path().toStdString()) / "big.bin";
    std::string bytes(8 << 20, 'x');
    for (size_t i = 0; i < bytes.size(); i += 4097)
      bytes[i] = static_cast<char>(i % 251);
    AtomicFile::write(path.string(), bytes);
    QVERIFY(readText(path) == bytes);
  }

  void createsParentFolders() {
    QTemporaryDir dir;
    const fs::path path = fs::path(dir.path().toStdString()) / "x" / "y" / "z.txt";
    AtomicFile::write(path.string(), "deep");
    QCOMPARE(readText(path), std::string("deep"));
    // A bare file name writes into the current folder.
    const fs::path previous = fs::current_path();
    fs::current_path(dir.path().toStdString());
    AtomicFile::write("bare.txt", "here");
    fs::current_path(previous);
    QCOMPARE(readText(fs::path(dir.path().toStdString()) / "bare.txt"), std::string("here"));
  }

  void failuresNameThePath() {
    QTemporaryDir dir;
    const fs::path base = dir.path().toStdString();
    AtomicFile::write((base / "file").string(), "not a folder");
    // Parent is a regular file.
    const std::string underFile = (base / "file" / "child.txt").string();
    try {
      AtomicFile::write(underFile, "x");
      QFAIL("no error");
    } catch (const std::runtime_error& error) {
      const std::string what = error.what();
      QVERIFY2(what.find((base / "file").string()) != std::string::npos, what.c_str());
    }
    // Target is a folder: the rename fails and the temporary file is cleaned up.
    fs::create_directories(base / "folder" / "inside");
    try {
      AtomicFile::write((base / "folder").string(), "x");
      QFAIL("no error");
    } catch (const std::runtime_error& error) {
      const std::string what = error.what();
      QVERIFY2(what.find((base / "folder").string()) != std::string::npos, what.c_str());
      QVERIFY2(what.find("directory") != std::string::npos, what.c_str());  // strerror text
    }
    QCOMPARE(entries(base), size_t(2));  // "file" and "folder" only
  }
};

QTEST_APPLESS_MAIN(TestConfigAtomicFile)
#include "tst_config_atomic_file.moc"
