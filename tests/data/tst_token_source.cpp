// TokenSourceFactory + PackedTokenSource against SAELens's get_batch_tokens run in Python
// (tests/reference/token_packing_reference.py) on the same files: JSONL documents, 2-D .npy
// rows, 1-D .npy and .bin streams and parquet shards, with and without prepend_bos. Then
// dataset_path as a hub name (a fake hub cache), the not-found message, and run-out errors.
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/RunConfig.h"
#include "data/TokenSourceFactory.h"
#include "support/FixtureFiles.h"
#include "support/QtTestStrings.h"
#include "support/TestText.h"

namespace fs = std::filesystem;
using sae::RunConfig;
using sae::TokenSourceFactory;
using saetest::contains;
using saetest::errorOf;

namespace {

const std::string kTokens = SAEWB_FIXTURES_DIR "/tokens/";

RunConfig configFor(const std::string& path, int64_t context, bool prependBos) {
  RunConfig c;
  c.dataset_path = path;
  c.context_size = context;
  c.prepend_bos = prependBos;
  return c;
}

std::string sourcePath(const std::string& source) {
  if (source.rfind("parquet/", 0) == 0) return kTokens + source;
  return kTokens + "files/" + source;
}

// Sets an environment variable for one test and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      had_ = true;
      old_ = old;
    }
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_, old_.c_str(), 1);
    else
      unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

}  // namespace

