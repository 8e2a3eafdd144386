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
  // `resumeFrom` (a checkpoint folder inside outDir, see latestCheckpoint) continues that run
  // exactly: the trainer's state is restored from it, config.json is left as it is, metrics.jsonl
  // keeps the lines of the steps before the checkpoint and is appended to, run.json keeps its
  // start time.
  TrainingRun(const RunConfig& config, const std::string& outDir,
              const std::function<void(const std::string&)>& log = {},
              const std::string& resumeFrom = {});
  // Continues the run folder `runDir` from its latest complete checkpoint with the config in
  // runDir/config.json. Throws std::runtime_error naming the folder when it cannot be resumed
  // (no config, already finished, no checkpoint with a training state).
  static std::unique_ptr<TrainingRun> resume(
      const std::string& runDir, const std::function<void(const std::string&)>& log = {});
  // The checkpoint of runDir with the most tokens whose training state is complete.
  static std::string latestCheckpoint(const std::string& runDir);
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
  // The step a resumed run continued from; 0 for a fresh run.
  int64_t resumedFromStep() const;
  const std::string& outDir() const;
  const RunConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sae
