#pragma once
// torch.optim.Adam (PyTorch 1.13, single-tensor path, no weight decay, no amsgrad) written out
// so the trainer owns its state (checkpoints). For contiguous float32 CPU tensors the update is
// one fused pass per parameter (train/AdamKernel) that allocates nothing; otherwise (CUDA, other
// dtypes) it runs torch's own five element-wise operations.
#include <vector>

#include <torch/torch.h>

namespace sae {

class AdamOptimizer {
 public:
  AdamOptimizer(std::vector<torch::Tensor> params, double beta1, double beta2, double eps = 1e-8);
  // One update with learning rate lr using each parameter's .grad() (skipped when undefined).
  void step(double lr);
  void zeroGrad();  // sets grads to None (set_to_none=True, as torch >= 2 and our reference)
  int64_t stepCount() const { return step_; }
  const std::vector<torch::Tensor>& expAvg() const { return expAvg_; }
  const std::vector<torch::Tensor>& expAvgSq() const { return expAvgSq_; }
  // Restore moments and step count (checkpoint resume).
  void setState(std::vector<torch::Tensor> expAvg, std::vector<torch::Tensor> expAvgSq,
                int64_t step);

 private:
  std::vector<torch::Tensor> params_, expAvg_, expAvgSq_;
  double beta1_, beta2_, eps_;
  int64_t step_ = 0;
};

}  // namespace sae
