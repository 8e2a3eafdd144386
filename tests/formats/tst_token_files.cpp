// BinTokenReader and JsonlTokenReader against files written by
// tests/reference/token_packing_reference.py, and their errors: wrong sizes and dtypes, bad
// JSON lines (named by line number), text-only lines, truncated and bit-flipped copies.
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "formats/BinTokenReader.h"
#include "formats/JsonlTokenReader.h"
#include "support/FixtureFiles.h"
#include "support/QtTestStrings.h"
#include "support/TestText.h"
#include "support/TokenDocuments.h"

using sae::BinTokenReader;
using sae::JsonlTokenReader;
using saetest::contains;
using saetest::errorOf;

namespace {

const std::string kDir = SAEWB_FIXTURES_DIR "/tokens/files/";

std::string jsonlError(const std::string& text, const std::string& path) {
  saetest::writeText(path, text);
  return errorOf([&] {
    JsonlTokenReader reader(path);
    saetest::readAllDocuments(reader);
  });
}

}  // namespace

class TstTokenFiles : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void binLikeNumpy() {
    const auto expected = saetest::loadFixture("tokens/files/expected.json")["files"];
    for (const char* name : {"stream_u16.bin", "stream_u32.bin"}) {
      const auto& e = expected[name];
      BinTokenReader reader(kDir + name, e["dtype"].get<std::string>());
      QVERIFY(reader.streams());
      QCOMPARE(reader.tokenCount(), int64_t(e["docs"][0].size()));
      QVERIFY2(
          saetest::readAllDocuments(reader) == e["docs"].get<std::vector<std::vector<int64_t>>>(),
          name);
    }
  }

  void binErrors() {
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("odd.bin").toStdString();
    saetest::writeText(path, std::string(7, '\1'));
    std::string message = errorOf([&] { BinTokenReader r(path, "uint16"); });
    QVERIFY2(contains(message, path) && contains(message, "7 bytes"), message.c_str());
    message = errorOf([&] { BinTokenReader r(path, "int8"); });
    QVERIFY2(
        contains(message, path) && contains(message, "\"int8\"") && contains(message, "uint16"),
        message.c_str());
    saetest::writeText(path, "");
    message = errorOf([&] { BinTokenReader r(path, "uint32"); });
    QVERIFY2(contains(message, path) && contains(message, "empty"), message.c_str());
    message =
        errorOf([&] { BinTokenReader r(tmp.filePath("missing.bin").toStdString(), "uint16"); });
    QVERIFY2(contains(message, "missing.bin"), message.c_str());
  }

  void jsonlLikePython() {
    const auto expected = saetest::loadFixture("tokens/files/expected.json")["files"];
    JsonlTokenReader reader(kDir + "docs.jsonl");
    QVERIFY(!reader.streams());
    const auto docs = saetest::readAllDocuments(reader);
    QCOMPARE(docs.size(), expected["docs.jsonl"]["docs"].size());
    QVERIFY(docs == expected["docs.jsonl"]["docs"].get<std::vector<std::vector<int64_t>>>());
  }

  void jsonlErrorsNameTheLine() {
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("t.jsonl").toStdString();
    struct Case {
      std::string text, line, part;
    };
    const std::vector<Case> cases = {
        {"{\"tokens\": [1, 2]}\n{\"tokens\": [3,\n", "line 2", "not valid JSON"},
        {"{\"tokens\": [1]}\n\n{\"tokens\": [4, -5]}\n", "line 3", "non-negative"},
        {"{\"tokens\": [1, 2.5]}\n", "line 1", "non-negative integers"},
        {"{\"text\": \"hello\"}\n", "line 1", "tokenising"},
        {"{\"ids\": [1]}\n", "line 1", "no \"tokens\""},
        {"{\"tokens\": \"1 2 3\"}\n", "line 1", "must be a list"},
        {"[1, 2, 3]\n", "line 1", "expected an object"},
        {"\n\n  \n", "", "no documents"},
    };
    for (const auto& c : cases) {
      const std::string message = jsonlError(c.text, path);
      QVERIFY2(contains(message, path), message.c_str());
      QVERIFY2(contains(message, c.line), (c.line + " not in: " + message).c_str());
      QVERIFY2(contains(message, c.part), (c.part + " not in: " + message).c_str());
    }
    // input_ids works as well as tokens.
    saetest::writeText(path, "{\"input_ids\": [7, 8, 9]}\n");
    JsonlTokenReader reader(path);
    QCOMPARE(saetest::readAllDocuments(reader), (std::vector<std::vector<int64_t>>{{7, 8, 9}}));
  }

  void jsonlTruncatedAndFlipped() {
    QTemporaryDir tmp;
    const std::string path = tmp.filePath("cut.jsonl").toStdString();
    const std::string bytes = saetest::readText(kDir + "docs.jsonl");
    int errors = 0;
    for (size_t i = 0; i < bytes.size(); i += 7) {
      std::string copy = bytes;
      copy[i] = static_cast<char>(copy[i] ^ (1 << (i % 8)));
      const std::string flipped = jsonlError(copy, path);
      if (!flipped.empty()) {
        ++errors;
        QVERIFY2(contains(flipped, path) && contains(flipped, " line "), flipped.c_str());
      }
      // Cut inside a line (not at a line end): the last line is incomplete JSON.
      if (bytes[i] != '\n' && (i == 0 || bytes[i - 1] != '\n')) {
        const std::string cut = jsonlError(bytes.substr(0, i), path);
        if (i > 0) QVERIFY2(contains(cut, path) && contains(cut, "line"), cut.c_str());
      }
    }
    QVERIFY(errors > 0);
  }
};

QTEST_APPLESS_MAIN(TstTokenFiles)
#include "tst_token_files.moc"
