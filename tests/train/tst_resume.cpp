// Exact resume (issue 5 §3): a run stopped at a checkpoint and continued with
// TrainingRun::resume ends with the same final weights, sparsity and logged metrics, bit for
// bit, as the same run trained without a stop. Covered for each activation source (synthetic,
// cached files, a language model with CE evals), with the April recipe's moving parts on
// (decoder renormalisation, L1 and LR warm-up, ghost grads, normalised activations, threshold
// checkpoints), for a stop in the middle of a loader pass, a sparsity window and a cached file,
// and for two stops in one run. Also: the folders that cannot be resumed say why, and the
// NaN/Inf guard stops a diverging run before the weights are touched.
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "config/RunConfig.h"
#include "data/ActivationSourceFactory.h"
#include "data/ActivationStore.h"
#include "formats/Safetensors.h"
#include "runs/RunManifest.h"
#include "support/TestText.h"
#include "train/TorchSettings.h"
#include "train/Trainer.h"
#include "train/TrainingRun.h"

namespace fs = std::filesystem;

namespace {

const std::string kFixtures = SAEWB_FIXTURES_DIR;

// Requests a stop once the run has finished step `stopAfter` (0-based count of steps done).
class StopAfter : public sae::TrainingObserver {
 public:
  StopAfter(sae::TrainingRun& run, int64_t steps) : run_(run), steps_(steps) {}
  void onProgress(const sae::ProgressEvent& event) override {
    if (event.step >= steps_) run_.requestStop();
  }

 private:
  sae::TrainingRun& run_;
  int64_t steps_;
};

sae::RunConfig syntheticConfig() {
  sae::RunConfig c;
  c.model_name = "";
  c.dataset_path = "";
  c.use_synthetic_activations = true;
  c.synthetic_n_features = 48;
  c.synthetic_feature_probability = 0.05;
  c.synthetic_noise_std = 0.01;
  c.d_in = 16;
  c.expansion_factor = 4;
  c.context_size = 8;
  c.store_batch_size = 16;
  c.n_batches_in_buffer = 4;  // 256 fresh rows per refill: 4 batches of 64 per loader pass
  c.train_batch_size = 64;
  c.training_tokens = 64 * 40;
  c.l1_coefficient = 0.5;
  c.l1_warm_up_steps = 10;
  c.lr = 3e-3;
  c.lr_scheduler_name = "cosineannealing";
  c.lr_warm_up_steps = 5;
  c.lr_decay_steps = 5;
  c.normalize_sae_decoder = true;  // renormalised every step and at each checkpoint
  c.init_encoder_as_decoder_transpose = true;
  c.b_dec_init_method = "geometric_median";
  c.normalize_activations = true;
  c.use_ghost_grads = true;
  c.feature_sampling_window = 7;
  c.dead_feature_window = 5;
  c.wandb_log_frequency = 1;
  c.n_checkpoints = 3;
  c.num_threads = 1;
  c.seed = 7;
  return c;
}

std::vector<nlohmann::json> metricsWithoutWallTime(const std::string& runDir) {
  std::vector<nlohmann::json> records;
  std::ifstream in(runDir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto record = nlohmann::json::parse(line);
    record.erase("wall_seconds");
    records.push_back(record);
  }
  return records;
}

// Every tensor of `file` in both folders is identical (same dtype, shape and bits).
void compareTensors(const std::string& a, const std::string& b, const std::string& file) {
  const auto left = sae::Safetensors::read(a + "/" + file);
  const auto right = sae::Safetensors::read(b + "/" + file);
  QCOMPARE(left.size(), right.size());
  for (size_t i = 0; i < left.size(); ++i) {
    QCOMPARE(left[i].first, right[i].first);
    QVERIFY2(left[i].second.scalar_type() == right[i].second.scalar_type() &&
                 torch::equal(left[i].second, right[i].second),
             qPrintable(QString::fromStdString(file + " " + left[i].first + " differs")));
  }
}

void compareRuns(const std::string& uninterrupted, const std::string& resumed) {
  compareTensors(uninterrupted, resumed, "final/sae_weights.safetensors");
  compareTensors(uninterrupted, resumed, "final/sparsity.safetensors");
  const auto want = metricsWithoutWallTime(uninterrupted);
  const auto got = metricsWithoutWallTime(resumed);
  QCOMPARE(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    QVERIFY2(got[i] == want[i],
             qPrintable(QString::fromStdString("metrics line " + std::to_string(i) + ": got " +
                                               got[i].dump() + ", want " + want[i].dump())));
}

void trainUninterrupted(const sae::RunConfig& config, const std::string& out) {
  const auto issues = config.validate();
  QVERIFY2(issues.empty(), issues.empty() ? "" : issues.front().message.c_str());
  sae::TrainingRun run(config, out);
  QVERIFY(run.run());
}

// Trains `config` into `out`, stopping after each step count in `stops` and resuming.
void trainWithStops(const sae::RunConfig& config, const std::string& out,
                    const std::vector<int64_t>& stops) {
  {
    sae::TrainingRun run(config, out);
    StopAfter stop(run, stops.front());
    run.addObserver(&stop);
    QVERIFY(!run.run());
    QCOMPARE(run.step(), stops.front());
  }
  for (size_t i = 0; i < stops.size(); ++i) {
    auto run = sae::TrainingRun::resume(out);
    QCOMPARE(run->resumedFromStep(), stops[i]);
    if (i + 1 < stops.size()) {
      StopAfter stop(*run, stops[i + 1]);
      run->addObserver(&stop);
      QVERIFY(!run->run());
    } else {
      QVERIFY(run->run());
    }
  }
  QCOMPARE(sae::RunManifest::load(out + "/run.json").status, std::string("finished"));
}

void writeCachedActivations(const std::string& folder, int64_t files, int64_t rows, int64_t dIn,
                            bool poisonLastFile = false) {
  fs::create_directories(folder);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(123);
  for (int64_t f = 0; f < files; ++f) {
    torch::Tensor acts = torch::randn({rows, dIn}, generator, torch::kFloat32);
    // Every row: half of a buffer's rows go on to training whatever the shuffle.
    if (poisonLastFile && f == files - 1) acts.select(1, 0).fill_(std::nanf(""));
    sae::Safetensors::write(folder + "/" + std::to_string(f) + ".safetensors",
                            {{"activations", acts}});
  }
}

// Collects every metrics event a trainer emits, without the wall time.
class MetricsCollector : public sae::TrainingObserver {
 public:
  void onMetrics(const sae::MetricsEvent& event) override { events.push_back(event); }
  std::vector<sae::MetricsEvent> events;
};

struct PrefetchRun {
  torch::Tensor W_enc, W_dec, b_enc, b_dec;
  std::vector<sae::MetricsEvent> events;
  int64_t prefetched = 0;
};

// A whole run through the core Trainer (no run folder), with or without the overlapped
// pipeline.
PrefetchRun trainWithPrefetch(const sae::RunConfig& config, bool prefetch) {
  sae::TorchSettings::setThreads(config.effectiveNumThreads());
  sae::TorchSettings::seed(static_cast<uint64_t>(config.seed));
  auto store =
      std::make_shared<sae::ActivationStore>(sae::ActivationSourceFactory::create(config),
                                             sae::ActivationStoreOptions::fromConfig(config));
  sae::Trainer trainer(config, store, sae::Trainer::makeSae(config), "");
  trainer.setPrefetch(prefetch);
  MetricsCollector collector;
  trainer.addObserver(&collector);
  if (!trainer.run()) return {};
  const sae::Sae& sae = trainer.sae();
  return {sae.W_enc.clone(), sae.W_dec.clone(), sae.b_enc.clone(),
          sae.b_dec.clone(), collector.events,  trainer.prefetchedBuffers()};
}

}  // namespace

class TestResume : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void syntheticRunResumesBitForBit() {
    QTemporaryDir dir;
    const auto config = syntheticConfig();
    const std::string a = dir.filePath("a").toStdString(), b = dir.filePath("b").toStdString();
    trainUninterrupted(config, a);
    // 13: mid loader pass (4 batches each), mid sparsity window (7), after the first threshold
    // checkpoint (at 853 tokens, step 14 is the second), inside the L1 warm-up.
    trainWithStops(config, b, {13});
    compareRuns(a, b);
    // The stop checkpoint and the threshold checkpoints are all there.
    QVERIFY(
        fs::exists(b + "/checkpoints/" + std::to_string(13 * 64) + "/" + sae::Trainer::kStateFile));
  }

