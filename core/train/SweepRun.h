#pragma once
// A sweep (SAELens's train_sae_group_on_language_model): several SAEs, one per combination of a
// config's list values (SweepExpansion), trained on one activation stream. Every step takes one
// batch from the shared store and gives it to each SAE's Trainer in turn. The sweep folder holds
// sweep.json and one ordinary run folder per SAE (config.json with that SAE's values,
// metrics.jsonl, the event file, run.json, checkpoints/, final/), so every tool that opens a run
// opens each of them. Torch-free, like TrainingRun.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/SweepExpansion.h"
#include "train/TrainingObserver.h"

namespace sae {

class SweepRun {
 public:
  static constexpr const char* kManifestFile = "sweep.json";

  // Seeds torch and builds the one activation source and store from the first combination
  // (the stream fields are the same in all), then each SAE exactly as a single run of its
  // combination would (the default generator is reset to the same point before each SAE's
  // initialisation), its Trainer and its run folder outDir/<folderName>. Writes sweep.json.
  // `sweepConfig` (the config as written, with its lists) is recorded in sweep.json.
  // Throws ConfigError or std::runtime_error for bad input; nothing is trained yet.
  SweepRun(std::vector<SweepCombination> combinations, const std::string& outDir,
           const nlohmann::json& sweepConfig = nullptr,
           const std::function<void(const std::string&)>& log = {});
  ~SweepRun();
  SweepRun(const SweepRun&) = delete;
  SweepRun& operator=(const SweepRun&) = delete;

  // Sweep-wide observers get the preamble and messages once, one progress event per step
  // (losses averaged over the SAEs, as SAELens's bar) and every SAE's checkpoints and final
  // folders. Add them before run().
  void addObserver(TrainingObserver* observer);
  // Observers of one SAE (index into combinations()): its metrics and histograms as a single
  // run emits them, plus its progress, checkpoints and final folder.
  void addSaeObserver(size_t index, TrainingObserver* observer);

  // Trains until the token budget is spent (true: every final/ written) or a stop is requested
  // (false: a checkpoint of every SAE written). Throws on a training failure (every run.json
  // says failed).
  bool run();

  // Thread-safe controls for another thread. A stop also releases a pause.
  void requestStop();
  void setPaused(bool paused);
  bool isPaused() const;

  int64_t step() const;
  int64_t totalSteps() const;
  int64_t tokensDone() const;
  const std::string& outDir() const;
  const std::vector<SweepCombination>& combinations() const;
  // Whether SAE `index` trains exactly as a single run of its combination (same batches, same
  // draws), and if not, why ("" when it does). See docs/semantics.md, "Sweeps".
  bool matchesSingleRun(size_t index) const;
  const std::string& singleRunNote(size_t index) const;

  // Whether `dir` is a sweep folder (holds sweep.json).
  static bool isSweepFolder(const std::string& dir);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sae
