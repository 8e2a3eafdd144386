// TokenizerDecoder against decodings computed independently in Python
// (tests/reference/tokenizer_reference.py: GPT-2's bytes_to_unicode and
// bytes.decode("utf-8", errors="replace")), and its errors, which must name the file.
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "formats/TokenizerDecoder.h"
#include "support/JsonFixtures.h"
#include "support/QtTestStrings.h"
#include "support/TestText.h"

using sae::TokenizerDecoder;
using saetest::contains;
using saetest::errorOf;

namespace {

const std::string kTokenizer = SAEWB_FIXTURES_DIR "/tokenizer/tokenizer.json";

// Expects the message of `f` to name `file` and contain every one of `parts`.
template <typename F>
void expectError(F&& f, const std::string& file, const std::vector<std::string>& parts) {
  const std::string message = errorOf(std::forward<F>(f));
  QVERIFY2(!message.empty(), "no std::runtime_error thrown");
  QVERIFY2(contains(message, file), message.c_str());
  for (const auto& part : parts)
    QVERIFY2(contains(message, part), message.c_str());
}

}  // namespace

class TstTokenizerDecoder : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void decodesLikePython() {
    const auto expected = saetest::loadFixture("tokenizer/expected.json");
    const auto tok = TokenizerDecoder::load(kTokenizer);
    QCOMPARE(expected["cases"].size(), size_t(110));
    for (const auto& c : expected["cases"]) {
      const auto ids = c["ids"].get<std::vector<int64_t>>();
      const bool skip = c["skip_special"].get<bool>();
      const std::string name = c["name"].get<std::string>() + (skip ? " (skip special)" : "");
      const std::string got = tok.decode(ids, skip);
      QVERIFY2(
          got == c["text"].get<std::string>(),
          (name + ": got \"" + got + "\", want \"" + c["text"].get<std::string>() + "\"").c_str());
    }
  }

  void tokensLikePython() {
    const auto expected = saetest::loadFixture("tokenizer/expected.json");
    const auto tok = TokenizerDecoder::load(kTokenizer);
    QCOMPARE(tok.vocabSize(), expected["vocab_size"].get<int64_t>());
    QVERIFY(tok.bosId() == std::optional<int64_t>(expected["bos_id"].get<int64_t>()));
    QVERIFY(tok.eosId() == std::optional<int64_t>(expected["eos_id"].get<int64_t>()));
    QVERIFY(tok.padId() == std::optional<int64_t>(expected["pad_id"].get<int64_t>()));
    for (const auto& t : expected["tokens"]) {
      const auto id = t["id"].get<int64_t>();
      const std::string where = "token " + std::to_string(id);
      QVERIFY2(tok.tokenText(id) == t["text"].get<std::string>(), where.c_str());
      QVERIFY2(tok.rawToken(id) == t["raw"].get<std::string>(), where.c_str());
      QVERIFY2(tok.isSpecial(id) == t["special"].get<bool>(), where.c_str());
      QVERIFY2(tok.isAdded(id) == t["added"].get<bool>(), where.c_str());
      QVERIFY2(tok.tokenId(t["raw"].get<std::string>()) == id, where.c_str());
    }
  }

  // The ids of docs/formats.md §3 that do not depend on the vocabulary size.
  void knownIds() {
    const auto tok = TokenizerDecoder::load(kTokenizer);
    QVERIFY(tok.tokenId("!") == std::optional<int64_t>(3));
    QCOMPARE(tok.tokenText(3), std::string("!"));
    QCOMPARE(tok.tokenText(*tok.tokenId("Ġworld")), std::string(" world"));
    QCOMPARE(tok.tokenText(*tok.tokenId("Ċ")), std::string("\n"));
    // Added tokens overwrite the vocab entry with the same id.
    QCOMPARE(tok.rawToken(2), std::string("<|PAD|>"));
  }

  void outOfRangeIds() {
    const auto expected = saetest::loadFixture("tokenizer/expected.json");
    const auto tok = TokenizerDecoder::load(kTokenizer);
    const int64_t n = tok.vocabSize();
    expectError([&] { tok.decode({3, -1}); }, kTokenizer, {"-1", "out of range"});
    expectError([&] { tok.decode({n}); }, kTokenizer, {std::to_string(n), "out of range"});
    expectError([&] { tok.tokenText(n + 1000); }, kTokenizer, {"out of range"});
    const auto hole = expected["hole_id"].get<int64_t>();
    expectError([&] { tok.decode({hole}); }, kTokenizer, {std::to_string(hole), "no entry"});
  }

  void missingFile() {
    QTemporaryDir dir;
    const std::string path = dir.path().toStdString() + "/absent/tokenizer.json";
    expectError([&] { TokenizerDecoder::load(path); }, path, {"cannot open"});
  }

  void brokenJson() {
    QTemporaryDir dir;
    const std::string path = dir.path().toStdString() + "/tokenizer.json";
    saetest::writeText(path, "{\n  \"model\": {\n    \"vocab\": {\"a\": 0,,}\n  }\n}\n");
    expectError([&] { TokenizerDecoder::load(path); }, path, {"not valid JSON", "line 3"});
    // A truncated download.
    const std::string full = saetest::readText(kTokenizer);
    saetest::writeText(path, full.substr(0, full.size() / 2));
    expectError([&] { TokenizerDecoder::load(path); }, path, {"not valid JSON", "line"});
  }

  void badStructure() {
    QTemporaryDir dir;
    const std::string path = dir.path().toStdString() + "/tokenizer.json";
    auto root = nlohmann::json::parse(saetest::readText(kTokenizer));

    auto noVocab = root;
    noVocab["model"].erase("vocab");
    saetest::writeText(path, noVocab.dump());
    expectError([&] { TokenizerDecoder::load(path); }, path, {"model.vocab"});

    auto noModel = root;
    noModel.erase("model");
    saetest::writeText(path, noModel.dump());
    expectError([&] { TokenizerDecoder::load(path); }, path, {"\"model\""});

    auto unigram = root;
    unigram["model"]["type"] = "Unigram";
    saetest::writeText(path, unigram.dump());
    expectError([&] { TokenizerDecoder::load(path); }, path, {"Unigram", "BPE"});

    auto badId = root;
    badId["model"]["vocab"]["Hello"] = -5;
    saetest::writeText(path, badId.dump());
    expectError([&] { TokenizerDecoder::load(path); }, path, {"Hello", "-5"});

    auto badAdded = root;
    badAdded["added_tokens"][0].erase("content");
    saetest::writeText(path, badAdded.dump());
    expectError([&] { TokenizerDecoder::load(path); }, path, {"added_tokens[0]"});

    // Without "type" (old tokenizers versions) the model is read as BPE.
    auto noType = root;
    noType["model"].erase("type");
    saetest::writeText(path, noType.dump());
    QCOMPARE(TokenizerDecoder::load(path).decode({3}), std::string("!"));
  }
};

QTEST_APPLESS_MAIN(TstTokenizerDecoder)
#include "tst_tokenizer_decoder.moc"
