#pragma once
// SAELens 1.5 get_lr_scheduler (constant / cosineannealing / cosineannealingwarmrestarts with
// linear warm-up and linear decay, combined as torch's SequentialLR) evaluated value for value
// as a pure function of the step. Torch-free.
#include <cstdint>
#include <string>

namespace sae {

class LrScheduler {
 public:
  // Throws std::invalid_argument with SAELens's message for an unknown name (case-insensitive
  // match) or decay steps with lr_end == 0.
  LrScheduler(const std::string& name, double lr, int64_t trainingSteps, int64_t warmUpSteps,
              int64_t decaySteps, double lrEnd, int64_t numCycles);
  // Learning rate used by optimiser step `step` (0-based), exactly as torch's scheduler would
  // have set it after `step` calls to scheduler.step().
  double lrAt(int64_t step) const;

 private:
  std::string name_;  // lower-cased
  double lr_, lrEnd_;
  int64_t trainingSteps_, warmUp_, decay_, numCycles_;
};

}  // namespace sae
