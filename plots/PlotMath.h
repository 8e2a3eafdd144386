#pragma once
// Numbers behind the plots, kept apart from the widgets so tests can check them directly.
#include <cstddef>
#include <utility>
#include <vector>

namespace plotmath {

// TensorBoard's scalar smoothing: a debiased exponential moving average.
//   last = last * w + (1 - w) * y;  n += 1;  smoothed = last / (1 - w^n)
// Non-finite values pass through unchanged and do not update the average; w = 0 returns the
// input. Incremental, so live curves extend without recomputing the whole history.
class EmaSmoother {
 public:
  explicit EmaSmoother(double weight = 0.0) : weight_(weight) {}
  double add(double y);
  void reset() { last_ = 0.0, count_ = 0; }
  double weight() const { return weight_; }

 private:
  double weight_;
  double last_ = 0.0;
  long long count_ = 0;
};

std::vector<double> emaSmooth(const std::vector<double>& ys, double weight);

// Autoscale range that ignores outliers: the [lowQuantile, highQuantile] quantiles of the
// finite values (all of them with fewer than 20 values), widened by `margin` of the span on
// each side (a log axis: values <= 0 ignored and the margin applied in log10). Returns false
// when there is nothing to scale to.
bool robustRange(std::vector<double> values, bool logScale, double lowQuantile, double highQuantile,
                 double margin, double* lo, double* hi);

}  // namespace plotmath
