#pragma once
#include <torch/torch.h>

namespace sae {

// Weiszfeld's algorithm as SAELens's compute_geometric_median: start at the mean, weights
// 1 / max(eps, ||x_i - m||), stop after maxiter iterations or when the objective improves by
// less than ftol * objective. Returns [d].
class GeometricMedian {
 public:
  static torch::Tensor compute(const torch::Tensor& points, int maxIter = 100, double eps = 1e-6,
                               double ftol = 1e-20);
};

}  // namespace sae
