#include "train/TrainingRun.h"

#include <filesystem>

#include "data/ActivationSourceFactory.h"
#include "data/ActivationStore.h"
#include "runs/MetricsJsonlSink.h"
#include "runs/RunManifest.h"
#include "runs/TensorBoardEventSink.h"
#include "train/TorchSettings.h"
#include "train/Trainer.h"

namespace fs = std::filesystem;

namespace sae {

struct TrainingRun::Impl {
  RunConfig config;
  std::string outDir;
  std::unique_ptr<Trainer> trainer;
  std::unique_ptr<MetricsJsonlSink> metrics;
  std::unique_ptr<TensorBoardEventSink> events;
  std::unique_ptr<RunManifest> manifest;
};

TrainingRun::TrainingRun(const RunConfig& config, const std::string& outDir,
                         const std::function<void(const std::string&)>& log)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->outDir = outDir;
  TorchSettings::setThreads(config.effectiveNumThreads());
  // SAELens never seeds; we seed torch's generator with `seed` so a run is reproducible.
  TorchSettings::seed(static_cast<uint64_t>(config.seed));

  auto source = ActivationSourceFactory::create(config, log);
  auto store =
      std::make_shared<ActivationStore>(source, ActivationStoreOptions::fromConfig(config));
  auto sae = Trainer::makeSae(config);
  if (!outDir.empty()) {
    fs::create_directories(outDir);
    config.saveFile((fs::path(outDir) / "config.json").string());
    impl_->metrics =
        std::make_unique<MetricsJsonlSink>((fs::path(outDir) / "metrics.jsonl").string());
  }
  impl_->trainer = std::make_unique<Trainer>(config, store, sae, outDir);
  if (impl_->metrics) impl_->trainer->addObserver(impl_->metrics.get());
  if (!outDir.empty()) {
    // events.out.tfevents.<time>.<host> next to metrics.jsonl: the same scalars, plus the
    // decoder-norm and feature-density histograms, for `tensorboard --logdir`.
    impl_->events = std::make_unique<TensorBoardEventSink>(outDir);
    impl_->trainer->addObserver(impl_->events.get());
    // Last, once everything that can reject the inputs has run: run.json says "running" only
    // for a run that really starts. Its onFinished marks the run finished after final/ is saved.
    impl_->manifest =
        std::make_unique<RunManifest>(outDir, config.totalTrainingTokens(), config.totalSteps());
    impl_->trainer->addObserver(impl_->manifest.get());
  }
}

TrainingRun::~TrainingRun() = default;

void TrainingRun::addObserver(TrainingObserver* observer) {
  impl_->trainer->addObserver(observer);
}

bool TrainingRun::run() {
  bool finished = false;
  try {
    finished = impl_->trainer->run();
  } catch (const std::exception& e) {
    if (impl_->manifest) {
      try {
        impl_->manifest->markFailed(e.what());
      } catch (const std::exception&) {
        // run.json cannot be written either (disk full?): the training error is the one to report.
      }
    }
    throw;
  }
  if (impl_->events) impl_->events->flush();
  if (impl_->manifest && !finished) {
    impl_->manifest->markStopped("stopped at step " + std::to_string(impl_->trainer->step()) +
                                 "; the last checkpoint is in checkpoints/");
  }
  return finished;
}

void TrainingRun::requestStop() {
  impl_->trainer->requestStop();
}

void TrainingRun::setPaused(bool paused) {
  impl_->trainer->setPaused(paused);
}

bool TrainingRun::isPaused() const {
  return impl_->trainer->isPaused();
}

int64_t TrainingRun::step() const {
  return impl_->trainer->step();
}

int64_t TrainingRun::totalSteps() const {
  return impl_->config.totalSteps();
}

int64_t TrainingRun::tokensDone() const {
  return impl_->trainer->nTrainingTokens();
}

const std::string& TrainingRun::outDir() const {
  return impl_->outDir;
}

const RunConfig& TrainingRun::config() const {
  return impl_->config;
}

}  // namespace sae
