#include "train/AdamOptimizer.h"

#include <cmath>
#include <stdexcept>

#include <ATen/Parallel.h>

#include "train/AdamKernel.h"

namespace sae {

namespace {

// Elements per parallel task: large enough that a task streams several pages.
constexpr int64_t kGrain = int64_t(1) << 16;

bool fusable(const torch::Tensor& param, const torch::Tensor& grad, const torch::Tensor& m,
             const torch::Tensor& v) {
  for (const auto* t : {&param, &grad, &m, &v}) {
    if (t->scalar_type() != torch::kFloat32 || !t->device().is_cpu() || !t->is_contiguous())
      return false;
  }
  return grad.sizes() == param.sizes();
}

}  // namespace

AdamOptimizer::AdamOptimizer(std::vector<torch::Tensor> params, double beta1, double beta2,
                             double eps)
    : params_(std::move(params)), beta1_(beta1), beta2_(beta2), eps_(eps) {
  torch::NoGradGuard noGrad;
  for (const auto& p : params_) {
    expAvg_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    expAvgSq_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
  }
}

void AdamOptimizer::step(double lr) {
  torch::NoGradGuard noGrad;
  ++step_;
  const auto step = static_cast<double>(step_);
  // The scalar factors are doubles, as the Python floats are.
  const double biasCorrection1 = 1 - std::pow(beta1_, step);
  const double biasCorrection2 = 1 - std::pow(beta2_, step);
  const double stepSize = lr / biasCorrection1;
  const double biasCorrection2Sqrt = std::sqrt(biasCorrection2);
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& param = params_[i];
    const auto& grad = param.grad();
    if (!grad.defined()) continue;
    if (fusable(param, grad, expAvg_[i], expAvgSq_[i])) {
      const AdamFactors f{static_cast<float>(beta1_),
                          static_cast<float>(1 - beta1_),
                          static_cast<float>(beta2_),
                          static_cast<float>(1 - beta2_),
                          static_cast<float>(biasCorrection2Sqrt),
                          static_cast<float>(eps_),
                          static_cast<float>(-stepSize)};
      float* p = param.data_ptr<float>();
      float* m = expAvg_[i].data_ptr<float>();
      float* v = expAvgSq_[i].data_ptr<float>();
      const float* g = grad.data_ptr<float>();
      at::parallel_for(0, param.numel(), kGrain, [&](int64_t begin, int64_t end) {
        fusedAdamUpdate(p + begin, m + begin, v + begin, g + begin, end - begin, f);
      });
      continue;
    }
    // Other dtypes, devices (CUDA) and layouts: torch 1.13 _single_tensor_adam, line for line.
    expAvg_[i].mul_(beta1_).add_(grad, 1 - beta1_);
    expAvgSq_[i].mul_(beta2_).addcmul_(grad, grad, 1 - beta2_);
    const auto denom = (expAvgSq_[i].sqrt() / biasCorrection2Sqrt).add_(eps_);
    param.addcdiv_(expAvg_[i], denom, -stepSize);
  }
}

void AdamOptimizer::zeroGrad() {
  for (auto& p : params_)
    p.mutable_grad().reset();
}

void AdamOptimizer::setState(std::vector<torch::Tensor> expAvg, std::vector<torch::Tensor> expAvgSq,
                             int64_t step) {
  if (expAvg.size() != params_.size() || expAvgSq.size() != params_.size()) {
    throw std::invalid_argument("AdamOptimizer::setState: expected " +
                                std::to_string(params_.size()) + " moment tensors per kind");
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    if (expAvg[i].sizes() != params_[i].sizes() || expAvgSq[i].sizes() != params_[i].sizes()) {
      throw std::invalid_argument("AdamOptimizer::setState: moment " + std::to_string(i) +
                                  " does not match its parameter's shape");
    }
    expAvg[i] = expAvg[i].to(params_[i].options());
    expAvgSq[i] = expAvgSq[i].to(params_[i].options());
  }
  expAvg_ = std::move(expAvg);
  expAvgSq_ = std::move(expAvgSq);
  step_ = step;
}

}  // namespace sae
