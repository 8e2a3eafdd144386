#include "train/Trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>

#include "config/ConfigError.h"
#include "data/LanguageModelActivationSource.h"
#include "data/SyntheticActivationSource.h"
#include "eval/LanguageModelEvaluator.h"
#include "formats/Safetensors.h"
#include "sae/SaeFolder.h"
#include "train/Bf16Gemm.h"
#include "train/DistributedContext.h"
#include "train/GradientClipping.h"

namespace sae {

namespace fs = std::filesystem;

namespace {
// SAELens clips on every step; it is not a config field.
constexpr double kMaxGradNorm = 1.0;

// The metadata that marks a training state file (restoreTrainingState refuses anything else).
constexpr const char* kStateFormat = "sae-workbench training state 1";

void writeStateFile(const std::string& file, const StreamState& state) {
  Safetensors::write(file, Safetensors::NamedTensors(state.begin(), state.end()),
                     {{"format", kStateFormat}});
}

double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}
}  // namespace

Trainer::Trainer(RunConfig config, std::shared_ptr<ActivationStore> store, std::shared_ptr<Sae> sae,
                 std::string outDir)
    : config_(std::move(config)),
      store_(std::move(store)),
      sae_(std::move(sae)),
      outDir_(std::move(outDir)),
      l1Scheduler_(config_.l1_coefficient, config_.l1_warm_up_steps),
      lrScheduler_(config_.lr_scheduler_name, config_.lr, config_.totalSteps(),
                   config_.lr_warm_up_steps, config_.lr_decay_steps, config_.effectiveLrEnd(),
                   config_.n_restart_cycles) {
  if (config_.finetuning_tokens > 0) {
    throw ConfigError("finetuning_tokens is " + std::to_string(config_.finetuning_tokens) +
                      ": fine-tuning is not supported yet; set finetuning_tokens to 0");
  }
  if (config_.autocast && sae_->options().device.is_cpu() && !Bf16Gemm::available()) {
    throw ConfigError("autocast is true, but this CPU cannot run bf16 matrix products (" +
                      Bf16Gemm::unavailableReason() + "); set autocast to false");
  }
  optimizer_ = std::make_unique<AdamOptimizer>(sae_->trainableParameters(), config_.adam_beta1,
                                               config_.adam_beta2);
  trainingStep_ = std::make_unique<SparseTrainingStep>(*sae_);
  trainingStep_->setBf16(config_.autocast);
  const int64_t dSae = sae_->options().d_sae;
  actFreqScores_ = torch::zeros({dSae}, torch::kFloat32);
  nForwardPassesSinceFired_ = torch::zeros({dSae}, torch::kFloat32);
  // range(0, T, T // n_checkpoints)[1:]
  const int64_t total = config_.totalTrainingTokens();
  if (config_.n_checkpoints > 0 && total / config_.n_checkpoints > 0) {
    const int64_t stride = total / config_.n_checkpoints;
    for (int64_t t = stride; t < total; t += stride)
      checkpointThresholds_.push_back(t);
  }
}

void Trainer::addObserver(TrainingObserver* observer) {
  observers_.push_back(observer);
}

std::shared_ptr<Sae> Trainer::makeSae(const RunConfig& config) {
  auto sae = std::make_shared<Sae>(SaeOptions::fromConfig(config));
  if (config.from_pretrained_path && !config.from_pretrained_path->empty()) {
    SaeFolder::loadWeights(*config.from_pretrained_path, *sae);
  }
  return sae;
}

