#include "train/AdamKernel.h"

namespace sae {

namespace {

// Compiled for AVX-512, AVX2 and the baseline and picked at load time, like the sparse step's
// loops (the build targets plain x86-64 so that the package runs anywhere).
__attribute__((target_clones("avx512f", "avx2", "default"))) void update(
    float* __restrict param, float* __restrict expAvg, float* __restrict expAvgSq,
    const float* __restrict grad, int64_t n, AdamFactors f) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float m = expAvg[i] * f.beta1 + f.oneMinusBeta1 * g;
    const float v = expAvgSq[i] * f.beta2 + f.oneMinusBeta2 * g * g;
    expAvg[i] = m;
    expAvgSq[i] = v;
    const float denom = __builtin_sqrtf(v) / f.biasCorrection2Sqrt + f.eps;
    param[i] += f.negStepSize * (m / denom);
  }
}

}  // namespace

void fusedAdamUpdate(float* param, float* expAvg, float* expAvgSq, const float* grad, int64_t n,
                     const AdamFactors& factors) {
  update(param, expAvg, expAvgSq, grad, n, factors);
}

}  // namespace sae
