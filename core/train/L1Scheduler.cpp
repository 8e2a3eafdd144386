#include "train/L1Scheduler.h"

namespace sae {

L1Scheduler::L1Scheduler(double finalCoefficient, int64_t warmUpSteps)
    : final_(finalCoefficient), warmUp_(warmUpSteps) {}

double L1Scheduler::coefficientAt(int64_t step) const {
  // SAELens's constructor zeroes the coefficient when there is a warm-up; step() number k
  // (0-based, called after training step k) then sets final * ((1 + k) / W) while k < W,
  // else final. Training step t therefore sees the value set by call k = t - 1, and the
  // expression keeps Python's operand order so the doubles are identical.
  if (step <= 0) return warmUp_ != 0 ? 0.0 : final_;
  const int64_t k = step - 1;
  if (k < warmUp_) {
    return final_ * (static_cast<double>(1 + k) / static_cast<double>(warmUp_));
  }
  return final_;
}

}  // namespace sae