void Trainer::setDistributed(std::shared_ptr<DistributedContext> context) {
  if (step_ != 0) throw std::logic_error("setDistributed on a trainer that has trained");
  distributed_ = context && context->worldSize() > 1 ? std::move(context) : nullptr;
  if (!distributed_) return;
  // Ranks with different settings would silently train a mix: compare a digest of the config
  // (FNV-1a over its JSON) with rank 0's. Paths are left out: they may differ between machines.
  nlohmann::json settings = config_.toJson();
  for (const char* path : {"dataset_path", "cached_activations_path", "from_pretrained_path",
                           "model_name", "checkpoint_path"})
    settings.erase(path);
  uint64_t digest = 14695981039346656037ULL;
  for (const unsigned char c : settings.dump())
    digest = (digest ^ c) * 1099511628211ULL;
  const torch::Tensor mine = torch::tensor(
      {static_cast<int64_t>(digest & 0xffffffffULL), static_cast<int64_t>(digest >> 32)},
      torch::kInt64);
  const torch::Tensor rank0 = mine.clone();
  distributed_->broadcast({rank0});
  if (!torch::equal(mine, rank0)) {
    const std::string why =
        "config differs from rank 0's: every rank of a data-parallel run must train with the "
        "same settings (the same config file and --set options; only paths may differ)";
    distributed_->reportFailure("its " + why);
    throw ConfigError("rank " + std::to_string(distributed_->rank()) + "'s " + why);
  }
  // Every rank seeds torch alike, but a rank's own generator use (or a different build) must not
  // make the SAEs differ: all start from rank 0's.
  distributed_->broadcast(sae_->trainableParameters());
}

void Trainer::initBDec() {
  if (bDecInitialised_) return;
  bDecInitialised_ = true;
  // Starting from a saved SAE keeps its b_dec.
  if (config_.from_pretrained_path && !config_.from_pretrained_path->empty()) return;
  const auto& method = config_.b_dec_init_method;
  if (method == "geometric_median") {
    sae_->initializeBDecWithGeometricMedian(store_->storageBuffer());
  } else if (method == "mean") {
    sae_->initializeBDecWithMean(store_->storageBuffer());
  }
  // Each rank saw only its own storage buffer: all take rank 0's b_dec.
  if (distributed_) distributed_->broadcast({sae_->b_dec});
}

torch::Tensor Trainer::logFeatureSparsity() const {
  torch::NoGradGuard noGrad;
  const double n = static_cast<double>(std::max<int64_t>(nFracActiveTokens_, 1));
  return torch::log10(actFreqScores_ / n + 1e-10);
}

void Trainer::saveSae(const std::string& folder) const {
  if (config_.normalize_sae_decoder) sae_->setDecoderNormToUnitNorm();
  SaeFolder::save(folder, *sae_, config_, logFeatureSparsity(),
                  store_->estimatedNormScalingFactor());
}

void Trainer::emit(const MetricsEvent& event) {
  for (auto* observer : observers_)
    observer->onMetrics(event);
}

std::string Trainer::divergedMessage(const std::string& what, double value,
                                     const SaeForward& out) const {
  std::ostringstream m;
  m << "training diverged at step " << step_ << ": " << what << " is " << value << " (mse_loss "
    << out.mse_loss.item<double>() << ", l1_loss " << out.l1_loss.item<double>() << ", lr "
    << lrScheduler_.lrAt(step_) << ", l1_coefficient " << l1Scheduler_.coefficientAt(step_)
    << "). The weights were not updated"
    << (outDir_.empty() ? "" : " and the checkpoints in checkpoints/ are from before it")
    << "; lower lr or l1_coefficient, or check the activations for NaN/Inf";
  return m.str();
}

MetricsEvent Trainer::trainStep() {
  if (!bDecInitialised_) initBDec();
  return trainStepOn(store_->nextBatch());
}

void Trainer::setStepPath(StepPath path) {
  trainingStep_->setPath(path);
}

const SparseTrainingStep& Trainer::trainingStep() const {
  return *trainingStep_;
}

SaeForward Trainer::forwardBackward(const torch::Tensor& x, double l1Coefficient,
                                    const torch::Tensor& deadMask) {
  // Sparse (ReLU, sparse batch): no autograd history, feature_acts left undefined; the firing
  // counts and L0 come from trainingStep_. Dense: Sae::forward.
  SaeForward out = trainingStep_->forward(x, l1Coefficient, deadMask);
  // NaN/Inf guard: stop before a non-finite loss or gradient reaches the weights, so that the
  // SAE and every checkpoint already written stay usable.
  const double loss = out.loss.item<double>();
  if (!std::isfinite(loss)) throw std::runtime_error(divergedMessage("the loss", loss, out));
  optimizer_->zeroGrad();
  trainingStep_->backward(out);
  return out;
}

