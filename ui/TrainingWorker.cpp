#include "TrainingWorker.h"

#include <QMutexLocker>

#include <algorithm>
#include <memory>
#include <string>

#include "SessionObserver.h"
#include "analysis/DataInspection.h"
#include "demo/DemoWorld.h"
#include "train/TrainingRun.h"

namespace {

// The notebook's data-inspection histograms (decoder norms at init, activation norms of one
// buffer, buffer-norm means). Called before the run is built: TrainingRun seeds torch, so the
// inspection cannot shift the training's random stream away from sae-train's. On a language
// model every buffer is a model forward pass, so the notebook's sizes (get_buffer(32), then ten
// get_buffer(64)) are scaled down to a token budget; a model too large for even one batch per
// buffer within it skips the inspection.
void showDataInspection(const sae::RunConfig& config, bool fromModel, SessionObserver& observer) {
  const int64_t tokensPerBatch = config.store_batch_size * config.context_size;
  constexpr int64_t kModelTokenBudget = 400000;
  sae::DataInspectionOptions options;
  if (fromModel) {
    const int64_t perBuffer = kModelTokenBudget / (1 + options.meanBufferCount);
    const int64_t batches = tokensPerBatch > 0 ? perBuffer / tokensPerBatch : 0;
    options.normBufferBatches = std::min<int64_t>(options.normBufferBatches, batches);
    options.meanBufferBatches = std::min<int64_t>(options.meanBufferBatches, batches);
  }
  if (options.normBufferBatches < 1) {
    observer.onMessage("Data inspection skipped: one buffer of this model would take more than " +
                       std::to_string(kModelTokenBudget / (1 + options.meanBufferCount)) +
                       " tokens");
  } else {
    try {
      for (const auto& event : sae::DataInspection::inspect(config, options))
        observer.onHistogram(event);
    } catch (const std::exception& error) {
      observer.onMessage(std::string("Data inspection skipped: ") + error.what());
    }
  }
}

}  // namespace

TrainingWorker::TrainingWorker(const sae::RunConfig& config, const QString& runDir, bool resume)
    : config_(config), runDir_(runDir), resume_(resume) {}

void TrainingWorker::requestStop() {
  stop_ = true;
  QMutexLocker lock(&mutex_);
  if (run_) run_->requestStop();
}

void TrainingWorker::setPaused(bool paused) {
  paused_ = paused;
  QMutexLocker lock(&mutex_);
  if (run_) run_->setPaused(paused);
}

void TrainingWorker::run() {
  SessionObserver observer([this](TrainingBatch&& batch) { Q_EMIT batchReady(batch); });
  try {
    const bool fromModel = !config_.use_synthetic_activations && !config_.use_cached_activations;
    if (fromModel && sae::DemoWorld::usedBy(config_.model_name, config_.dataset_path)) {
      // Built once and cached; minutes the first time, so say what is happening.
      sae::DemoWorld world(sae::DemoWorld::defaultFolder());
      world.ensureModel([&observer](const std::string& line) { observer.onMessage(line); });
    }
    // Pre-training views of the data: a resumed run is past them, so it goes straight on.
    if (!resume_) showDataInspection(config_, fromModel, observer);
    const auto log = [&observer](const std::string& line) { observer.onMessage(line); };
    auto run = resume_ ? sae::TrainingRun::resume(runDir_.toStdString(), log)
                       : std::make_unique<sae::TrainingRun>(config_, runDir_.toStdString(), log);
    run->addObserver(&observer);
    {
      QMutexLocker lock(&mutex_);
      run_ = run.get();
      if (paused_) run_->setPaused(true);
      if (stop_) run_->requestStop();
    }
    observer.onMessage("Run folder: " + runDir_.toStdString());
    if (config_.use_synthetic_activations || config_.use_cached_activations) {
      observer.onMessage("CE loss evals skipped: no language model in this run");
    }
    bool finished = false;
    try {
      finished = run->run();
    } catch (...) {
      QMutexLocker lock(&mutex_);
      run_ = nullptr;
      throw;
    }
    {
      QMutexLocker lock(&mutex_);
      run_ = nullptr;
    }
    const int64_t step = run->step();
    run.reset();
    observer.flush();
    if (finished) {
      Q_EMIT done(Finished, QString("Training finished: %1 steps").arg(step));
    } else {
      Q_EMIT done(Stopped, QString("Stopped at step %1: checkpoint saved under %2/checkpoints")
                               .arg(step)
                               .arg(runDir_));
    }
  } catch (const std::exception& error) {
    observer.flush();
    Q_EMIT done(Failed, QString::fromStdString(error.what()));
  }
}
