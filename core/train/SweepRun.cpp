#include "train/SweepRun.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "config/AtomicFile.h"
#include "config/ConfigError.h"
#include "data/ActivationSourceFactory.h"
#include "data/ActivationStore.h"
#include "data/LanguageModelActivationSource.h"
#include "runs/RunFolderWriter.h"
#include "train/TorchSettings.h"
#include "train/Trainer.h"

namespace fs = std::filesystem;

namespace sae {

namespace {

constexpr const char* kSweepFormat = "sae-workbench sweep 1";

torch::Tensor defaultGeneratorState() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void setDefaultGeneratorState(const torch::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

// Whether the trainer's b_dec initialisation reads the store's storage buffer (which, built
// before the first batch, takes the first rows of the stream; see ActivationStore::refill).
bool initReadsStorage(const RunConfig& c) {
  if (c.from_pretrained_path && !c.from_pretrained_path->empty()) return false;
  return c.b_dec_init_method == "geometric_median" || c.b_dec_init_method == "mean";
}

double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

struct SweepRun::Impl {
  std::vector<SweepCombination> combinations;
  std::string outDir;
  std::shared_ptr<ActivationStore> store;
  std::vector<std::shared_ptr<Sae>> saes;
  std::vector<std::unique_ptr<Trainer>> trainers;
  std::vector<std::unique_ptr<RunFolderWriter>> folders;
  std::vector<std::string> runDirs;
  std::vector<std::vector<TrainingObserver*>> saeObservers;  // folder sinks first
  std::vector<TrainingObserver*> observers;                  // sweep-wide
  std::vector<std::string> notes;                            // "" = matches a single run
  bool storageFirst = false;
  std::vector<int64_t> checkpointThresholds;
  std::atomic<bool> stopRequested{false};
  std::atomic<bool> paused{false};
  std::mutex pauseMutex;
  std::condition_variable pauseChanged;

  const RunConfig& first() const { return combinations.front().config; }
  void writeCheckpoint(size_t k, const std::string& name, bool stateAsBefore);
  void waitWhilePaused();
};

// The trainer writes the checkpoint into its run folder (and tells the SAE's own sinks); the
// sweep-wide observers hear of it too.
void SweepRun::Impl::writeCheckpoint(size_t k, const std::string& name, bool stateAsBefore) {
  trainers[k]->writeCheckpoint(name, stateAsBefore);
  const fs::path folder = fs::path(runDirs[k]) / "checkpoints" / name;
  for (auto* observer : observers)
    observer->onCheckpoint(folder.string());
}

void SweepRun::Impl::waitWhilePaused() {
  std::unique_lock<std::mutex> lock(pauseMutex);
  pauseChanged.wait(lock, [this] { return !paused || stopRequested; });
}

SweepRun::SweepRun(std::vector<SweepCombination> combinations, const std::string& outDir,
                   const nlohmann::json& sweepConfig,
                   const std::function<void(const std::string&)>& log)
    : impl_(std::make_unique<Impl>()) {
  if (combinations.empty()) throw std::runtime_error("a sweep needs at least one combination");
  if (outDir.empty()) throw std::runtime_error("a sweep needs an output folder");
  // Each rank would train every SAE and write the same folders: sweeps stay in one process.
  if (const char* worldSize = std::getenv("WORLD_SIZE"); worldSize && std::atoi(worldSize) > 1)
    throw ConfigError(std::string("WORLD_SIZE is ") + worldSize +
                      ": a sweep trains in one process; for data-parallel SAEs write one "
                      "multi-rank job per combination with sae-train sweep --emit-slurm DIR "
                      "--nodes N --ranks-per-node M");
  impl_->combinations = std::move(combinations);
  impl_->outDir = outDir;
  const size_t n = impl_->combinations.size();
  const RunConfig& first = impl_->first();

  // The stream fields cannot be lists, so every combination has the first one's stream.
  TorchSettings::setThreads(first.effectiveNumThreads());
  TorchSettings::seed(static_cast<uint64_t>(first.seed));
  auto source = ActivationSourceFactory::create(first, log);
  impl_->store =
      std::make_shared<ActivationStore>(source, ActivationStoreOptions::fromConfig(first));

  // A single run draws its SAE's initial weights right after the seed and the source. Each SAE
  // here starts from that same generator state, so it gets the single run's weights (SAELens
  // draws them one after another, so its SAEs depend on the ones built before). The stream then
  // continues from where the first SAE's draws left the generator.
  const torch::Tensor beforeInit = defaultGeneratorState();
  std::vector<torch::Tensor> afterInit;
  auto& saes = impl_->saes;
  for (const auto& combination : impl_->combinations) {
    setDefaultGeneratorState(beforeInit);
    saes.push_back(Trainer::makeSae(combination.config));
    afterInit.push_back(defaultGeneratorState());
  }
  setDefaultGeneratorState(afterInit.front());

  for (size_t k = 0; k < n; ++k) {
    impl_->runDirs.push_back((fs::path(outDir) / impl_->combinations[k].folderName).string());
    impl_->trainers.push_back(std::make_unique<Trainer>(impl_->combinations[k].config, impl_->store,
                                                        saes[k], impl_->runDirs[k]));
  }

  // What keeps SAE k from training exactly as its single run (docs/semantics.md, "Sweeps").
  for (const auto& c : impl_->combinations)
    impl_->storageFirst = impl_->storageFirst || initReadsStorage(c.config);
  const int64_t evalEvery = first.wandb_log_frequency * first.eval_every_n_wandb_logs;
  const bool sharedEvals = n > 1 &&
                           dynamic_cast<const LanguageModelActivationSource*>(source.get()) &&
                           evalEvery > 0 && evalEvery <= first.totalSteps();
  for (size_t k = 0; k < n; ++k) {
    std::string note;
    auto add = [&note](const std::string& reason) { note += (note.empty() ? "" : "; ") + reason; };
    if (!torch::equal(afterInit[k], afterInit.front()))
      add("its initialisation draws a different number of random values than combination 0's "
          "(d_sae or init method), and the shared batches follow combination 0's draws");
    if (initReadsStorage(impl_->combinations[k].config) != impl_->storageFirst)
      add("another SAE's b_dec_init_method reads the storage buffer before the first batch, "
          "which changes which rows the first batches hold");
    for (size_t j = 0; j < n; ++j) {
      if (j != k && impl_->combinations[j].config.noise_scale > 0) {
        add("noise_scale of combination " + std::to_string(j) +
            " draws from torch's generator every step, which the batches draw from too");
        break;
      }
    }
    if (sharedEvals)
      add("each SAE's CE evals take their prompts from the shared token stream (as SAELens)");
    impl_->notes.push_back(note);
  }

  // range(0, T, T // n_checkpoints)[1:], as Trainer (n_checkpoints is the same for all).
  const int64_t total = first.totalTrainingTokens();
  if (first.n_checkpoints > 0 && total / first.n_checkpoints > 0) {
    const int64_t stride = total / first.n_checkpoints;
    for (int64_t t = stride; t < total; t += stride)
      impl_->checkpointThresholds.push_back(t);
  }

  // Files last, once everything that can reject the inputs has run.
  RunFolderWriter::createFolder(outDir);
  nlohmann::ordered_json manifest = nlohmann::ordered_json::object();
  manifest["format"] = kSweepFormat;
  std::vector<std::string> swept;
  for (const auto& [key, value] : impl_->combinations.front().values.items())
    swept.push_back(key);
  manifest["swept_fields"] = swept;
  manifest["combinations"] = nlohmann::ordered_json::array();
  for (size_t k = 0; k < n; ++k) {
    const auto& c = impl_->combinations[k];
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["index"] = c.index;
    entry["sae_name"] = c.saeName;
    entry["folder"] = c.folderName;
    entry["metric_suffix"] = c.metricSuffix;
    entry["values"] = c.values;
    entry["d_sae"] = c.config.derivedDSae();
    entry["matches_single_run"] = impl_->notes[k].empty();
    if (!impl_->notes[k].empty()) entry["single_run_note"] = impl_->notes[k];
    manifest["combinations"].push_back(entry);
  }
  if (!sweepConfig.is_null()) manifest["config"] = nlohmann::ordered_json(sweepConfig);
  AtomicFile::write((fs::path(outDir) / kManifestFile).string(), manifest.dump(2) + "\n");

  for (size_t k = 0; k < n; ++k) {
    impl_->folders.push_back(std::make_unique<RunFolderWriter>(
        impl_->combinations[k].config, impl_->runDirs[k], RunFolderWriter::Options{}));
    impl_->saeObservers.push_back(impl_->folders[k]->observers());
    for (auto* sink : impl_->saeObservers[k])
      impl_->trainers[k]->addObserver(sink);  // the histograms trainStepOn emits
  }
}

SweepRun::~SweepRun() = default;

void SweepRun::addObserver(TrainingObserver* observer) {
  impl_->observers.push_back(observer);
}

void SweepRun::addSaeObserver(size_t index, TrainingObserver* observer) {
  impl_->saeObservers.at(index).push_back(observer);
  impl_->trainers.at(index)->addObserver(observer);
}

bool SweepRun::run() {
  Impl& s = *impl_;
  const size_t n = s.trainers.size();
  const auto start = std::chrono::steady_clock::now();
  const RunConfig& first = s.first();
  const int64_t totalTokens = first.totalTrainingTokens();
  const int64_t totalSteps = (totalTokens + first.train_batch_size - 1) / first.train_batch_size;
  for (auto* observer : s.observers) {
    for (const auto& line : first.preambleLines())
      observer->onMessage(line);
    observer->onMessage("Activations: " + s.store->source().describe());
    observer->onMessage("Sweep: " + std::to_string(n) + " SAEs on one activation stream");
    for (size_t k = 0; k < n; ++k)
      observer->onMessage(
          "  [" + std::to_string(k) + "] " + s.combinations[k].folderName +
          (s.notes[k].empty() ? "" : "  (differs from its single run: " + s.notes[k] + ")"));
  }
  std::vector<double> mse(n, 0.0), l1(n, 0.0);
  bool finished = false;
  try {
    for (size_t k = 0; k < n; ++k)
      s.trainers[k]->emitDecoderNorms();
    // Every b_dec from the storage buffer as it is before the first batch, as a single run's
    // first trainStep and SAELens's _init_sae_group_b_decs do (trainStepOn would do it after the
    // sweep drew that batch, whose refill replaces the storage buffer).
    for (auto& trainer : s.trainers)
      trainer->initBDec();
    int64_t tokens = 0;
    while (tokens < totalTokens && !s.stopRequested) {
      s.waitWhilePaused();
      if (s.stopRequested) break;
      const torch::Tensor x = s.store->nextBatch();
      for (size_t k = 0; k < n; ++k) {
        MetricsEvent event = s.trainers[k]->trainStepOn(x);
        event.wall_seconds = seconds(start);
        if (event.values.empty()) continue;
        for (auto* observer : s.saeObservers[k])
          observer->onMetrics(event);
        // The progress line shows each SAE's last logged losses (coefficient-scaled L1).
        const auto& v = event.values;
        if (v.count("losses/mse_loss")) mse[k] = v.at("losses/mse_loss");
        if (v.count("losses/l1_loss") && v.count("details/current_l1_coefficient"))
          l1[k] = v.at("losses/l1_loss") * v.at("details/current_l1_coefficient");
      }
      tokens = s.trainers.front()->nTrainingTokens();
      if (!s.checkpointThresholds.empty() && tokens > s.checkpointThresholds.front()) {
        for (size_t k = 0; k < n; ++k)
          s.writeCheckpoint(k, std::to_string(tokens), /*stateAsBefore=*/false);
        s.checkpointThresholds.erase(s.checkpointThresholds.begin());
      }
      ProgressEvent progress;
      progress.step = s.trainers.front()->step();
      progress.total_steps = totalSteps;
      progress.tokens_done = tokens;
      progress.tokens_total = totalTokens;
      progress.elapsed_seconds = seconds(start);
      progress.tokens_per_second = progress.elapsed_seconds > 0
                                       ? static_cast<double>(tokens) / progress.elapsed_seconds
                                       : 0.0;
      for (size_t k = 0; k < n; ++k) {
        ProgressEvent own = progress;
        own.mse_loss = mse[k];
        own.l1_loss = l1[k];
        for (auto* observer : s.saeObservers[k])
          observer->onProgress(own);
        progress.mse_loss += mse[k] / static_cast<double>(n);
        progress.l1_loss += l1[k] / static_cast<double>(n);
      }
      for (auto* observer : s.observers)
        observer->onProgress(progress);
    }
    finished = tokens >= totalTokens;
    for (size_t k = 0; k < n; ++k) {
      s.trainers[k]->emitDecoderNorms();
      if (finished) {
        const std::string finalDir = (fs::path(s.runDirs[k]) / "final").string();
        s.trainers[k]->saveSae(finalDir);
        for (auto* observer : s.saeObservers[k])
          observer->onFinished(finalDir);
        for (auto* observer : s.observers)
          observer->onFinished(finalDir);
      } else {
        s.writeCheckpoint(k, std::to_string(tokens), /*stateAsBefore=*/true);
      }
    }
  } catch (const std::exception& e) {
    for (auto& folder : s.folders)
      folder->markFailed(e.what());
    throw;
  }
  for (auto& folder : s.folders)
    folder->ended(finished, "sweep stopped at step " + std::to_string(step()) +
                                "; the last checkpoint is in checkpoints/");
  return finished;
}

void SweepRun::requestStop() {
  {
    std::lock_guard<std::mutex> lock(impl_->pauseMutex);
    impl_->stopRequested = true;
  }
  impl_->pauseChanged.notify_all();
}

void SweepRun::setPaused(bool paused) {
  {
    std::lock_guard<std::mutex> lock(impl_->pauseMutex);
    impl_->paused = paused;
  }
  impl_->pauseChanged.notify_all();
}

bool SweepRun::isPaused() const {
  return impl_->paused;
}

int64_t SweepRun::step() const {
  return impl_->trainers.front()->step();
}

int64_t SweepRun::totalSteps() const {
  return impl_->first().totalSteps();
}

int64_t SweepRun::tokensDone() const {
  return impl_->trainers.front()->nTrainingTokens();
}

const std::string& SweepRun::outDir() const {
  return impl_->outDir;
}

const std::vector<SweepCombination>& SweepRun::combinations() const {
  return impl_->combinations;
}

bool SweepRun::matchesSingleRun(size_t index) const {
  return impl_->notes.at(index).empty();
}

const std::string& SweepRun::singleRunNote(size_t index) const {
  return impl_->notes.at(index);
}

bool SweepRun::isSweepFolder(const std::string& dir) {
  std::error_code ec;
  return fs::exists(fs::path(dir) / kManifestFile, ec);
}

}  // namespace sae
