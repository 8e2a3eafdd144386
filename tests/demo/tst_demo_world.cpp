// The demo world's cache: built on first use (tokenizer.json, tokens.npy, manifest.json), reused
// when current, rebuilt when stale, partial or corrupt; the token stream is numpy's .npy byte
// for byte (fixtures from tests/reference/demo_npy_reference.py) and decodes back to the corpus;
// the statistics match an independent recount.
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "demo/CorpusGenerator.h"
#include "demo/DemoWorld.h"
#include "demo/NpyTokenFile.h"
#include "formats/TokenizerDecoder.h"
#include "support/TestText.h"

using sae::CorpusGenerator;
using sae::DemoWorld;
using sae::DemoWorldOptions;
using sae::NpyTokenFile;
using saetest::contains;
using saetest::errorOf;

namespace {

const std::string kFixtures = SAEWB_FIXTURES_DIR "/demo/";

DemoWorldOptions smallOptions() {
  DemoWorldOptions o;
  o.seed = 3;
  o.corpusBytes = 200'000;
  o.vocabSize = 512;
  return o;
}

}  // namespace

class TestDemoWorld : public QObject {
  Q_OBJECT

 private:
  QTemporaryDir dir_;
  std::string path(const std::string& name) const {
    return dir_.filePath(QString::fromStdString(name)).toStdString();
  }

 private Q_SLOTS:
  void npyBytesMatchNumpy() {
    const std::vector<int32_t> values = {0, 1, -5, 2147483647, -2147483647 - 1, 300, 7};
    QVERIFY(NpyTokenFile::encode(values) == saetest::readText(kFixtures + "numpy_int32.npy"));
    QVERIFY(NpyTokenFile::encode({}) == saetest::readText(kFixtures + "numpy_empty_int32.npy"));
    QCOMPARE(NpyTokenFile::read(kFixtures + "numpy_int32.npy"), values);
    QVERIFY(NpyTokenFile::read(kFixtures + "numpy_empty_int32.npy").empty());
    // Data starts on a 64-byte boundary whatever the length's digit count.
    for (size_t n : {0, 9, 10, 99999, 1000000}) {
      const std::string bytes = NpyTokenFile::encode(std::vector<int32_t>(n, 1));
      QCOMPARE((bytes.size() - 4 * n) % 64, size_t{0});
    }
  }

  void npyRejectsOtherFiles() {
    const std::string e1 = errorOf([] { NpyTokenFile::read(kFixtures + "numpy_int64.npy"); });
    QVERIFY2(contains(e1, "numpy_int64.npy") && contains(e1, "<i4"), e1.c_str());
    const std::string e2 = errorOf([] { NpyTokenFile::read(kFixtures + "numpy_2d_int32.npy"); });
    QVERIFY2(contains(e2, "1-D"), e2.c_str());
    const std::string good = saetest::readText(kFixtures + "numpy_int32.npy");
    saetest::writeText(path("cut.npy"), good.substr(0, good.size() - 3));
    const std::string e3 = errorOf([&] { NpyTokenFile::read(path("cut.npy")); });
    QVERIFY2(contains(e3, "cut.npy") && contains(e3, "truncated"), e3.c_str());
    saetest::writeText(path("text.npy"), "hello");
    QVERIFY(contains(errorOf([&] { NpyTokenFile::read(path("text.npy")); }), "not a .npy"));
    QVERIFY(contains(errorOf([&] { NpyTokenFile::read(path("none.npy")); }), "none.npy"));
  }

  void defaultFolderFollowsXdg() {
    const QByteArray oldXdg = qgetenv("XDG_CACHE_HOME"), oldHome = qgetenv("HOME");
    qputenv("XDG_CACHE_HOME", "/var/cache-x");
    QCOMPARE(DemoWorld::defaultFolder(), std::string("/var/cache-x/sae-workbench/demo-world"));
    qputenv("XDG_CACHE_HOME", "relative/ignored");
    qputenv("HOME", "/home/someone");
    QCOMPARE(DemoWorld::defaultFolder(),
             std::string("/home/someone/.cache/sae-workbench/demo-world"));
    qputenv("XDG_CACHE_HOME", oldXdg);
    qputenv("HOME", oldHome);
  }