MetricsEvent Trainer::trainStepOn(const torch::Tensor& x) {
  if (!bDecInitialised_) initBDec();
  const int64_t batchRows = x.size(0);
  nTrainingTokens_ += config_.train_batch_size;

  MetricsEvent event;
  event.step = step_;
  event.n_training_tokens = nTrainingTokens_;

  // 1. decoder renormalisation
  if (config_.normalize_sae_decoder) sae_->setDecoderNormToUnitNorm();

  // 2. sparsity window: log the density of the window that just ended, then reset.
  if ((step_ + 1) % config_.feature_sampling_window == 0 && nFracActiveTokens_ > 0) {
    torch::NoGradGuard noGrad;
    const torch::Tensor density = actFreqScores_ / static_cast<double>(nFracActiveTokens_);
    const torch::Tensor logDensity = torch::log10(density + 1e-10);
    event.values["metrics/mean_log10_feature_sparsity"] = logDensity.mean().item<double>();
    event.values["sparsity/below_1e-5"] = (density < 1e-5).sum().item<double>();
    event.values["sparsity/below_1e-6"] = (density < 1e-6).sum().item<double>();
    HistogramEvent histogram;
    histogram.step = step_;
    histogram.name = "plots/feature_density_line_chart";
    auto contiguous = logDensity.to(torch::kFloat64).contiguous();
    histogram.values.assign(contiguous.data_ptr<double>(),
                            contiguous.data_ptr<double>() + contiguous.numel());
    for (auto* observer : observers_)
      observer->onHistogram(histogram);
    emitDecoderNorms();
    actFreqScores_.zero_();
    nFracActiveTokens_ = 0;
  }

  // 3. dead mask from the counters before this step's forward pass
  const torch::Tensor deadMask =
      nForwardPassesSinceFired_ > static_cast<double>(config_.dead_feature_window);
  // Data-parallel: the counters below count this rank's rows; reduceAcrossRanks replaces that
  // with the combined batch's counts.
  const torch::Tensor actFreqBefore = distributed_ ? actFreqScores_.clone() : torch::Tensor();

  // 4. forward with this step's coefficient
  const double l1Coefficient = l1Scheduler_.coefficientAt(step_);
  const double lr = lrScheduler_.lrAt(step_);
  // 7a. (SAELens 1.5 order: zero, backward, ...) the gradients of this step's loss
  SaeForward out = forwardBackward(x, l1Coefficient, deadMask);

  // 5-6. firing counters
  {
    torch::NoGradGuard noGrad;
    // (feature_acts > 0).sum(0), from whichever path ran (the sparse one has no dense acts).
    const torch::Tensor& firedCounts = trainingStep_->firingCounts();
    const torch::Tensor didFire = firedCounts > 0;
    nForwardPassesSinceFired_.add_(1);
    nForwardPassesSinceFired_.masked_fill_(didFire, 0);
    actFreqScores_.add_(firedCounts);
    nFracActiveTokens_ += batchRows;
  }

  if (distributed_) reduceAcrossRanks(batchRows, actFreqBefore);

  // 7b. optimiser update (SAELens 1.5 order: ..., clip, parallel removal, step)
  const double gradNorm =
      GradientClipping::clipByTotalNorm(sae_->trainableParameters(), kMaxGradNorm);
  if (!std::isfinite(gradNorm))
    throw std::runtime_error(divergedMessage("the gradient norm", gradNorm, out));
  if (config_.normalize_sae_decoder) sae_->removeGradientParallelToDecoderDirections();
  optimizer_->step(lr);

  // 3 (logging). Values of the step that just ran; SAELens logs the next step's coefficient
  // and learning rate here, we log the ones this step used.
  const bool logNow = (step_ + 1) % config_.wandb_log_frequency == 0;
  if (logNow) {
    torch::NoGradGuard noGrad;
    const double mse = out.mse_loss.item<double>();
    const double sparsity = out.sparsity.item<double>();
    const double ghost = out.ghost_grad_loss.item<double>();
    event.values["losses/mse_loss"] = mse;
    event.values["losses/l1_loss"] = sparsity;
    event.values["losses/ghost_grad_loss"] = ghost;
    event.values["losses/overall_loss"] = out.loss.item<double>();
    const torch::Tensor xd = x.to(out.sae_out.dtype());
    const torch::Tensor residualSq = (out.sae_out - xd).pow(2).sum(-1);
    const torch::Tensor totalSq = (xd - xd.mean(0)).pow(2).sum(-1);
    const torch::Tensor explained = 1 - residualSq / totalSq;
    event.values["metrics/explained_variance"] = explained.mean().item<double>();
    event.values["metrics/explained_variance_std"] = explained.std().item<double>();
    event.values["metrics/l0"] = trainingStep_->l0();
    event.values["sparsity/mean_passes_since_fired"] =
        nForwardPassesSinceFired_.mean().item<double>();
    event.values["sparsity/dead_features"] = deadMask.sum().item<double>();
    event.values["details/current_learning_rate"] = lr;
    event.values["details/current_l1_coefficient"] = l1Coefficient;
    event.values["details/n_training_tokens"] = static_cast<double>(nTrainingTokens_);
    if (const auto* synthetic = dynamic_cast<const SyntheticActivationSource*>(&store_->source())) {
      event.values["metrics/mmcs"] = synthetic->meanMaxCosineSimilarity(sae_->W_dec.detach());
    }
  }
  // 4 (evals). SAELens's run_evals every wandb_log_frequency * eval_every_n_wandb_logs steps on
  // prompts from the training token stream (here whether or not W&B is on).
  const int64_t evalEvery = config_.wandb_log_frequency * config_.eval_every_n_wandb_logs;
  if (evalEvery > 0 && (step_ + 1) % evalEvery == 0) {
    if (const auto* lm = dynamic_cast<const LanguageModelActivationSource*>(&store_->source())) {
      const LanguageModelEvaluator evaluator(
          lm->model(), lm->tokens(), lm->hookPoint(), lm->headIndex(), config_.n_eval_batches,
          config_.eval_batch_size_prompts.value_or(config_.store_batch_size));
      for (const auto& [name, value] : evaluator.run(*sae_).metrics())
        event.values[name] = value;
    }
  }

  if (distributed_ && !event.values.empty()) averageAcrossRanks(event);

  lastMse_ = out.mse_loss.item<double>();
  lastL1_ = out.l1_loss.item<double>();
  ++step_;
  return event;
}

