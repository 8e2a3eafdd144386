// NpyReader against arrays saved by numpy (tests/reference/token_packing_reference.py): every
// supported dtype, 1-D streams and 2-D documents, arrays it must refuse with a clear message,
// and truncated or bit-flipped copies, which must give an error naming the file, never a crash.
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "formats/NpyReader.h"
#include "support/FixtureFiles.h"
#include "support/QtTestStrings.h"
#include "support/TestText.h"
#include "support/TokenDocuments.h"

using sae::NpyReader;
using saetest::contains;
using saetest::errorOf;

namespace {

const std::string kDir = SAEWB_FIXTURES_DIR "/tokens/files/";

}  // namespace

class TstNpy : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void readsLikeNumpy() {
    const auto expected = saetest::loadFixture("tokens/files/expected.json")["files"];
    int checked = 0;
    for (const char* name : {"rows_i8.npy", "rows_u2.npy", "stream_i4.npy", "stream_i2.npy",
                             "stream_i8.npy", "stream_u4.npy"}) {
      NpyReader reader(kDir + name);
      const auto& e = expected[name];
      QCOMPARE(reader.shape(), e["shape"].get<std::vector<int64_t>>());
      QCOMPARE(reader.streams(), reader.shape().size() == 1);
      const auto docs = saetest::readAllDocuments(reader);
      QVERIFY2(docs == e["docs"].get<std::vector<std::vector<int64_t>>>(), name);
      QVERIFY2(contains(reader.describe(), name), reader.describe().c_str());
      ++checked;
    }
    QCOMPARE(checked, 6);
  }

  void refusesOtherArrays() {
    const auto expected = saetest::loadFixture("tokens/files/expected.json")["files"];
    for (const char* name :
         {"bad_fortran.npy", "bad_float.npy", "bad_bigendian.npy", "bad_3d.npy", "bad_int8.npy"}) {
      const std::string message = errorOf([&] { NpyReader reader(kDir + name); });
      QVERIFY2(contains(message, kDir + name), message.c_str());
      const std::string word = expected[name]["error"].get<std::string>();
      QVERIFY2(contains(message, word), (word + " not in: " + message).c_str());
    }
  }

  void missingFileNamed() {
    const std::string message = errorOf([] { NpyReader reader(kDir + "nope.npy"); });
    QVERIFY2(contains(message, kDir + "nope.npy"), message.c_str());
  }

  void truncatedAndPaddedCopies() {
    QTemporaryDir tmp;
    const std::string bytes = saetest::readText(kDir + "rows_i8.npy");
    QVERIFY(bytes.size() > 128);
    const std::string path = tmp.filePath("cut.npy").toStdString();
    for (size_t cut = 0; cut < bytes.size(); cut += (cut < 140 ? 1 : 37)) {
      saetest::writeText(path, bytes.substr(0, cut));
      const std::string message = errorOf([&] {
        NpyReader reader(path);
        saetest::readAllDocuments(reader);
      });
      QVERIFY2(contains(message, path), ("cut at " + std::to_string(cut) + ": " + message).c_str());
    }
    saetest::writeText(path, bytes + "xx");
    const std::string message = errorOf([&] { NpyReader reader(path); });
    QVERIFY2(contains(message, "trailing bytes"), message.c_str());
  }

  void bitFlipsNeverCrash() {
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("flip.npy").toStdString();
    int errors = 0, total = 0;
    for (const char* name : {"rows_i8.npy", "stream_i4.npy"}) {
      const std::string bytes = saetest::readText(kDir + name);
      for (size_t i = 0; i < bytes.size(); i += (i < 160 ? 1 : 13)) {
        std::string copy = bytes;
        copy[i] = static_cast<char>(copy[i] ^ (1 << (i % 8)));
        saetest::writeText(path, copy);
        const std::string message = errorOf([&] {
          NpyReader reader(path);
          saetest::readAllDocuments(reader);
        });
        ++total;
        if (!message.empty()) {
          ++errors;
          QVERIFY2(contains(message, path), message.c_str());
        }
      }
    }
    // Flips in the header are caught; flips in token data may just change a token.
    QVERIFY2(errors > 20 && errors < total,
             (std::to_string(errors) + "/" + std::to_string(total)).c_str());
  }
};

QTEST_APPLESS_MAIN(TstNpy)
#include "tst_npy.moc"
