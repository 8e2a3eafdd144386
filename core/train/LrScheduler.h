#pragma once
// SAELens 1.5 get_lr_scheduler (constant / cosineannealing / cosineannealingwarmrestarts with
// linear warm-up and linear decay, combined as torch's SequentialLR) evaluated value for value
// as a pure function of the step. Torch-free.
//
// torch's schedulers are recursive (each value is computed from the optimiser's previous lr)
// and SequentialLR restarts each phase with step(0), so closed forms drift by a few ulps over a
// long run. The constructor therefore replays torch 1.13's scheduler objects step by step in
// double precision, keeping a snapshot of that small state every kSnapshotEvery steps; lrAt
// replays from the nearest snapshot.
#include <cstdint>
#include <string>
#include <vector>

namespace sae {

class LrScheduler {
 public:
  // Throws std::invalid_argument with SAELens's message for an unknown name (case-insensitive
  // match) or decay steps with lr_end == 0, and with torch's message where torch's own
  // constructors refuse (CosineAnnealingWarmRestarts with T_0 = main_steps // cycles <= 0,
  // decay start factor lr_end / lr outside [0, 1]).
  LrScheduler(const std::string& name, double lr, int64_t trainingSteps, int64_t warmUpSteps,
              int64_t decaySteps, double lrEnd, int64_t numCycles);
  // Learning rate used by optimiser step `step` (0-based), exactly as torch's scheduler would
  // have set it after `step` calls to scheduler.step(). NaN where torch itself would raise
  // ZeroDivisionError (a cosine main phase of length 0 that is stepped, which only happens
  // at step >= trainingSteps).
  double lrAt(int64_t step) const;

  // One torch scheduler object inside the SequentialLR (only the fields torch's code reads).
  struct Phase {
    enum class Kind { Linear, Lambda, Cosine, CosineWarmRestarts };
    Kind kind = Kind::Lambda;
    double baseLr = 0.0;
    int64_t lastEpoch = -1;
    int64_t stepCount = 0;
    double startFactor = 1.0, endFactor = 1.0;  // LinearLR
    int64_t totalIters = 0;                     // LinearLR
    int64_t tMax = 0;                           // CosineAnnealingLR
    double etaMin = 0.0;                        // both cosine schedulers
    int64_t t0 = 1, tI = 1, tCur = 0;           // CosineAnnealingWarmRestarts (T_mult = 1)
  };
  // The optimiser's lr plus every scheduler's counters after `steps` SequentialLR.step() calls.
  struct State {
    double groupLr = 0.0;
    int64_t sequentialLastEpoch = 0;
    int64_t steps = 0;
    std::vector<Phase> phases;
  };

 private:
  static constexpr int64_t kSnapshotEvery = 128;  // ~400 bytes per snapshot
  void sequentialStep(State& state) const;

  std::string name_;  // lower-cased
  double lr_, lrEnd_;
  int64_t trainingSteps_, warmUp_, decay_, numCycles_;
  std::vector<int64_t> milestones_;
  std::vector<State> snapshots_;  // snapshots_[i] is the state after i * kSnapshotEvery steps
};

}  // namespace sae