  void twoStopsInOneRun() {
    QTemporaryDir dir;
    const auto config = syntheticConfig();
    const std::string a = dir.filePath("a").toStdString(), b = dir.filePath("b").toStdString();
    trainUninterrupted(config, a);
    trainWithStops(config, b, {3, 29});
    compareRuns(a, b);
  }

  void cachedActivationsResumeMidFile() {
    QTemporaryDir dir;
    const std::string cache = dir.filePath("cache").toStdString();
    writeCachedActivations(cache, 4, 700, 16);
    auto config = syntheticConfig();
    config.use_synthetic_activations = false;
    config.use_cached_activations = true;
    config.cached_activations_path = cache;
    config.training_tokens = 64 * 30;
    const std::string a = dir.filePath("a").toStdString(), b = dir.filePath("b").toStdString();
    trainUninterrupted(config, a);
    trainWithStops(config, b, {9});  // the store has read 3 buffers of 256 rows: mid-file 1
    compareRuns(a, b);
  }

  void languageModelRunWithEvalsResumes() {
    auto config = sae::RunConfig::loadFile(kFixtures + "/lm_training/config.json");
    QTemporaryDir dir;
    const std::string a = dir.filePath("a").toStdString(), b = dir.filePath("b").toStdString();
    trainUninterrupted(config, a);
    // Evals every 8 steps draw prompts from the token stream: stop after the first eval (step
    // 7) and mid refill, so the resumed stream must replay both kinds of reads.
    trainWithStops(config, b, {11});
    compareRuns(a, b);
    const auto records = metricsWithoutWallTime(b);
    int evals = 0;
    for (const auto& r : records)
      evals += r.contains("metrics/CE_loss_score") ? 1 : 0;
    QCOMPARE(evals, 3);
  }

