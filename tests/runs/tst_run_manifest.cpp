// run.json: the status transitions, the fields it records, throttled progress writes, resume,
// atomic replacement (no temporary left behind) and clear errors for bad or unwritable files.
#include <QTemporaryDir>
#include <QtTest>

#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

#include <torch/version.h>
#include <nlohmann/json.hpp>

#include "runs/RunManifest.h"
#include "support/QtTestStrings.h"
#include "support/TestText.h"

using sae::RunManifest;
using sae::RunManifestData;
using saetest::contains;
using saetest::errorOf;
using saetest::readText;
namespace fs = std::filesystem;

namespace {

// A clock the test moves by hand.
struct ManualClock {
  double now = 0;
  RunManifest::Options options(double progressWriteSeconds = 3600) {
    RunManifest::Options o;
    o.clock = [this] { return now; };
    o.progressWriteSeconds = progressWriteSeconds;
    return o;
  }
};

size_t entries(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

sae::ProgressEvent progress(int64_t step, int64_t tokens) {
  sae::ProgressEvent p;
  p.step = step;
  p.tokens_done = tokens;
  return p;
}

}  // namespace

class TestRunManifest : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void isoTimes() {
    QCOMPARE(RunManifest::isoTime(0), std::string("1970-01-01T00:00:00Z"));
    QCOMPARE(RunManifest::isoTime(951782400), std::string("2000-02-29T00:00:00Z"));
    QCOMPARE(RunManifest::isoTime(1714563000.9), std::string("2024-05-01T11:30:00Z"));
    QCOMPARE(RunManifest::isoTime(4102444799), std::string("2099-12-31T23:59:59Z"));
  }

  void runningThenFinished() {
    QTemporaryDir dir;
    ManualClock clock{1714563000};
    RunManifest manifest(dir.path().toStdString(), 819200, 200, clock.options());
    const std::string path = (fs::path(dir.path().toStdString()) / "run.json").string();
    QCOMPARE(manifest.path(), path);

    RunManifestData data = RunManifest::load(path);
    QCOMPARE(data.status, std::string("running"));
    QCOMPARE(data.message, std::string(""));
    QCOMPARE(data.tokens_done, int64_t(0));
    QCOMPARE(data.total_tokens, int64_t(819200));
    QCOMPARE(data.total_steps, int64_t(200));
    QCOMPARE(data.start_time, std::string("2024-05-01T11:30:00Z"));
    QCOMPARE(data.end_time, std::string(""));
    QCOMPARE(data.app_version, std::string(SAEWB_VERSION));
    QCOMPARE(data.libtorch_version, std::string(TORCH_VERSION));
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    QCOMPARE(data.hostname, std::string(host));
    QCOMPARE(data.pid, static_cast<int64_t>(getpid()));

    // The file is plain JSON with the documented keys.
    const auto json = nlohmann::json::parse(readText(path));
    for (const char* key :
         {"status", "message", "tokens_done", "total_tokens", "step", "total_steps", "start_time",
          "end_time", "updated_time", "app_version", "libtorch_version", "hostname", "pid"})
      QVERIFY2(json.contains(key), key);

    clock.now += 3661;
    manifest.onProgress(progress(200, 819200));
    manifest.onFinished("final");
    data = RunManifest::load(path);
    QCOMPARE(data.status, std::string("finished"));
    QCOMPARE(data.tokens_done, int64_t(819200));
    QCOMPARE(data.step, int64_t(200));
    QCOMPARE(data.start_time, std::string("2024-05-01T11:30:00Z"));
    QCOMPARE(data.end_time, std::string("2024-05-01T12:31:01Z"));
    QCOMPARE(entries(dir.path().toStdString()), size_t(1));  // no temporary file left
  }

  void progressWritesAreThrottled() {
    QTemporaryDir dir;
    ManualClock clock{100};
    RunManifest lazy(dir.path().toStdString(), 1000, 10, clock.options(3600));
    lazy.onProgress(progress(3, 300));
    QCOMPARE(RunManifest::load(lazy.path()).tokens_done, int64_t(0));
    QCOMPARE(lazy.data().tokens_done, int64_t(300));
    // A checkpoint writes what it saved at once.
    lazy.onCheckpoint("checkpoints/300");
    QCOMPARE(RunManifest::load(lazy.path()).tokens_done, int64_t(300));
    QCOMPARE(RunManifest::load(lazy.path()).step, int64_t(3));

    QTemporaryDir eagerDir;
    RunManifest eager(eagerDir.path().toStdString(), 1000, 10, clock.options(0));
    clock.now = 160;
    eager.onProgress(progress(4, 400));
    const RunManifestData data = RunManifest::load(eager.path());
    QCOMPARE(data.tokens_done, int64_t(400));
    QCOMPARE(data.updated_time, std::string("1970-01-01T00:02:40Z"));
    QCOMPARE(data.status, std::string("running"));
  }

