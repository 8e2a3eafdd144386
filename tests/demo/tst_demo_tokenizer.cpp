// The demo tokenizer: GPT-2 pre-tokenization and rank-ordered BPE encoding agree token for token
// with an independent Python encoder (tests/reference/demo_tokenizer_reference.py) reading the
// same tokenizer.json; training is deterministic (the fixture tokenizer.json is retrained byte
// for byte); encode -> TokenizerDecoder::decode round-trips the corpus exactly; bad files are
// rejected with messages that name them.
#include <QtTest>

#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "demo/BpeTokenizer.h"
#include "demo/BpeTokenizerTrainer.h"
#include "demo/ByteLevelPreTokenizer.h"
#include "demo/CorpusGenerator.h"
#include "formats/TokenizerDecoder.h"
#include "support/TestText.h"

using sae::BpeTokenizer;
using sae::BpeTokenizerTrainer;
using sae::ByteLevelPreTokenizer;
using sae::CorpusGenerator;
using sae::TokenizerDecoder;
using saetest::contains;
using saetest::errorOf;

namespace {

const std::string kFixtures = SAEWB_FIXTURES_DIR "/demo/";

// The fixture tokenizer: vocab 512 trained on 200 KB of corpus seed 7.
std::vector<std::string> fixtureCorpus() {
  return CorpusGenerator(7).generate(200'000);
}

BpeTokenizer trainFixtureTokenizer() {
  BpeTokenizerTrainer trainer(512);
  for (const auto& d : fixtureCorpus())
    trainer.addText(d);
  return trainer.train();
}

std::string withoutEndOfText(std::string s) {
  const std::string eot = BpeTokenizer::kEndOfText;
  for (size_t at; (at = s.find(eot)) != std::string::npos;)
    s.erase(at, eot.size());
  return s;
}

}  // namespace

class TestDemoTokenizer : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    if (std::getenv("SAEWB_WRITE_DEMO_FIXTURE")) {
      saetest::writeText(kFixtures + "tokenizer.json", trainFixtureTokenizer().toJson());
      qInfo("wrote %s; now run tests/reference/demo_tokenizer_reference.py",
            (kFixtures + "tokenizer.json").c_str());
    }
  }

  // Training twice, and training on this machine vs. the machine that wrote the fixture, gives
  // the same file byte for byte.
  void trainingIsDeterministic() {
    const std::string fixture = saetest::readText(kFixtures + "tokenizer.json");
    QVERIFY2(!fixture.empty(), "missing fixture demo/tokenizer.json");
    const std::string trained = trainFixtureTokenizer().toJson();
    QVERIFY(trained == trainFixtureTokenizer().toJson());
    QVERIFY2(trained == fixture,
             "retrained tokenizer differs from tests/fixtures/demo/tokenizer.json");
  }

  void preTokenizerMatchesReference() {
    const auto cases = nlohmann::json::parse(saetest::readText(kFixtures + "encodings.json"));
    QVERIFY(cases["cases"].size() >= 10);
    for (const auto& c : cases["cases"]) {
      const std::string text = c["text"].get<std::string>();
      const auto pieces = ByteLevelPreTokenizer::split(withoutEndOfText(text));
      QCOMPARE(pieces, c["pieces"].get<std::vector<std::string>>());
    }
  }

  void encodingMatchesReference() {
    const BpeTokenizer tok = BpeTokenizer::load(kFixtures + "tokenizer.json");
    const auto cases = nlohmann::json::parse(saetest::readText(kFixtures + "encodings.json"));
    int merged = 0;
    for (const auto& c : cases["cases"]) {
      const std::string text = c["text"].get<std::string>();
      const auto ids = tok.encode(text);
      QCOMPARE(ids, c["ids"].get<std::vector<int64_t>>());
      for (int64_t id : ids)
        merged += id > 256 ? 1 : 0;
    }
    QVERIFY2(merged > 30, std::to_string(merged).c_str());  // the samples exercise the merges
  }

  void layoutAndDecoderCompatibility() {
    const BpeTokenizer tok = trainFixtureTokenizer();
    QCOMPARE(tok.vocabSize(), 512);
    QCOMPARE(tok.endOfTextId(), 0);
    QCOMPARE(tok.vocab()[0], std::string("<|endoftext|>"));
    QCOMPARE(tok.vocab()[1 + ' '], std::string("Ġ"));
    QCOMPARE(tok.vocab()[1 + 'a'], std::string("a"));
    QCOMPARE(tok.merges().size(), size_t{512 - 257});

    const TokenizerDecoder dec = TokenizerDecoder::parse(tok.toJson(), "demo tokenizer");
    QCOMPARE(dec.vocabSize(), int64_t{512});
    QCOMPARE(dec.bosId().value_or(-1), int64_t{0});
    QCOMPARE(dec.eosId().value_or(-1), int64_t{0});
    QVERIFY(dec.isSpecial(0));
    QCOMPARE(dec.decode({0, 1 + 'h', 1 + 'i'}), std::string("<|endoftext|>hi"));
    QCOMPARE(dec.decode({0, 1 + 'h', 1 + 'i'}, true), std::string("hi"));
    for (int id = 1; id < 512; ++id)
      QCOMPARE(dec.rawToken(id), tok.vocab()[static_cast<size_t>(id)]);
  }

  void roundTripsCorpus() {
    const BpeTokenizer tok = trainFixtureTokenizer();
    const TokenizerDecoder dec = TokenizerDecoder::parse(tok.toJson(), "demo tokenizer");
    size_t bytes = 0, tokens = 0;
    for (const auto& d : CorpusGenerator(99).generate(100'000)) {  // unseen text
      const auto ids = tok.encode(d);
      QCOMPARE(dec.decode(ids), d);
      bytes += d.size();
      tokens += ids.size();
    }
    // Even 255 merges compress: well under one token per byte (about 1.9 bytes per token).
    const double bytesPerToken = static_cast<double>(bytes) / static_cast<double>(tokens);
    QVERIFY2(bytesPerToken > 1.6, std::to_string(bytesPerToken).c_str());
    // Arbitrary bytes (invalid UTF-8 included) still round-trip through the byte tokens.
    std::string raw;
    for (int b = 255; b >= 0; --b)
      raw.push_back(static_cast<char>(b));
    const auto ids = tok.encode(raw);
    std::string back;
    for (int64_t id : ids) {
      const std::string piece = dec.rawToken(id);
      back += piece;
    }
    QCOMPARE(back, ByteLevelPreTokenizer::toByteLevel(raw));
  }

  void repeatedSymbolsMergeLeftToRight() {
    BpeTokenizerTrainer trainer(260);
    for (int i = 0; i < 10; ++i)
      trainer.addText("aaaa aaa aaaaa ");
    const BpeTokenizer tok = trainer.train();
    // First merge a+a, then "aa"+"aa" or "aa"+"a": every later encoding must still decode back.
    QCOMPARE(tok.vocab()[257], std::string("aa"));
    const TokenizerDecoder dec = TokenizerDecoder::parse(tok.toJson(), "t");
    for (const std::string s : {"a", "aa", "aaa", "aaaa", "aaaaa", "aaaaaaa", " aaa"})
      QCOMPARE(dec.decode(tok.encode(s)), s);
    // "aaa" = ("aa" then "a") merged again into one token.
    QCOMPARE(tok.vocab()[259], std::string("aaa"));
    QCOMPARE(tok.encode("aaa"), (std::vector<int64_t>{259}));
    // With only the a+a merge, occurrences merge left to right: "aaa" -> "aa" "a".
    BpeTokenizerTrainer one(258);
    one.addText("aaaa aaaa");
    QCOMPARE(one.train().encode("aaa"), (std::vector<int64_t>{257, 1 + 'a'}));
  }

  void trainingStopsAtMinimumCount() {
    BpeTokenizerTrainer trainer(10000);
    trainer.addText("abc abd");
    const BpeTokenizer tok = trainer.train();
    // Only "ab" (twice) qualifies; " a" occurs once.
    QCOMPARE(tok.vocabSize(), 258);
    QCOMPARE(tok.vocab()[257], std::string("ab"));
  }

  void rejectsBadInput() {
    QVERIFY(contains(errorOf([] { BpeTokenizerTrainer(100); }), "at least 257"));
    const std::string missing = kFixtures + "no-such-tokenizer.json";
    QVERIFY(contains(errorOf([&] { BpeTokenizer::load(missing); }), missing));
    QVERIFY(contains(errorOf([] { BpeTokenizer::parse("{\"model\":", "cut.json"); }), "cut.json"));

    auto good = nlohmann::json::parse(trainFixtureTokenizer().toJson());
    auto broken = good;
    broken["model"]["merges"][3] = "Ġ zzzz-not-a-token";
    const std::string e1 = errorOf([&] { BpeTokenizer::parse(broken.dump(), "b1.json"); });
    QVERIFY2(
        contains(e1, "b1.json") && contains(e1, "merges[3]") && contains(e1, "zzzz-not-a-token"),
        e1.c_str());
    broken = good;
    broken["model"]["merges"][0] = "onlyone";
    const std::string e2 = errorOf([&] { BpeTokenizer::parse(broken.dump(), "b2.json"); });
    QVERIFY2(contains(e2, "merges[0]") && contains(e2, "two tokens"), e2.c_str());
    broken = good;
    broken["model"]["vocab"].erase("a");
    const std::string e3 = errorOf([&] { BpeTokenizer::parse(broken.dump(), "b3.json"); });
    QVERIFY2(contains(e3, "b3.json"), e3.c_str());
    broken = good;
    broken["model"]["type"] = "WordPiece";
    QVERIFY(contains(errorOf([&] { BpeTokenizer::parse(broken.dump(), "b4.json"); }), "WordPiece"));
    broken = good;
    broken["added_tokens"] = nlohmann::json::array();
    QVERIFY(
        contains(errorOf([&] { BpeTokenizer::parse(broken.dump(), "b5.json"); }), "<|endoftext|>"));
  }
};

QTEST_GUILESS_MAIN(TestDemoTokenizer)
#include "tst_demo_tokenizer.moc"
