#pragma once
// The files of one run folder that follow a training run, set up in one place for a single run
// (TrainingRun) and for each SAE of a sweep (SweepRun): config.json, metrics.jsonl, the
// TensorBoard event file and run.json. Torch-free.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/RunConfig.h"
#include "train/TrainingObserver.h"

namespace sae {

class MetricsJsonlSink;
class TensorBoardEventSink;
class RunManifest;

class RunFolderWriter {
 public:
  struct Options {
    // A resumed run keeps config.json and run.json's start time, keeps the lines of
    // metrics.jsonl logged before resumedFromStep and appends to it.
    bool resume = false;
    int64_t resumedFromStep = 0;
  };

  // Creates runDir and its files; run.json ("running") is written last, so create the writer
  // once everything that can reject the inputs has run. Throws std::runtime_error naming the
  // file that cannot be written.
  RunFolderWriter(const RunConfig& config, const std::string& runDir, const Options& options);
  ~RunFolderWriter();
  RunFolderWriter(const RunFolderWriter&) = delete;
  RunFolderWriter& operator=(const RunFolderWriter&) = delete;

  // The sinks in the order the trainer should call them: metrics.jsonl, events, run.json (whose
  // onFinished marks the run finished after final/ is saved).
  std::vector<TrainingObserver*> observers() const;

  // After the training loop returned: flushes the event file and, when it did not finish,
  // marks run.json stopped with `message`.
  void ended(bool finished, const std::string& message);
  // run.json "failed"; never throws (the training error is the one to report).
  void markFailed(const std::string& message) noexcept;

  const std::string& runDir() const { return runDir_; }

  // Creates a run (or sweep) folder and its parents. Throws std::runtime_error naming the folder
  // and the reason (a file in the way, no permission, disk full) when it cannot.
  static void createFolder(const std::string& dir);

  // Keeps the lines of a metrics.jsonl logged before `step` (a run killed after its last
  // checkpoint logged steps that the resumed run logs again).
  static void truncateMetricsBefore(const std::string& path, int64_t step);

 private:
  std::string runDir_;
  std::unique_ptr<MetricsJsonlSink> metrics_;
  std::unique_ptr<TensorBoardEventSink> events_;
  std::unique_ptr<RunManifest> manifest_;
};

}  // namespace sae