  // The overlapped pipeline reads the next buffer on a producer thread; the run must be the same
  // bit for bit, evaluations included (they draw prompts from the same token stream, so the
  // trainer does not fetch ahead across one).
  void prefetchedRunIsTheSameRun() {
    for (const char* fixture : {"lm_training", "synthetic"}) {
      const auto config = std::string(fixture) == "lm_training"
                              ? sae::RunConfig::loadFile(kFixtures + "/lm_training/config.json")
                              : syntheticConfig();
      const PrefetchRun plain = trainWithPrefetch(config, false);
      const PrefetchRun overlapped = trainWithPrefetch(config, true);
      QCOMPARE(plain.prefetched, int64_t(0));
      QVERIFY2(overlapped.prefetched >= 2, fixture);  // the test exercises the prefetch
      QVERIFY(plain.W_enc.defined() && overlapped.W_enc.defined());
      QVERIFY(torch::equal(plain.W_enc, overlapped.W_enc));
      QVERIFY(torch::equal(plain.W_dec, overlapped.W_dec));
      QVERIFY(torch::equal(plain.b_enc, overlapped.b_enc));
      QVERIFY(torch::equal(plain.b_dec, overlapped.b_dec));
      QCOMPARE(overlapped.events.size(), plain.events.size());
      int evals = 0;
      for (size_t i = 0; i < plain.events.size(); ++i) {
        QCOMPARE(overlapped.events[i].step, plain.events[i].step);
        QVERIFY(overlapped.events[i].values == plain.events[i].values);
        evals += plain.events[i].values.count("metrics/CE_loss_score") ? 1 : 0;
      }
      if (std::string(fixture) == "lm_training") QCOMPARE(evals, 3);
    }
  }

  void foldersThatCannotBeResumedSayWhy() {
    QTemporaryDir dir;
    const std::string empty = dir.filePath("empty").toStdString();
    fs::create_directories(empty);
    QVERIFY(saetest::contains(saetest::errorOf([&] { sae::TrainingRun::resume(empty); }),
                              "has no config.json"));

    auto config = syntheticConfig();
    config.n_checkpoints = 0;
    const std::string finished = dir.filePath("finished").toStdString();
    trainUninterrupted(config, finished);
    QVERIFY(saetest::contains(saetest::errorOf([&] { sae::TrainingRun::resume(finished); }),
                              "has finished"));

    // A checkpoint whose state file never got written (a kill mid-checkpoint) is not used.
    fs::remove_all(finished + "/final");
    fs::create_directories(finished + "/checkpoints/640");
    const std::string message = saetest::errorOf([&] { sae::TrainingRun::resume(finished); });
    QVERIFY2(saetest::contains(message, "has no checkpoint to resume from"), message.c_str());
  }

  void stateFromAnotherConfigIsRefused() {
    QTemporaryDir dir;
    const auto config = syntheticConfig();
    const std::string a = dir.filePath("a").toStdString();
    {
      sae::TrainingRun run(config, a);
      StopAfter stop(run, 4);
      run.addObserver(&stop);
      QVERIFY(!run.run());
    }
    auto wider = config;
    wider.expansion_factor = 8;
    wider.d_sae.reset();
    const std::string checkpoint = sae::TrainingRun::latestCheckpoint(a);
    const std::string message = saetest::errorOf(
        [&] { sae::TrainingRun run(wider, dir.filePath("b").toStdString(), {}, checkpoint); });
    QVERIFY2(saetest::contains(message, "sae.W_enc") &&
                 saetest::contains(message, "does not match this run's shape"),
             message.c_str());
  }

  void nonFiniteLossStopsBeforeTheWeightsChange() {
    QTemporaryDir dir;
    const std::string cache = dir.filePath("cache").toStdString();
    // Cached buffers are neither shuffled nor normalised: the NaN row arrives in a known step.
    writeCachedActivations(cache, 3, 256, 16, /*poisonLastFile=*/true);
    auto config = syntheticConfig();
    config.use_synthetic_activations = false;
    config.use_cached_activations = true;
    config.cached_activations_path = cache;
    config.normalize_activations = false;
    config.training_tokens = 64 * 10;
    config.n_checkpoints = 0;
    const std::string out = dir.filePath("run").toStdString();
    sae::TrainingRun run(config, out);
    const std::string message = saetest::errorOf([&] { run.run(); });
    // Steps 0-3 train on the first loader pass; the refill at step 4 brings the NaN rows.
    QVERIFY2(saetest::contains(message, "training diverged at step 4:") &&
                 saetest::contains(message, "the loss is") && saetest::contains(message, "nan") &&
                 saetest::contains(message, "lower lr or l1_coefficient"),
             message.c_str());
    const auto manifest = sae::RunManifest::load(out + "/run.json");
    QCOMPARE(manifest.status, std::string("failed"));
    QVERIFY(saetest::contains(manifest.message, "training diverged"));
    QVERIFY(!fs::exists(out + "/final"));
  }
};

QTEST_GUILESS_MAIN(TestResume)
#include "tst_resume.moc"
