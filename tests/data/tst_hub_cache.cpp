// HubCache against fake hub cache folders laid out as `huggingface-cli download` leaves them:
// the search order of the environment variables, refs/main versus the newest snapshot, and a
// "not found" message that lists every folder searched and the download command.
#include <QTemporaryDir>
#include <QtTest>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "data/HubCache.h"
#include "support/QtTestStrings.h"
#include "support/TestText.h"

namespace fs = std::filesystem;
using sae::HubCache;
using saetest::contains;

namespace {

// Sets (or, with nullptr, unsets) an environment variable for one test and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    had_ = std::getenv(name) != nullptr;
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
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

void makeSnapshot(const fs::path& cache, const std::string& repoFolder, const std::string& rev,
                  fs::file_time_type when) {
  const fs::path dir = cache / repoFolder / "snapshots" / rev;
  fs::create_directories(dir);
  saetest::writeText((dir / "config.json").string(), "{}");
  fs::last_write_time(dir, when);
}

void writeRef(const fs::path& cache, const std::string& repoFolder, const std::string& rev) {
  fs::create_directories(cache / repoFolder / "refs");
  saetest::writeText((cache / repoFolder / "refs" / "main").string(), rev + "\n");
}

}  // namespace

class TstHubCache : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void repoFolderNames() {
    QCOMPARE(HubCache::repoFolderName("NeelNanda/GELU_1L512W_C4_Code", HubCache::Kind::Model),
             std::string("models--NeelNanda--GELU_1L512W_C4_Code"));
    QCOMPARE(HubCache::repoFolderName("NeelNanda/c4-tokenized-2b", HubCache::Kind::Dataset),
             std::string("datasets--NeelNanda--c4-tokenized-2b"));
    QCOMPARE(HubCache::repoFolderName("gpt2", HubCache::Kind::Model), std::string("models--gpt2"));
  }

  void searchOrderFollowsEnvironment() {
    ScopedEnv a("HF_HUB_CACHE", "/x/hubcache");
    ScopedEnv b("HUGGINGFACE_HUB_CACHE", nullptr);
    ScopedEnv c("HF_HOME", "/y/hfhome");
    ScopedEnv d("XDG_CACHE_HOME", nullptr);
    ScopedEnv e("HOME", "/z/home");
    const std::vector<std::string> want = {"/x/hubcache", "/y/hfhome/hub",
                                           "/z/home/.cache/huggingface/hub"};
    QCOMPARE(HubCache::searchFolders(), want);
  }

  void duplicatesListedOnce() {
    ScopedEnv a("HF_HUB_CACHE", "/y/hfhome/hub/");
    ScopedEnv b("HUGGINGFACE_HUB_CACHE", nullptr);
    ScopedEnv c("HF_HOME", "/y/hfhome");
    ScopedEnv d("XDG_CACHE_HOME", "/z/home/.cache");
    ScopedEnv e("HOME", "/z/home");
    const std::vector<std::string> want = {"/y/hfhome/hub", "/z/home/.cache/huggingface/hub"};
    QCOMPARE(HubCache::searchFolders(), want);
  }

  void prefersRefsMain() {
    QTemporaryDir tmp;
    const fs::path cache = tmp.path().toStdString();
    const std::string repo = "datasets--NeelNanda--c4-tokenized-2b";
    const auto now = fs::file_time_type::clock::now();
    makeSnapshot(cache, repo, "aaaa", now - std::chrono::hours(2));
    makeSnapshot(cache, repo, "bbbb", now - std::chrono::hours(1));
    writeRef(cache, repo, "aaaa");
    const auto found =
        HubCache::findSnapshotIn("NeelNanda/c4-tokenized-2b", HubCache::Kind::Dataset,
                                 {(cache / "missing").string(), cache.string()});
    QVERIFY(found.has_value());
    QCOMPARE(*found, (cache / repo / "snapshots" / "aaaa").string());
    // The same name as a model is a different folder.
    QVERIFY(!HubCache::findSnapshotIn("NeelNanda/c4-tokenized-2b", HubCache::Kind::Model,
                                      {cache.string()}));
  }

  void newestSnapshotWithoutUsableRef() {
    QTemporaryDir tmp;
    const fs::path cache = tmp.path().toStdString();
    const std::string repo = "models--NeelNanda--GELU_1L512W_C4_Code";
    const auto now = fs::file_time_type::clock::now();
    makeSnapshot(cache, repo, "old", now - std::chrono::hours(5));
    makeSnapshot(cache, repo, "new", now - std::chrono::hours(1));
    makeSnapshot(cache, repo, "mid", now - std::chrono::hours(3));
    auto found = HubCache::findSnapshotIn("NeelNanda/GELU_1L512W_C4_Code", HubCache::Kind::Model,
                                          {cache.string()});
    QVERIFY(found.has_value());
    QCOMPARE(*found, (cache / repo / "snapshots" / "new").string());
    // refs/main naming a revision that is not there falls back to the newest too.
    writeRef(cache, repo, "deadbeef");
    found = HubCache::findSnapshotIn("NeelNanda/GELU_1L512W_C4_Code", HubCache::Kind::Model,
                                     {cache.string()});
    QCOMPARE(*found, (cache / repo / "snapshots" / "new").string());
  }

  void firstFolderWins() {
    QTemporaryDir tmp;
    const fs::path one = fs::path(tmp.path().toStdString()) / "one";
    const fs::path two = fs::path(tmp.path().toStdString()) / "two";
    const std::string repo = "models--gpt2";
    const auto now = fs::file_time_type::clock::now();
    makeSnapshot(one, repo, "r1", now - std::chrono::hours(9));
    makeSnapshot(two, repo, "r2", now);
    const auto found =
        HubCache::findSnapshotIn("gpt2", HubCache::Kind::Model, {one.string(), two.string()});
    QCOMPARE(*found, (one / repo / "snapshots" / "r1").string());
    // An empty snapshots folder does not count: the next cache is used.
    fs::remove_all(one / repo / "snapshots" / "r1");
    const auto next =
        HubCache::findSnapshotIn("gpt2", HubCache::Kind::Model, {one.string(), two.string()});
    QCOMPARE(*next, (two / repo / "snapshots" / "r2").string());
  }

  void findSnapshotUsesEnvironment() {
    QTemporaryDir tmp;
    const fs::path home = tmp.path().toStdString();
    const fs::path cache = home / ".cache" / "huggingface" / "hub";
    makeSnapshot(cache, "datasets--Org--Data", "rev", fs::file_time_type::clock::now());
    ScopedEnv a("HF_HUB_CACHE", (home / "nowhere").string().c_str());
    ScopedEnv b("HUGGINGFACE_HUB_CACHE", nullptr);
    ScopedEnv c("HF_HOME", nullptr);
    ScopedEnv d("XDG_CACHE_HOME", nullptr);
    ScopedEnv e("HOME", home.string().c_str());
    const auto found = HubCache::findSnapshot("Org/Data", HubCache::Kind::Dataset);
    QVERIFY(found.has_value());
    QCOMPARE(*found, (cache / "datasets--Org--Data" / "snapshots" / "rev").string());
    QVERIFY(!HubCache::findSnapshot("Org/Other", HubCache::Kind::Dataset));
  }

  void rejectsPathLikeNames() {
    QTemporaryDir tmp;
    const std::vector<std::string> folders = {tmp.path().toStdString()};
    for (const char* bad : {"", "/abs/path", "a/b/c", "../x", "Org/", "a\\b"})
      QVERIFY2(!HubCache::findSnapshotIn(bad, HubCache::Kind::Model, folders), bad);
  }

  void notFoundMessageListsFoldersAndCommand() {
    QTemporaryDir tmp;
    const std::string existing = tmp.path().toStdString();
    const std::string missing = existing + "/no-such-cache";
    ScopedEnv a("HF_HUB_CACHE", missing.c_str());
    ScopedEnv b("HUGGINGFACE_HUB_CACHE", nullptr);
    ScopedEnv c("HF_HOME", existing.c_str());
    ScopedEnv d("XDG_CACHE_HOME", nullptr);
    ScopedEnv e("HOME", "/nonexistent-home");
    const std::string m =
        HubCache::notFoundMessage("NeelNanda/c4-tokenized-2b", HubCache::Kind::Dataset, {existing});
    QVERIFY2(contains(m, "dataset \"NeelNanda/c4-tokenized-2b\""), m.c_str());
    QVERIFY2(contains(m, "datasets--NeelNanda--c4-tokenized-2b/snapshots"), m.c_str());
    QVERIFY2(contains(m, "  " + existing + "\n"), m.c_str());
    QVERIFY2(contains(m, missing + " (does not exist)"), m.c_str());
    QVERIFY2(contains(m, existing + "/hub (does not exist)"), m.c_str());
    QVERIFY2(contains(m, "/nonexistent-home/.cache/huggingface/hub (does not exist)"), m.c_str());
    QVERIFY2(contains(m, "huggingface-cli download NeelNanda/c4-tokenized-2b --repo-type dataset"),
             m.c_str());
    const std::string model =
        HubCache::notFoundMessage("NeelNanda/GELU_1L512W_C4_Code", HubCache::Kind::Model);
    QVERIFY2(contains(model, "huggingface-cli download NeelNanda/GELU_1L512W_C4_Code\n"),
             model.c_str());
    QVERIFY2(!contains(model, "--repo-type"), model.c_str());
  }
};

QTEST_APPLESS_MAIN(TstHubCache)
#include "tst_hub_cache.moc"