void Trainer::reduceAcrossRanks(int64_t batchRows, const torch::Tensor& actFreqBefore) {
  torch::NoGradGuard noGrad;
  const auto parameters = sae_->trainableParameters();
  // Float32 SAEs reduce in float32 (half the traffic); the counts are whole numbers below 2^24
  // for any realistic global batch, so they stay exact in it.
  const auto dtype =
      parameters.front().scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  // The losses are means over rows: the combined batch's gradient is the row-weighted mean of
  // the ranks' gradients (equal shares make it the plain mean).
  std::vector<torch::Tensor> parts;
  for (const auto& p : parameters) {
    torch::Tensor g = p.grad();
    if (!g.defined()) g = torch::zeros_like(p);
    if (g.is_sparse()) g = g.to_dense();
    parts.push_back(g.reshape({-1}).to(dtype) * static_cast<double>(batchRows));
  }
  parts.push_back((actFreqScores_ - actFreqBefore).to(dtype));  // this step's firing counts
  parts.push_back(
      torch::tensor({static_cast<double>(batchRows), stopPending_ ? 1.0 : 0.0}).to(dtype));
  torch::Tensor buffer = torch::cat(parts);
  distributed_->allReduceSum(buffer);

  const int64_t dSae = actFreqScores_.numel();
  const int64_t total = buffer.numel();
  const double globalRows = buffer[total - 2].item<double>();
  int64_t offset = 0;
  for (const auto& p : parameters) {
    const torch::Tensor mean = (buffer.narrow(0, offset, p.numel()) / globalRows).view(p.sizes());
    offset += p.numel();
    torch::Tensor g = p.grad();
    if (g.defined() && !g.is_sparse()) {
      g.copy_(mean);  // in place: a step may reuse its gradient tensors
    } else {
      p.mutable_grad() = mean.to(p.scalar_type()).contiguous();
    }
  }
  // Exactly what one process would have: the counts of every rank's rows.
  const torch::Tensor counts = buffer.narrow(0, offset, dSae).to(torch::kFloat32);
  actFreqScores_.copy_(actFreqBefore + counts);
  nForwardPassesSinceFired_.masked_fill_(counts > 0, 0);
  nFracActiveTokens_ += static_cast<int64_t>(globalRows) - batchRows;
  // A stop asked on any rank ends every rank's loop after this same step.
  if (buffer[total - 1].item<double>() > 0) stopRequested_ = true;
}

