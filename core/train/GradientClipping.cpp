#include "train/GradientClipping.h"

namespace sae {

namespace {

// torch.norm(t, 2.0) with no dim: Python passes every dimension explicitly to the same kernel.
torch::Tensor fullNorm(const torch::Tensor& t) {
  std::vector<int64_t> dims(static_cast<size_t>(t.dim()));
  for (int64_t d = 0; d < t.dim(); ++d)
    dims[static_cast<size_t>(d)] = d;
  return at::norm(t, 2.0, dims, false);
}

}  // namespace

double GradientClipping::clipByTotalNorm(const std::vector<torch::Tensor>& params, double maxNorm) {
  torch::NoGradGuard noGrad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return 0.0;
  std::vector<torch::Tensor> norms;
  norms.reserve(grads.size());
  for (const auto& g : grads)
    norms.push_back(fullNorm(g.detach()));
  const auto totalNorm = fullNorm(torch::stack(norms));
  // Python's `max_norm / tensor` is Tensor.__rtruediv__ = reciprocal() * max_norm; the same
  // two float32 operations here keep the coefficient bit-identical.
  const auto clipCoef = (totalNorm + 1e-6).reciprocal() * maxNorm;
  // Always multiplied, also when the coefficient clamps to 1 (as torch does).
  const auto clamped = torch::clamp(clipCoef, c10::nullopt, 1.0);
  for (auto& g : grads)
    g.detach().mul_(clamped);
  return totalNorm.item<double>();
}

}  // namespace sae
