// ParquetReader against files written by an independent writer (parquet-wasm, i.e. the Rust
// parquet crate; tests/reference/parquet-writer/make_parquet_fixtures.mjs): PLAIN and
// dictionary pages, v1 and v2 data pages, UNCOMPRESSED / SNAPPY / GZIP / ZSTD, several row
// groups, int32 and int64, nullable and required lists, null rows. Then the errors: text
// columns, null tokens, and truncated or bit-flipped copies, which must give an error naming
// the file (or, for a flip inside token data, just other tokens), never a crash or a hang.
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "formats/ParquetReader.h"
#include "support/FixtureFiles.h"
#include "support/QtTestStrings.h"
#include "support/TestText.h"

using sae::ParquetReader;
using saetest::contains;
using saetest::errorOf;

namespace {

const std::string kDir = SAEWB_FIXTURES_DIR "/tokens/parquet/";

std::vector<std::vector<int64_t>> readAll(ParquetReader& reader) {
  std::vector<std::vector<int64_t>> docs;
  std::vector<int64_t> doc;
  bool continuation = true;
  while (reader.next(doc, continuation)) {
    if (continuation) throw std::logic_error("parquet rows never continue each other");
    docs.push_back(doc);
  }
  return docs;
}

// expected.json's docs with null rows as empty documents.
std::vector<std::vector<int64_t>> expectedDocs(const nlohmann::json& docs) {
  std::vector<std::vector<int64_t>> out;
  for (const auto& d : docs)
    out.push_back(d.is_null() ? std::vector<int64_t>{} : d.get<std::vector<int64_t>>());
  return out;
}

}  // namespace

class TstParquet : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void readsEveryFixture() {
    const auto expected = saetest::loadFixture("tokens/parquet/expected.json")["files"];
    int checked = 0;
    bool sawV2 = false, sawDict = false, sawNull = false, sawWide = false;
    for (const auto& [name, e] : expected.items()) {
      if (e.contains("error_row")) continue;
      ParquetReader reader(kDir + name);
      QCOMPARE(reader.columnName(), e["column"].get<std::string>());
      QCOMPARE(reader.int32Values(), e["int32"].get<bool>());
      QCOMPARE(reader.numRows(), int64_t(e["docs"].size()));
      if (!e["row_group_rows"].is_null()) {
        const size_t per = e["row_group_rows"].get<size_t>();
        QCOMPARE(reader.numRowGroups(), (e["docs"].size() + per - 1) / per);
      }
      const auto want = expectedDocs(e["docs"]);
      const auto got = readAll(reader);
      QVERIFY2(got.size() == want.size(), name.c_str());
      for (size_t i = 0; i < want.size(); ++i)
        QVERIFY2(got[i] == want[i], (name + " row " + std::to_string(i)).c_str());
      sawV2 |= e["page_version"] == 2;
      sawDict |= e["dictionary"].get<bool>();
      for (const auto& d : e["docs"]) {
        sawNull |= d.is_null();
        if (!d.is_null())
          for (const auto& v : d)
            sawWide |= v.get<int64_t>() > (int64_t(1) << 32);
      }
      ++checked;
    }
    QCOMPARE(checked, 11);
    QVERIFY(sawV2 && sawDict && sawNull && sawWide);
  }

  void codecsAndPageKindsCovered() {
    const auto expected = saetest::loadFixture("tokens/parquet/expected.json")["files"];
    std::set<std::string> seen;
    for (const auto& [name, e] : expected.items())
      if (e.contains("codec"))
        seen.insert(e["codec"].get<std::string>() + "/v" +
                    std::to_string(e["page_version"].get<int>()) +
                    (e["dictionary"].get<bool>() ? "/dict" : "/plain"));
    for (const char* want :
         {"UNCOMPRESSED/v1/plain", "SNAPPY/v1/dict", "ZSTD/v2/dict", "GZIP/v2/plain",
          "GZIP/v1/dict", "SNAPPY/v2/plain", "UNCOMPRESSED/v2/dict", "ZSTD/v1/plain"})
      QVERIFY2(seen.count(want), want);
  }

  void textColumnNeedsTokenising() {
    const std::string path = kDir + "text_only.parquet";
    const std::string message = errorOf([&] { ParquetReader reader(path); });
    QVERIFY2(
        contains(message, path) && contains(message, "\"text\"") && contains(message, "tokenising"),
        message.c_str());
  }

  void nullTokenNamesTheRow() {
    const std::string path = kDir + "null_item.parquet";
    const std::string message = errorOf([&] {
      ParquetReader reader(path);
      readAll(reader);
    });
    QVERIFY2(contains(message, path) && contains(message, "row 4 ") && contains(message, "null"),
             message.c_str());
  }

  void notParquet() {
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("x.parquet").toStdString();
    saetest::writeText(path, "PAR1 this is not really parquet at all PAR1");
    std::string message = errorOf([&] { ParquetReader reader(path); });
    QVERIFY2(contains(message, path) && contains(message, "corrupt"), message.c_str());
    saetest::writeText(path, "hello");
    message = errorOf([&] { ParquetReader reader(path); });
    QVERIFY2(contains(message, path) && contains(message, "not a parquet file"), message.c_str());
  }

  // Every cut loses the footer, so every cut must be an error that names the file.
  void truncatedCopies() {
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("cut.parquet").toStdString();
    for (const char* name : {"dict_snappy_v1_int64.parquet", "plain_gzip_v2_int32.parquet"}) {
      const std::string bytes = saetest::readText(kDir + name);
      for (size_t cut = 0; cut < bytes.size(); cut += 17) {
        saetest::writeText(path, bytes.substr(0, cut));
        const std::string message = errorOf([&] {
          ParquetReader reader(path);
          readAll(reader);
        });
        QVERIFY2(contains(message, path),
                 (std::string(name) + " cut at " + std::to_string(cut) + ": " + message).c_str());
      }
    }
  }

  void bitFlipsNeverCrash() {
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("flip.parquet").toStdString();
    for (const char* name : {"plain_uncompressed_v1_int64.parquet", "dict_snappy_v1_int64.parquet",
                             "dict_zstd_v2_int64.parquet", "plain_gzip_v2_int32.parquet",
                             "dict_uncompressed_v2_int32.parquet"}) {
      const std::string bytes = saetest::readText(kDir + name);
      int errors = 0, total = 0;
      // Every byte of the footer and page headers region, a sample of the rest.
      const size_t footerStart = bytes.size() > 600 ? bytes.size() - 600 : 0;
      for (size_t i = 0; i < bytes.size(); i += (i >= footerStart ? 1 : 5)) {
        std::string copy = bytes;
        copy[i] = static_cast<char>(copy[i] ^ (1 << (i % 8)));
        saetest::writeText(path, copy);
        const std::string message = errorOf([&] {
          ParquetReader reader(path);
          readAll(reader);
        });
        ++total;
        if (!message.empty()) {
          ++errors;
          QVERIFY2(contains(message, path),
                   (std::string(name) + " byte " + std::to_string(i) + ": " + message).c_str());
        }
      }
      QVERIFY2(errors > total / 10,
               (std::string(name) + ": " + std::to_string(errors) + "/" + std::to_string(total))
                   .c_str());
    }
  }
};

QTEST_APPLESS_MAIN(TstParquet)
#include "tst_parquet.moc"