// The logged values describe the combined batch: means over rows (losses, l0, explained
// variance) average exactly for equal shares; values every rank shares (learning rate, dead
// features, token counts) average to themselves. Every rank logs the same keys at the same
// steps, so the values line up in key order.
void Trainer::averageAcrossRanks(MetricsEvent& event) {
  std::vector<double> values;
  values.reserve(event.values.size());
  for (const auto& entry : event.values)
    values.push_back(entry.second);
  torch::Tensor buffer =
      torch::tensor(values, torch::TensorOptions().dtype(torch::kFloat64)).contiguous();
  distributed_->allReduceSum(buffer);
  buffer = buffer / static_cast<double>(distributed_->worldSize());
  const double* reduced = buffer.data_ptr<double>();
  size_t i = 0;
  for (auto& entry : event.values)
    entry.second = reduced[i++];
}

bool Trainer::evaluatesBeforeNextRefill() const {
  // Evaluations draw prompts from the training token stream: one between now and the next
  // refill must draw them before that refill's rows are read, as without the prefetch.
  if (!dynamic_cast<const LanguageModelActivationSource*>(&store_->source())) return false;
  const int64_t evalEvery = config_.wandb_log_frequency * config_.eval_every_n_wandb_logs;
  if (evalEvery <= 0) return false;
  // Steps step_ .. step_ + b - 1 train on rows already in the store; evaluations run at the end
  // of steps s with (s + 1) % evalEvery == 0.
  const int64_t b = store_->batchesUntilRefill();
  const int64_t nextEvalStep = ((step_ + evalEvery) / evalEvery) * evalEvery - 1;
  return nextEvalStep <= step_ + b - 1;
}

bool Trainer::run() {
  runStart_ = std::chrono::steady_clock::now();
  const auto& start = runStart_;
  const int64_t tokensAtStart = nTrainingTokens_;  // a resumed run's rate counts its own tokens
  const int64_t totalTokens = config_.totalTrainingTokens();
  // Steps the loop will run: a last partial batch still counts (SAELens's loop runs while
  // n_training_tokens < total, so the bar can pass training_tokens // train_batch_size).
  const int64_t totalSteps =
      (totalTokens + config_.train_batch_size - 1) / config_.train_batch_size;
  for (auto* observer : observers_) {
    for (const auto& line : config_.preambleLines())
      observer->onMessage(line);
    observer->onMessage("Activations: " + store_->source().describe());
    if (config_.compile_sae || config_.compile_llm) {
      observer->onMessage("compile_sae / compile_llm ignored: LibTorch has no torch.compile");
    }
  }
  emitDecoderNorms();  // the decoder at initialisation (the notebook's first histogram)
  while (nTrainingTokens_ < totalTokens && !stopRequested_) {
    waitWhilePaused();
    if (stopRequested_) break;
    MetricsEvent event = trainStep();
    // Overlapped pipeline: the source fills the next buffer while the coming steps train (when
    // the run still needs one).
    if (prefetch_ && totalSteps - step_ > store_->batchesUntilRefill() &&
        !evaluatesBeforeNextRefill() && store_->prefetchNextBuffer())
      ++prefetchedBuffers_;
    event.wall_seconds = wallSecondsBefore_ + seconds(start);
    if (!event.values.empty()) emit(event);

    if (!checkpointThresholds_.empty() && nTrainingTokens_ > checkpointThresholds_.front()) {
      writeCheckpoint(std::to_string(nTrainingTokens_));
      checkpointThresholds_.erase(checkpointThresholds_.begin());
    }

    ProgressEvent progress;
    progress.step = step_;
    progress.total_steps = totalSteps;
    progress.tokens_done = nTrainingTokens_;
    progress.tokens_total = totalTokens;
    progress.elapsed_seconds = seconds(start);
    progress.tokens_per_second =
        progress.elapsed_seconds > 0
            ? static_cast<double>(nTrainingTokens_ - tokensAtStart) / progress.elapsed_seconds
            : 0.0;
    progress.mse_loss = lastMse_;
    progress.l1_loss = lastL1_;
    for (auto* observer : observers_)
      observer->onProgress(progress);
  }
  const bool finished = nTrainingTokens_ >= totalTokens;
  emitDecoderNorms();
  if (!outDir_.empty()) {
    if (finished) {
      const std::string finalDir = (fs::path(outDir_) / "final").string();
      saveSae(finalDir);
      for (auto* observer : observers_)
        observer->onFinished(finalDir);
    } else {
      writeCheckpoint(std::to_string(nTrainingTokens_), /*stateAsBefore=*/true);
    }
  }
  return finished;
}

