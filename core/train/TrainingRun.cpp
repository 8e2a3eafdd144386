#include "train/TrainingRun.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "config/AtomicFile.h"
#include "data/ActivationSourceFactory.h"
#include "data/ActivationStore.h"
#include "runs/MetricsJsonlSink.h"
#include "runs/RunManifest.h"
#include "runs/TensorBoardEventSink.h"
#include "train/TorchSettings.h"
#include "train/Trainer.h"

namespace fs = std::filesystem;

namespace sae {

namespace {

// Keeps the lines of metrics.jsonl logged before `step`: a run killed after its last checkpoint
// logged steps that the resumed run logs again.
void truncateMetricsBefore(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::ostringstream kept;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    // A line cut short by the kill is not valid JSON: drop it with the later ones.
    if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer())
      break;
    if (record["step"].get<int64_t>() >= step) break;
    kept << line << '\n';
  }
  in.close();
  AtomicFile::write(path, kept.str());
}

}  // namespace

struct TrainingRun::Impl {
  RunConfig config;
  std::string outDir;
  int64_t resumedFromStep = 0;
  std::unique_ptr<Trainer> trainer;
  std::unique_ptr<MetricsJsonlSink> metrics;
  std::unique_ptr<TensorBoardEventSink> events;
  std::unique_ptr<RunManifest> manifest;
};

TrainingRun::TrainingRun(const RunConfig& config, const std::string& outDir,
                         const std::function<void(const std::string&)>& log,
                         const std::string& resumeFrom)
    : impl_(std::make_unique<Impl>()) {
  const bool resuming = !resumeFrom.empty();
  impl_->config = config;
  impl_->outDir = outDir;
  TorchSettings::setThreads(config.effectiveNumThreads());
  // SAELens never seeds; we seed torch's generator with `seed` so a run is reproducible.
  TorchSettings::seed(static_cast<uint64_t>(config.seed));

  auto source = ActivationSourceFactory::create(config, log);
  auto store =
      std::make_shared<ActivationStore>(source, ActivationStoreOptions::fromConfig(config));
  auto sae = Trainer::makeSae(config);
  impl_->trainer = std::make_unique<Trainer>(config, store, sae, outDir);
  if (resuming) {
    impl_->trainer->restoreTrainingState((fs::path(resumeFrom) / Trainer::kStateFile).string());
    impl_->resumedFromStep = impl_->trainer->step();
    if (log)
      log("Resuming " + outDir + " at step " + std::to_string(impl_->resumedFromStep) + " (" +
          std::to_string(impl_->trainer->nTrainingTokens()) + " tokens) from " + resumeFrom);
  }
  if (!outDir.empty()) {
    fs::create_directories(outDir);
    const std::string metricsPath = (fs::path(outDir) / "metrics.jsonl").string();
    if (resuming) {
      truncateMetricsBefore(metricsPath, impl_->resumedFromStep);
    } else {
      config.saveFile((fs::path(outDir) / "config.json").string());
    }
    impl_->metrics = std::make_unique<MetricsJsonlSink>(metricsPath, /*append=*/resuming);
  }
  if (impl_->metrics) impl_->trainer->addObserver(impl_->metrics.get());
  if (!outDir.empty()) {
    // events.out.tfevents.<time>.<host> next to metrics.jsonl: the same scalars, plus the
    // decoder-norm and feature-density histograms, for `tensorboard --logdir`.
    impl_->events = std::make_unique<TensorBoardEventSink>(outDir);
    impl_->trainer->addObserver(impl_->events.get());
    // Last, once everything that can reject the inputs has run: run.json says "running" only
    // for a run that really starts. Its onFinished marks the run finished after final/ is saved.
    RunManifest::Options manifestOptions;
    manifestOptions.resume = resuming;
    impl_->manifest = std::make_unique<RunManifest>(outDir, config.totalTrainingTokens(),
                                                    config.totalSteps(), manifestOptions);
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

int64_t TrainingRun::resumedFromStep() const {
  return impl_->resumedFromStep;
}

std::string TrainingRun::latestCheckpoint(const std::string& runDir) {
  const fs::path folder = fs::path(runDir) / "checkpoints";
  std::string best;
  int64_t bestTokens = -1;
  std::error_code ec;
  if (fs::is_directory(folder, ec)) {
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      if (!fs::exists(entry.path() / Trainer::kStateFile)) continue;  // cut short by a kill
      const int64_t tokens = std::stoll(name);
      if (tokens > bestTokens) {
        bestTokens = tokens;
        best = entry.path().string();
      }
    }
  }
  if (best.empty())
    throw std::runtime_error(runDir + " has no checkpoint to resume from: checkpoints/<tokens>/" +
                             Trainer::kStateFile +
                             " is written at each of the config's n_checkpoints and when a run "
                             "is stopped; start the run again instead");
  return best;
}

std::unique_ptr<TrainingRun> TrainingRun::resume(
    const std::string& runDir, const std::function<void(const std::string&)>& log) {
  const fs::path configPath = fs::path(runDir) / "config.json";
  if (!fs::exists(configPath))
    throw std::runtime_error(runDir + " is not a run folder: it has no config.json");
  if (fs::exists(fs::path(runDir) / "final" / "sae_weights.safetensors"))
    throw std::runtime_error(runDir + " has finished (final/ is written): nothing to resume");
  const std::string checkpoint = latestCheckpoint(runDir);
  const RunConfig config = RunConfig::loadFile(configPath.string());
  return std::make_unique<TrainingRun>(config, runDir, log, checkpoint);
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