class TstTokenSource : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void packsLikeSaeLens() {
    const auto expected = saetest::loadFixture("tokens/files/expected.json");
    const int64_t bos = expected["bos"].get<int64_t>();
    QCOMPARE(expected["packing"].size(), size_t(11));
    for (const auto& c : expected["packing"]) {
      const std::string source = c["source"].get<std::string>();
      const int64_t C = c["context_size"].get<int64_t>();
      const bool prepend = c["prepend_bos"].get<bool>();
      sae::TokenSourceOptions options;
      options.bosTokenId = bos;
      auto tokens = TokenSourceFactory::create(configFor(sourcePath(source), C, prepend), options);
      QCOMPARE(tokens->contextSize(), C);
      std::vector<int64_t> got;
      for (const auto& n : c["calls"]) {
        const auto rows = tokens->nextRows(n.get<int64_t>());
        QCOMPARE(int64_t(rows.size()), n.get<int64_t>() * C);
        got.insert(got.end(), rows.begin(), rows.end());
      }
      std::vector<int64_t> want;
      for (const auto& row : c["rows"])
        for (const auto& v : row)
          want.push_back(v.get<int64_t>());
      const std::string label =
          source + " C=" + std::to_string(C) + (prepend ? " prepend_bos" : " no bos");
      QVERIFY2(got.size() == want.size(), label.c_str());
      for (size_t i = 0; i < want.size(); ++i)
        QVERIFY2(got[i] == want[i],
                 (label + " row " + std::to_string(i / C) + " col " + std::to_string(i % C) +
                  ": got " + std::to_string(got[i]) + ", want " + std::to_string(want[i]))
                     .c_str());
    }
  }

  // token_file_dtype is the only thing that says how wide a raw .bin token is.
  void binDtypeComesFromTheConfig() {
    const auto expected = saetest::loadFixture("tokens/files/expected.json");
    const auto& docs = expected["files"]["stream_u32.bin"]["docs"][0];
    const int64_t C = 50;
    RunConfig config = configFor(kTokens + "files/stream_u32.bin", C, false);
    config.token_file_dtype = "uint32";
    const auto rows = TokenSourceFactory::create(config)->nextRows(2);
    QCOMPARE(int64_t(rows.size()), 2 * C);
    for (int64_t i = 0; i < 2 * C; ++i)
      QCOMPARE(rows[size_t(i)], docs[size_t(i)].get<int64_t>());

    // Read as uint16, the same bytes are the little-endian halves of each uint32.
    config.token_file_dtype = "uint16";
    const auto halves = TokenSourceFactory::create(config)->nextRows(1);
    QCOMPARE(halves[0], docs[0].get<int64_t>() & 0xFFFF);
    QCOMPARE(halves[1], docs[0].get<int64_t>() >> 16);
  }

  void folderOfShardsInNameOrder() {
    const auto files = TokenSourceFactory::resolveFiles(kTokens + "parquet/shards");
    QCOMPARE(files.size(), size_t(2));
    QVERIFY(contains(files[0], "train-00000-of-00002.parquet"));
    QVERIFY(contains(files[1], "train-00001-of-00002.parquet"));
  }

  void hubNameResolvesToSnapshot() {
    QTemporaryDir tmp;
    const fs::path cache = tmp.path().toStdString();
    const fs::path snapshot =
        cache / "datasets--NeelNanda--c4-tokenized-2b" / "snapshots" / "abc123" / "data";
    fs::create_directories(snapshot);
    for (const char* shard : {"train-00000-of-00002.parquet", "train-00001-of-00002.parquet"})
      fs::copy_file(kTokens + "parquet/shards/data/" + shard, snapshot / shard);
    // A validation shard that must not be read (SAELens loads split="train").
    fs::copy_file(kTokens + "parquet/text_only.parquet", snapshot / "validation-00000.parquet");
    ScopedEnv env("HF_HUB_CACHE", cache.string());

    const auto expected = saetest::loadFixture("tokens/files/expected.json");
    const nlohmann::json* shards = nullptr;
    for (const auto& c : expected["packing"])
      if (c["source"] == "parquet/shards") shards = &c;
    QVERIFY(shards != nullptr);
    auto tokens = TokenSourceFactory::create(
        configFor("NeelNanda/c4-tokenized-2b", (*shards)["context_size"].get<int64_t>(), true));
    QVERIFY2(contains(tokens->describe(), "NeelNanda/c4-tokenized-2b"), tokens->describe().c_str());
    const auto rows = tokens->nextRows(4);
    const int64_t C = (*shards)["context_size"].get<int64_t>();
    for (int64_t r = 0; r < 4; ++r)
      for (int64_t k = 0; k < C; ++k)
        QCOMPARE(rows[size_t(r * C + k)], (*shards)["rows"][size_t(r)][size_t(k)].get<int64_t>());
  }

  void unknownNameSaysWhereItLooked() {
    QTemporaryDir tmp;
    ScopedEnv env("HF_HUB_CACHE", tmp.path().toStdString());
    const std::string message = errorOf(
        [] { TokenSourceFactory::create(configFor("NoSuchOrg/no-such-dataset", 8, true)); });
    QVERIFY2(contains(message, "NoSuchOrg/no-such-dataset"), message.c_str());
    QVERIFY2(contains(message, tmp.path().toStdString()), message.c_str());
    QVERIFY2(
        contains(message, "huggingface-cli download NoSuchOrg/no-such-dataset --repo-type dataset"),
        message.c_str());
    const std::string missing =
        errorOf([] { TokenSourceFactory::create(configFor("/no/such/file.npy", 8, true)); });
    QVERIFY2(contains(missing, "/no/such/file.npy") && contains(missing, "no such file"),
             missing.c_str());
  }

  void folderErrors() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    std::string message = errorOf([&] { TokenSourceFactory::resolveFiles(dir.string()); });
    QVERIFY2(contains(message, dir.string()) && contains(message, "no token files"),
             message.c_str());
    fs::copy_file(kTokens + "files/rows_i8.npy", dir / "a.npy");
    fs::copy_file(kTokens + "files/docs.jsonl", dir / "b.jsonl");
    message = errorOf([&] { TokenSourceFactory::resolveFiles(dir.string()); });
    QVERIFY2(
        contains(message, "mixes") && contains(message, "1 .npy") && contains(message, "1 .jsonl"),
        message.c_str());
    const std::string text = errorOf([] {
      TokenSourceFactory::create(configFor(kTokens + "parquet/text_only.parquet", 8, true));
    });
    QVERIFY2(contains(text, "text_only.parquet") && contains(text, "tokenising"), text.c_str());
  }

  void runsOutWithAClearMessage() {
    auto tokens = TokenSourceFactory::create(configFor(kTokens + "files/rows_u2.npy", 10, true));
    // 12 documents of 10 tokens. SAELens's packing (token_packing_reference.Store) serves a
    // first call of 11 rows, reading all 12 documents, and runs out in the next call.
    tokens->nextRows(11);
    const std::string message = errorOf([&] { tokens->nextRows(1); });
    QVERIFY2(contains(message, "rows_u2.npy") && contains(message, "ran out"), message.c_str());
  }

  void multipleStreamsInAFolder() {
    QTemporaryDir tmp;
    const fs::path dir = tmp.path().toStdString();
    fs::copy_file(kTokens + "files/stream_u16.bin", dir / "part-0.bin");
    fs::copy_file(kTokens + "files/stream_u16.bin", dir / "part-1.bin");
    auto tokens = TokenSourceFactory::create(configFor(dir.string(), 100, true));
    // 700 tokens per file; each file is a stream of rows [BOS?]+...; 13 rows cross the file
    // boundary without mixing the two streams in one row's start.
    const auto rows = tokens->nextRows(13);
    QCOMPARE(rows.size(), size_t(1300));
    QVERIFY2(contains(tokens->describe(), "2 files"), tokens->describe().c_str());
  }
};

QTEST_APPLESS_MAIN(TstTokenSource)
#include "tst_token_source.moc"
