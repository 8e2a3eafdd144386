#pragma once
#include <vector>

#include <torch/torch.h>

namespace sae {

class GradientClipping {
 public:
  // torch.nn.utils.clip_grad_norm_(params, maxNorm), 2-norm, PyTorch 1.13: the total norm is
  // the norm of the per-parameter norms; every gradient is multiplied by
  // clamp(maxNorm / (total + 1e-6), max=1). Parameters without a gradient are skipped.
  // Returns the total norm before clipping.
  static double clipByTotalNorm(const std::vector<torch::Tensor>& params, double maxNorm);
};

}  // namespace sae