  void buildsOnceAndReuses() {
    DemoWorld world(path("world"), smallOptions());
    QVERIFY(!world.isDataCurrent());
    QVERIFY(contains(errorOf([&] { world.stats(); }), "missing or out of date"));
    std::vector<std::string> lines;
    QVERIFY(world.ensureData([&](const std::string& l) { lines.push_back(l); }));
    QVERIFY(lines.size() >= 3);
    QVERIFY(world.isDataCurrent());
    QVERIFY(!world.ensureData());  // reused

    const auto stats = world.stats();
    const std::vector<int32_t> tokens = NpyTokenFile::read(world.tokensPath());
    QCOMPARE(stats.tokens, static_cast<int64_t>(tokens.size()));
    QCOMPARE(stats.vocabSize, 512);
    QCOMPARE(stats.bosTokenId, 0);

    // Independent recount of the statistics.
    std::map<int32_t, int64_t> counts;
    for (int32_t t : tokens) {
      QVERIFY(t >= 0 && t < 512);
      ++counts[t];
    }
    double entropy = 0;
    for (const auto& [t, c] : counts) {
      const double p = static_cast<double>(c) / static_cast<double>(tokens.size());
      entropy -= p * std::log(p);
    }
    QVERIFY(std::abs(stats.unigramEntropyNats - entropy) < 1e-9);
    QVERIFY(entropy > 3.0 && entropy < std::log(512.0));

    // The stream is <|endoftext|> + document, for every generated document, in order.
    const auto docs = CorpusGenerator(3).generate(200'000);
    QCOMPARE(stats.documents, static_cast<int64_t>(docs.size()));
    QCOMPARE(counts[0], stats.documents);
    const auto decoder = sae::TokenizerDecoder::load(world.tokenizerPath());
    QCOMPARE(tokens.front(), 0);
    size_t doc = 0;
    std::vector<int64_t> current;
    for (size_t i = 1; i <= tokens.size(); ++i) {
      if (i == tokens.size() || tokens[i] == 0) {
        QVERIFY(decoder.decode(current) == docs[doc]);
        ++doc;
        current.clear();
      } else {
        current.push_back(tokens[i]);
      }
    }
    QCOMPARE(doc, docs.size());
  }

  void staleOrCorruptCacheIsRebuilt() {
    const std::string folder = path("rebuild");
    DemoWorld world(folder, smallOptions());
    world.ensureData();
    const std::string tokens = saetest::readText(world.tokensPath());
    const std::string tokenizer = saetest::readText(world.tokenizerPath());

    // A flipped bit in the token file.
    std::string flipped = tokens;
    flipped[flipped.size() / 2] ^= 0x10;
    saetest::writeText(world.tokensPath(), flipped);
    QVERIFY(!world.isDataCurrent());
    QVERIFY(world.ensureData());
    QVERIFY(saetest::readText(world.tokensPath()) == tokens);  // deterministic rebuild

    // A truncated tokenizer, a missing manifest (a build killed before the end), a torn manifest.
    saetest::writeText(world.tokenizerPath(), tokenizer.substr(0, 100));
    QVERIFY(!world.isDataCurrent());
    QVERIFY(world.ensureData());
    std::filesystem::remove(world.manifestPath());
    QVERIFY(!world.isDataCurrent());
    QVERIFY(world.ensureData());
    const std::string manifest = saetest::readText(world.manifestPath());
    saetest::writeText(world.manifestPath(), manifest.substr(0, manifest.size() / 2));
    QVERIFY(!world.isDataCurrent());
    QVERIFY(world.ensureData());
    QVERIFY(saetest::readText(world.tokenizerPath()) == tokenizer);

    // Another version, seed or size makes it stale.
    auto m = nlohmann::json::parse(saetest::readText(world.manifestPath()));
    m["version"] = DemoWorld::kVersion + 1;
    saetest::writeText(world.manifestPath(), m.dump());
    QVERIFY(!world.isDataCurrent());
    QVERIFY(world.ensureData());
    DemoWorldOptions other = smallOptions();
    other.seed = 4;
    QVERIFY(!DemoWorld(folder, other).isDataCurrent());
    other = smallOptions();
    other.vocabSize = 600;
    QVERIFY(!DemoWorld(folder, other).isDataCurrent());
    QVERIFY(DemoWorld(folder + "/", smallOptions()).isDataCurrent());
    // No temporary files left behind.
    for (const auto& entry : std::filesystem::directory_iterator(folder))
      QVERIFY2(!contains(entry.path().filename().string(), ".tmp-"), entry.path().c_str());
  }

  void unwritableFolderIsReported() {
    saetest::writeText(path("plainfile"), "x");
    DemoWorld world(path("plainfile") + "/world", smallOptions());
    const std::string e = errorOf([&] { world.ensureData(); });
    QVERIFY2(contains(e, "plainfile"), e.c_str());
  }
};

QTEST_GUILESS_MAIN(TestDemoWorld)
#include "tst_demo_world.moc"
