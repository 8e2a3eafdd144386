// Element-wise tolerance checks against reference values: |actual - expected| <= atol + rtol *
// |expected|.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include <torch/torch.h>

namespace saetest {

// Empty string when close; otherwise where and by how much it is not.
inline std::string compareTensors(const std::string& what, const torch::Tensor& actual,
                                  const torch::Tensor& expected, double atol, double rtol) {
  if (actual.sizes() != expected.sizes()) return what + ": shape differs";
  const auto a = actual.detach().to(torch::kFloat64);
  const auto e = expected.to(torch::kFloat64);
  const auto excess = (a - e).abs() - (atol + rtol * e.abs());
  if (excess.max().item<double>() <= 0) return {};
  const auto worst = excess.flatten().argmax().item<int64_t>();
  return what + ": element " + std::to_string(worst) + " is " +
         std::to_string(a.flatten()[worst].item<double>()) + ", reference " +
         std::to_string(e.flatten()[worst].item<double>());
}

inline bool close(double actual, double expected, double atol, double rtol) {
  return std::fabs(actual - expected) <= atol + rtol * std::fabs(expected);
}

}  // namespace saetest