  void statusTransitions() {
    QTemporaryDir dir;
    ManualClock clock{0};
    {
      RunManifest m(dir.path().toStdString(), 10, 1, clock.options());
      m.markStopped("stopped by the user at step 3");
      RunManifestData d = RunManifest::load(m.path());
      QCOMPARE(d.status, std::string("stopped"));
      QCOMPARE(d.message, std::string("stopped by the user at step 3"));
      m.markStopped("again");  // repeating the state rewrites it
      QCOMPARE(RunManifest::load(m.path()).message, std::string("again"));
      QVERIFY_THROWS_EXCEPTION(std::logic_error, m.markFinished());
      QCOMPARE(RunManifest::load(m.path()).status, std::string("stopped"));
      // A failure wins over any state.
      m.markFailed("NaN in losses/mse_loss at step 4");
      d = RunManifest::load(m.path());
      QCOMPARE(d.status, std::string("failed"));
      QCOMPARE(d.message, std::string("NaN in losses/mse_loss at step 4"));
      QVERIFY_THROWS_EXCEPTION(std::logic_error, m.markStopped());
      QVERIFY_THROWS_EXCEPTION(std::logic_error, m.markFinished());
    }
    {
      RunManifest m(dir.path().toStdString(), 10, 1, clock.options());
      QCOMPARE(RunManifest::load(m.path()).status, std::string("running"));  // a new run
      m.markFinished();
      m.markFinished();
      QVERIFY_THROWS_EXCEPTION(std::logic_error, m.markStopped());
      m.markFailed("could not write final/");
      QCOMPARE(RunManifest::load(m.path()).status, std::string("failed"));
    }
  }

  void resumeKeepsStartTime() {
    QTemporaryDir dir;
    ManualClock clock{1714563000};
    {
      RunManifest first(dir.path().toStdString(), 1000, 10, clock.options());
      first.onProgress(progress(5, 500));
      first.onCheckpoint("checkpoints/500");
      first.markStopped();
    }
    clock.now += 86400;
    RunManifest::Options options = clock.options();
    options.resume = true;
    RunManifest resumed(dir.path().toStdString(), 1000, 10, options);
    const RunManifestData d = RunManifest::load(resumed.path());
    QCOMPARE(d.status, std::string("running"));
    QCOMPARE(d.start_time, std::string("2024-05-01T11:30:00Z"));
    QCOMPARE(d.end_time, std::string(""));
    QCOMPARE(d.message, std::string(""));
    QCOMPARE(d.tokens_done, int64_t(500));
    QCOMPARE(d.updated_time, std::string("2024-05-02T11:30:00Z"));

    // Resume with no run.json yet starts afresh.
    QTemporaryDir empty;
    RunManifest fresh(empty.path().toStdString(), 1000, 10, options);
    QCOMPARE(fresh.data().start_time, std::string("2024-05-02T11:30:00Z"));
  }

  void badFilesAreNamed() {
    QTemporaryDir dir;
    const std::string path = dir.filePath("run.json").toStdString();
    QVERIFY(contains(errorOf([&] { RunManifest::load(path); }), path));

    const auto errorFor = [&](const std::string& text) {
      saetest::writeText(path, text);
      return errorOf([&] { RunManifest::load(path); });
    };
    std::string e = errorFor("{\"status\": \"running\", ");
    QVERIFY2(contains(e, path) && contains(e, "not valid JSON"), e.c_str());
    e = errorFor("{\"start_time\": \"x\"}");
    QVERIFY2(contains(e, path) && contains(e, "\"status\""), e.c_str());
    e = errorFor("{\"status\": \"paused\", \"start_time\": \"x\"}");
    QVERIFY2(contains(e, "\"paused\"") && contains(e, "running, finished"), e.c_str());
    e = errorFor("{\"status\": \"running\", \"start_time\": \"x\", \"tokens_done\": \"many\"}");
    QVERIFY2(contains(e, "\"tokens_done\"") && contains(e, "integer"), e.c_str());
    e = errorFor("[1, 2]");
    QVERIFY2(contains(e, "JSON object"), e.c_str());

    // Resuming over a damaged run.json says which file.
    ManualClock clock{0};
    RunManifest::Options options = clock.options();
    options.resume = true;
    saetest::writeText(path, "garbage");
    e = errorOf([&] { RunManifest m(dir.path().toStdString(), 1, 1, options); });
    QVERIFY2(contains(e, path), e.c_str());
  }

  void unwritableFolder() {
    QTemporaryDir dir;
    const std::string file = dir.filePath("plain-file").toStdString();
    saetest::writeText(file, "x");
    ManualClock clock{0};
    const std::string runDir = file + "/run";
    const std::string e = errorOf([&] { RunManifest m(runDir, 1, 1, clock.options()); });
    QVERIFY2(contains(e, runDir), e.c_str());
  }
};

QTEST_GUILESS_MAIN(TestRunManifest)
#include "tst_run_manifest.moc"
