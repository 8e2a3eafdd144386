#pragma once
// The whole training job behind a header with no LibTorch in it, for the GUI's session and the
// CLI: builds the activation source, store and SAE from a config, writes config.json and
// metrics.jsonl into the run folder, then trains with the core Trainer.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "config/RunConfig.h"
#include "train/TrainingObserver.h"

namespace sae {

class TrainingRun {
 public:
  // Sets torch's threads and seed from the config, reads the inputs (activation source, SAE
  // init or from_pretrained_path), creates outDir and writes config.json into it. Throws
  // ConfigError (or std::runtime_error naming the file) for bad input; nothing is trained yet.
  // `log` receives progress lines of slow setup (the demo world is built on first use).
  TrainingRun(const RunConfig& config, const std::string& outDir,
              const std::function<void(const std::string&)>& log = {});
  ~TrainingRun();
  TrainingRun(const TrainingRun&) = delete;
  TrainingRun& operator=(const TrainingRun&) = delete;

  // Observers must outlive run(); add them before run().
  void addObserver(TrainingObserver* observer);
  // Trains until the token budget is spent (true: final/ written) or a stop is requested
  // (false: a checkpoint of the current state written). Throws on a training failure.
  bool run();

  // Thread-safe controls for another thread (the GUI). A stop also releases a pause.
  void requestStop();
  void setPaused(bool paused);
  bool isPaused() const;

  int64_t step() const;
  int64_t totalSteps() const;
  int64_t tokensDone() const;
  const std::string& outDir() const;
  const RunConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sae