void Trainer::requestStop() {
  {
    std::lock_guard<std::mutex> lock(pauseMutex_);
    // Data-parallel: every rank must run the same steps, so the request travels with the next
    // step's all-reduce and stops every rank after that step (a pause ends so it can).
    if (distributed_) {
      stopPending_ = true;
      paused_ = false;
    } else {
      stopRequested_ = true;
    }
  }
  pauseChanged_.notify_all();
}

void Trainer::setPaused(bool paused) {
  {
    std::lock_guard<std::mutex> lock(pauseMutex_);
    paused_ = paused;
  }
  pauseChanged_.notify_all();
}

void Trainer::waitWhilePaused() {
  std::unique_lock<std::mutex> lock(pauseMutex_);
  pauseChanged_.wait(lock, [this] { return !paused_ || stopRequested_; });
}

// "weights/W_dec_norms": the norm of every decoder row, at the start, at each feature-sampling
// window and at the end, so the GUI can step through how the decoder evolved.
void Trainer::emitDecoderNorms() {
  if (observers_.empty()) return;
  torch::NoGradGuard noGrad;
  HistogramEvent histogram;
  histogram.step = step_;
  histogram.name = "weights/W_dec_norms";
  auto norms = sae_->W_dec.norm(2, {1}).to(torch::kFloat64).contiguous();
  histogram.values.assign(norms.data_ptr<double>(), norms.data_ptr<double>() + norms.numel());
  for (auto* observer : observers_)
    observer->onHistogram(histogram);
}

void Trainer::writeCheckpoint(const std::string& name, bool stateAsBefore) {
  if (outDir_.empty()) return;
  const std::string folder = (fs::path(outDir_) / "checkpoints" / name).string();
  // saveSae renormalises the decoder: the state holds the weights an uninterrupted run goes on
  // with, from before that for a stop checkpoint and from after it for a threshold checkpoint.
  StreamState state;
  if (stateAsBefore) state = captureState();
  saveSae(folder);
  if (!stateAsBefore) state = captureState();
  // Last: the state file's presence marks a checkpoint a run can resume from.
  writeStateFile((fs::path(folder) / kStateFile).string(), state);
  for (auto* observer : observers_)
    observer->onCheckpoint(folder);
}

// --- resume state ---------------------------------------------------------------------------

StreamState Trainer::captureState() const {
  torch::NoGradGuard noGrad;
  StreamState state;
  for (const auto& [name, tensor] : sae_->namedTensors())
    state["sae." + name] = tensor.detach().clone();
  const auto& m = optimizer_->expAvg();
  const auto& v = optimizer_->expAvgSq();
  for (size_t i = 0; i < m.size(); ++i) {
    state["adam.exp_avg." + std::to_string(i)] = m[i];
    state["adam.exp_avg_sq." + std::to_string(i)] = v[i];
  }
  state["trainer.act_freq_scores"] = actFreqScores_;
  state["trainer.n_forward_passes_since_fired"] = nForwardPassesSinceFired_;
  state["trainer.counters"] = torch::tensor({step_, nTrainingTokens_, nFracActiveTokens_,
                                             int64_t(bDecInitialised_), optimizer_->stepCount()},
                                            torch::kInt64);
  state["trainer.wall_seconds"] =
      torch::tensor({wallSecondsBefore_ + seconds(runStart_)}, torch::kFloat64);
  for (const auto& [name, tensor] : store_->saveState())
    state["store." + name] = tensor;
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  state["rng.default_cpu"] = generator.get_state();
  return state;
}

