#pragma once
// SAELens 1.5 L1Scheduler as a pure function of the step, so the GUI can preview the whole
// schedule before training and the trainer can resume at any step. Torch-free.
#include <cstdint>

namespace sae {

class L1Scheduler {
 public:
  L1Scheduler(double finalCoefficient, int64_t warmUpSteps);
  // Coefficient used by training step `step` (0-based): final * min(step / W, 1); with W = 0
  // it is final from step 0.
  double coefficientAt(int64_t step) const;
  double finalCoefficient() const { return final_; }
  int64_t warmUpSteps() const { return warmUp_; }

 private:
  double final_;
  int64_t warmUp_;
};

}  // namespace sae
