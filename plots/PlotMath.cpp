#include "PlotMath.h"

#include <algorithm>
#include <cmath>

namespace plotmath {

double EmaSmoother::add(double y) {
  if (!std::isfinite(y) || weight_ <= 0.0) return y;
  last_ = last_ * weight_ + (1.0 - weight_) * y;
  ++count_;
  const double debias = 1.0 - std::pow(weight_, static_cast<double>(count_));
  return last_ / debias;
}

std::vector<double> emaSmooth(const std::vector<double>& ys, double weight) {
  EmaSmoother smoother(weight);
  std::vector<double> out;
  out.reserve(ys.size());
  for (double y : ys)
    out.push_back(smoother.add(y));
  return out;
}

bool robustRange(std::vector<double> values, bool logScale, double lowQuantile, double highQuantile,
                 double margin, double* lo, double* hi) {
  values.erase(std::remove_if(values.begin(), values.end(),
                              [&](double v) { return !std::isfinite(v) || (logScale && v <= 0); }),
               values.end());
  if (values.empty()) return false;
  if (logScale) {
    for (double& v : values)
      v = std::log10(v);
  }
  std::sort(values.begin(), values.end());
  double a = values.front(), b = values.back();
  if (values.size() >= 20) {
    const auto at = [&](double q) {
      const double index = q * static_cast<double>(values.size() - 1);
      const auto i = static_cast<size_t>(std::floor(index));
      const size_t j = std::min(i + 1, values.size() - 1);
      return values[i] + (values[j] - values[i]) * (index - std::floor(index));
    };
    a = at(lowQuantile);
    b = at(highQuantile);
  }
  const double span = b - a;
  // A flat curve gets a band around it instead of a zero-height range; "flat" includes the
  // last-ulp wobble of a smoothed constant, which would otherwise fill the plot with noise.
  const bool flat = !(span > 1e-9 * std::max(std::fabs(a), std::fabs(b)));
  const double pad =
      flat ? (a == 0 ? 1.0 : std::fabs(a) * 0.1) * (logScale ? 5.0 : 1.0) : margin * span;
  a -= pad;
  b += pad;
  if (logScale) {
    a = std::pow(10.0, a);
    b = std::pow(10.0, b);
  }
  *lo = a;
  *hi = b;
  return true;
}

}  // namespace plotmath