void Trainer::saveTrainingState(const std::string& file) const {
  writeStateFile(file, captureState());
}

void Trainer::restoreTrainingState(const std::string& file) {
  if (step_ != 0) throw std::logic_error("restoreTrainingState on a trainer that has trained");
  std::map<std::string, std::string> metadata;
  const auto tensors = Safetensors::read(file, &metadata);
  if (metadata["format"] != kStateFormat)
    throw std::runtime_error(file + ": not a training state written by this version (format '" +
                             metadata["format"] + "')");
  StreamState state(tensors.begin(), tensors.end());
  auto get = [&](const std::string& key) -> const torch::Tensor& {
    const auto it = state.find(key);
    if (it == state.end()) throw std::runtime_error(file + ": no tensor '" + key + "'");
    return it->second;
  };
  auto copyInto = [&](torch::Tensor& target, const std::string& key) {
    const torch::Tensor& t = get(key);
    if (t.sizes() != target.sizes() || t.scalar_type() != target.scalar_type())
      throw std::runtime_error(file + ": '" + key + "' does not match this run's shape or dtype");
    torch::NoGradGuard noGrad;
    target.copy_(t);  // in place: the optimiser holds these very tensors
  };
  copyInto(sae_->W_enc, "sae.W_enc");
  copyInto(sae_->b_enc, "sae.b_enc");
  copyInto(sae_->W_dec, "sae.W_dec");
  copyInto(sae_->b_dec, "sae.b_dec");
  if (state.count("sae.scaling_factor")) copyInto(sae_->scaling_factor, "sae.scaling_factor");
  copyInto(actFreqScores_, "trainer.act_freq_scores");
  copyInto(nForwardPassesSinceFired_, "trainer.n_forward_passes_since_fired");
  const torch::Tensor counters = get("trainer.counters").to(torch::kInt64).contiguous();
  if (counters.numel() != 5) throw std::runtime_error(file + ": trainer.counters must hold 5");
  const auto* c = counters.data_ptr<int64_t>();
  std::vector<torch::Tensor> m, v;
  for (size_t i = 0; i < optimizer_->expAvg().size(); ++i) {
    m.push_back(get("adam.exp_avg." + std::to_string(i)).clone());
    v.push_back(get("adam.exp_avg_sq." + std::to_string(i)).clone());
  }
  optimizer_->setState(std::move(m), std::move(v), c[4]);
  StreamState storeState;
  for (const auto& [name, tensor] : state)
    if (name.rfind("store.", 0) == 0) storeState[name.substr(6)] = tensor;
  try {
    store_->restoreState(storeState);
  } catch (const std::exception& e) {
    throw std::runtime_error(file + ": " + e.what());
  }
  step_ = c[0];
  nTrainingTokens_ = c[1];
  nFracActiveTokens_ = c[2];
  bDecInitialised_ = c[3] != 0;
  // The x axis "wall seconds" continues from the interrupted run's time.
  wallSecondsBefore_ =
      get("trainer.wall_seconds").to(torch::kFloat64).reshape({-1})[0].item<double>();
  // Thresholds already passed were written by the interrupted run.
  while (!checkpointThresholds_.empty() && nTrainingTokens_ > checkpointThresholds_.front())
    checkpointThresholds_.erase(checkpointThresholds_.begin());
  // Last: nothing above may draw from the generator after it is restored.
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  try {
    generator.set_state(get("rng.default_cpu"));
  } catch (const c10::Error& e) {
    throw std::runtime_error(file + ": bad generator state (" +
                             std::string(e.what_without_backtrace()) + ")");
  }
}

}  // namespace sae
