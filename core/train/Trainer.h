#pragma once
// SAELens 1.5's train_sae_group_on_language_model for one SAE, step for step (see
// saelens-semantics.md §5 and docs/semantics.md for the deviations we chose on purpose).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/RunConfig.h"
#include "data/ActivationStore.h"
#include "sae/Sae.h"
#include "train/AdamOptimizer.h"
#include "train/L1Scheduler.h"
#include "train/LrScheduler.h"
#include "train/TrainingObserver.h"

namespace sae {

class Trainer {
 public:
  // The config must be valid. outDir may be empty (nothing written). The SAE is initialised
  // (or loaded from config.from_pretrained_path) by the caller or by makeSae().
  Trainer(RunConfig config, std::shared_ptr<ActivationStore> store, std::shared_ptr<Sae> sae,
          std::string outDir);

  void addObserver(TrainingObserver* observer);
  // Runs until the token budget is spent or stop is requested. Returns true when finished,
  // false when stopped early (a checkpoint is written in both cases when outDir is set).
  bool run();
  // Thread-safe: the step loop checks both between steps. A stop also ends a pause.
  void requestStop();
  void setPaused(bool paused);
  bool isPaused() const { return paused_; }

  // One training step (exposed for tests): returns the metrics of this step.
  MetricsEvent trainStep();

  int64_t step() const { return step_; }
  int64_t nTrainingTokens() const { return nTrainingTokens_; }
  const Sae& sae() const { return *sae_; }
  // log10(act_freq / n_frac_active + 1e-10), as saved in sparsity.safetensors.
  torch::Tensor logFeatureSparsity() const;
  // Save SAELens's layout (sae_weights.safetensors, cfg.json, sparsity.safetensors) to folder.
  void saveSae(const std::string& folder) const;

  // training_state.safetensors in a checkpoint folder: everything the next step depends on (the
  // SAE's weights as the step left them, Adam's moments and step, the firing counters, the
  // store's buffers and data position, torch's default generator). Written to a temporary
  // name and renamed, after the SAELens files, so its presence marks a complete checkpoint.
  static constexpr const char* kStateFile = "training_state.safetensors";
  void saveTrainingState(const std::string& file) const;
  // On a freshly built trainer with the same config (and store, SAE), before any step: the
  // run continues exactly where the state was saved. Throws std::runtime_error naming the file
  // and the tensor when it does not fit.
  void restoreTrainingState(const std::string& file);

  // Builds an SAE as SAELens does: init or from_pretrained_path.
  static std::shared_ptr<Sae> makeSae(const RunConfig& config);

 private:
  void initBDec();
  void emit(const MetricsEvent& event);
  // stateAsBefore: the resume state keeps the weights as they were before this checkpoint's
  // decoder renormalisation, for a stop checkpoint that an uninterrupted run would not write.
  void writeCheckpoint(const std::string& name, bool stateAsBefore = false);
  StreamState captureState() const;
  std::string divergedMessage(const std::string& what, double value, const SaeForward& out) const;
  RunConfig config_;
  std::shared_ptr<ActivationStore> store_;
  std::shared_ptr<Sae> sae_;
  std::string outDir_;
  std::vector<TrainingObserver*> observers_;
  std::unique_ptr<AdamOptimizer> optimizer_;
  L1Scheduler l1Scheduler_;
  LrScheduler lrScheduler_;
  torch::Tensor actFreqScores_, nForwardPassesSinceFired_;
  int64_t nFracActiveTokens_ = 0;
  int64_t step_ = 0;
  int64_t nTrainingTokens_ = 0;
  std::vector<int64_t> checkpointThresholds_;
  void waitWhilePaused();
  void emitDecoderNorms();
  std::atomic<bool> stopRequested_{false};
  std::atomic<bool> paused_{false};
  std::mutex pauseMutex_;
  std::condition_variable pauseChanged_;
  bool bDecInitialised_ = false;
  double lastMse_ = 0, lastL1_ = 0;  // for the progress line
  std::chrono::steady_clock::time_point runStart_ = std::chrono::steady_clock::now();
  double wallSecondsBefore_ = 0;  // wall time of the run before a resume
};

}  // namespace sae
