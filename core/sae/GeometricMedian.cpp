#include "sae/GeometricMedian.h"

namespace sae {

namespace {

torch::Tensor weightedAverage(const torch::Tensor& points, const torch::Tensor& weights) {
  const auto normalized = weights / weights.sum();
  return (points * normalized.view({-1, 1})).sum(0);
}

// Distance of every point to `median` (torch.linalg.norm(points - median, dim=1)).
torch::Tensor distances(const torch::Tensor& points, const torch::Tensor& median) {
  return at::linalg_norm(points - median.view({1, -1}), c10::optional<at::Scalar>(),
                         at::IntArrayRef{1}, false, c10::nullopt);
}

}  // namespace

torch::Tensor GeometricMedian::compute(const torch::Tensor& points, int maxIter, double eps,
                                       double ftol) {
  torch::NoGradGuard noGrad;
  // SAELens makes its unit weights with torch.ones(n): float32 whatever the points' dtype,
  // which decides the precision of the starting mean for float64 points. Kept for parity.
  const auto weights = torch::ones({points.size(0)}, points.options().dtype(torch::kFloat32));
  auto newWeights = weights;
  auto median = weightedAverage(points, weights);
  auto objective = (distances(points, median) * weights).sum();
  for (int i = 0; i < maxIter; ++i) {
    const auto previous = objective;
    newWeights = weights / torch::clamp(distances(points, median), eps);
    median = weightedAverage(points, newWeights);
    objective = (distances(points, median) * weights).sum();
    if ((previous - objective).abs().le(ftol * objective).item<bool>()) break;
  }
  return weightedAverage(points, newWeights);
}

}  // namespace sae
