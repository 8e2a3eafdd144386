#include "train/TrainingRun.h"

#include <filesystem>
#include <stdexcept>

#include "config/ConfigError.h"
#include "data/ActivationSourceFactory.h"
#include "data/ActivationStore.h"
#include "runs/RunFolderWriter.h"
#include "train/DistributedContext.h"
#include "train/TorchSettings.h"
#include "train/Trainer.h"

namespace fs = std::filesystem;

namespace sae {

struct TrainingRun::Impl {
  RunConfig config;
  std::string outDir;
  int64_t resumedFromStep = 0;
  std::unique_ptr<Trainer> trainer;
  std::shared_ptr<DistributedContext> distributed;  // null for a single process
  std::unique_ptr<RunFolderWriter> folder;          // config.json, metrics.jsonl, events, run.json
};

TrainingRun::TrainingRun(const RunConfig& config, const std::string& requestedOutDir,
                         const std::function<void(const std::string&)>& log,
                         const std::string& resumeFrom)
    : impl_(std::make_unique<Impl>()) {
  // Data-parallel when torchrun's variables say so (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
  // > 1): rank 0 writes the run folder; the other ranks write nothing, so for them outDir is
  // empty from here on (no folder, sinks, checkpoints or final/).
  auto distributed = DistributedContext::fromEnvironment(log);
  impl_->distributed = distributed;
  const std::string outDir =
      !distributed || distributed->writesOutput() ? requestedOutDir : std::string();
  ActivationStoreOptions storeOptions = ActivationStoreOptions::fromConfig(config);
  DataShard shard;
  if (distributed) {
    const int64_t world = distributed->worldSize();
    if (!resumeFrom.empty())
      throw ConfigError("resuming " + resumeFrom + " with WORLD_SIZE " + std::to_string(world) +
                        " is not supported: a checkpoint holds rank 0's data position only; "
                        "start a new run");
    // train_batch_size is the global batch: a config trains the same SAE (steps, schedules,
    // token budget) whatever WORLD_SIZE is; each rank's store serves its equal share of it.
    if (config.train_batch_size % world != 0)
      throw ConfigError("train_batch_size is " + std::to_string(config.train_batch_size) +
                        ", which WORLD_SIZE " + std::to_string(world) +
                        " ranks cannot share equally: set train_batch_size to a multiple of " +
                        std::to_string(world) + " (it is the global batch of all ranks together)");
    storeOptions.train_batch_size = config.train_batch_size / world;
    shard = distributed->shard();
    if (log && !outDir.empty()) log("Data-parallel: this rank (0) writes the run folder");
    if (log && outDir.empty())
      log("Data-parallel: rank 0 writes the run folder, this rank nothing");
  }
  const bool resuming = !resumeFrom.empty();
  impl_->config = config;
  impl_->outDir = outDir;
  TorchSettings::setThreads(config.effectiveNumThreads());
  // SAELens never seeds; we seed torch's generator with `seed` so a run is reproducible.
  TorchSettings::seed(static_cast<uint64_t>(config.seed));

  auto source = ActivationSourceFactory::create(config, log, shard);
  auto store = std::make_shared<ActivationStore>(source, storeOptions);
  auto sae = Trainer::makeSae(config);
  impl_->trainer = std::make_unique<Trainer>(config, store, sae, outDir);
  if (distributed) impl_->trainer->setDistributed(distributed);
  if (resuming) {
    impl_->trainer->restoreTrainingState((fs::path(resumeFrom) / Trainer::kStateFile).string());
    impl_->resumedFromStep = impl_->trainer->step();
    if (log)
      log("Resuming " + outDir + " at step " + std::to_string(impl_->resumedFromStep) + " (" +
          std::to_string(impl_->trainer->nTrainingTokens()) + " tokens) from " + resumeFrom);
  }
  if (!outDir.empty()) {
    // Last, once everything that can reject the inputs has run: run.json says "running" only
    // for a run that really starts.
    RunFolderWriter::Options folderOptions;
    folderOptions.resume = resuming;
    folderOptions.resumedFromStep = impl_->resumedFromStep;
    impl_->folder = std::make_unique<RunFolderWriter>(config, outDir, folderOptions);
    for (auto* sink : impl_->folder->observers())
      impl_->trainer->addObserver(sink);
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
    // The other ranks' next collective fails when this process ends; the note says why.
    if (impl_->distributed) impl_->distributed->reportFailure(e.what());
    if (impl_->folder) impl_->folder->markFailed(e.what());
    throw;
  }
  if (impl_->folder)
    impl_->folder->ended(finished, "stopped at step " + std::to_string(impl_->trainer->step()) +
                                       "; the last checkpoint is in checkpoints/");
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
