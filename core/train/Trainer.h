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
#include "train/SparseTrainingStep.h"
#include "train/TrainingObserver.h"

namespace sae {

class DistributedContext;

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

  // One training step on the store's next batch (exposed for tests): returns its metrics.
  MetricsEvent trainStep();
  // One training step on a batch the caller took from the store (a sweep trains several SAEs
  // on the same batch). b_dec is initialised from the store on the first call, as trainStep.
  MetricsEvent trainStepOn(const torch::Tensor& x);

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

  // run() lets the store read the next buffer on a producer thread while it trains (default
  // on; the batches are the same either way, see ActivationStore::prefetchNextBuffer).
  void setPrefetch(bool on) { prefetch_ = on; }
  int64_t prefetchedBuffers() const { return prefetchedBuffers_; }

  // Builds an SAE as SAELens does: init or from_pretrained_path.
  static std::shared_ptr<Sae> makeSae(const RunConfig& config);

  // Data-parallel training (a context with WORLD_SIZE > 1), before the first step: broadcasts
  // rank 0's parameters now and b_dec after its initialisation; every step then averages the
  // gradients (weighted by rows) before clipping, sums the firing counters and averages the
  // logged values over the ranks, so each rank continues as one process trained on the combined
  // batch would. config.train_batch_size is the global batch (the store gives this rank its
  // share of it). A stop request takes effect on every rank after the same step.
  void setDistributed(std::shared_ptr<DistributedContext> context);

  // Which step computes the gradients: Auto (default) runs the sparse-aware step for ReLU SAEs
  // while the batch is sparse enough, Dense always runs autograd, Sparse runs the sparse step
  // whenever it applies (tests compare both paths).
  void setStepPath(StepPath path);
  const SparseTrainingStep& trainingStep() const;

  // ---- the pieces of run() that a sweep (SweepRun, one store and several trainers) drives
  // itself. b_dec from the store's storage buffer as b_dec_init_method says (nothing for
  // "zeros" or a pretrained SAE); once: trainStep calls it before its first batch, a sweep on
  // every trainer before the shared first batch.
  void initBDec();
  // "weights/W_dec_norms" to the observers (run() emits it at the start and the end).
  void emitDecoderNorms();
  // checkpoints/<name>/ in the run folder: SAELens's files, then training_state.safetensors
  // (whose presence marks a complete checkpoint), then onCheckpoint to the observers.
  // stateAsBefore: the resume state keeps the weights as they were before this checkpoint's
  // decoder renormalisation, for a stop checkpoint that an uninterrupted run would not write.
  void writeCheckpoint(const std::string& name, bool stateAsBefore = false);

 private:
  // The forward pass and the gradients of its loss in the parameters' .grad (zeroed first).
  // Throws before any gradient is written when the loss is not finite.
  SaeForward forwardBackward(const torch::Tensor& x, double l1Coefficient,
                             const torch::Tensor& deadMask);
  void emit(const MetricsEvent& event);
  // Data-parallel: after this rank's firing counters (which counted its own rows since
  // actFreqBefore) and before clipping, one all-reduce of gradients, counts and stop requests.
  void reduceAcrossRanks(int64_t batchRows, const torch::Tensor& actFreqBefore);
  void averageAcrossRanks(MetricsEvent& event);
  StreamState captureState() const;
  std::string divergedMessage(const std::string& what, double value, const SaeForward& out) const;
  RunConfig config_;
  std::shared_ptr<ActivationStore> store_;
  std::shared_ptr<Sae> sae_;
  std::string outDir_;
  std::vector<TrainingObserver*> observers_;
  std::unique_ptr<AdamOptimizer> optimizer_;
  std::unique_ptr<SparseTrainingStep> trainingStep_;
  L1Scheduler l1Scheduler_;
  LrScheduler lrScheduler_;
  torch::Tensor actFreqScores_, nForwardPassesSinceFired_;
  int64_t nFracActiveTokens_ = 0;
  int64_t step_ = 0;
  int64_t nTrainingTokens_ = 0;
  std::vector<int64_t> checkpointThresholds_;
  void waitWhilePaused();
  std::atomic<bool> stopRequested_{false};
  std::shared_ptr<DistributedContext> distributed_;
  std::atomic<bool> stopPending_{false};  // data-parallel: sent with the next step's all-reduce
  std::atomic<bool> paused_{false};
  std::mutex pauseMutex_;
  std::condition_variable pauseChanged_;
  bool bDecInitialised_ = false;
  bool prefetch_ = true;
  int64_t prefetchedBuffers_ = 0;
  bool evaluatesBeforeNextRefill() const;
  double lastMse_ = 0, lastL1_ = 0;  // for the progress line
  std::chrono::steady_clock::time_point runStart_ = std::chrono::steady_clock::now();
  double wallSecondsBefore_ = 0;  // wall time of the run before a resume
};

}  // namespace sae
