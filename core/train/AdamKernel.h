#pragma once
// The element-wise core of the fused Adam update, in a torch-free file of its own: it is compiled
// with -fno-math-errno (core/CMakeLists.txt), without which GCC will not vectorise sqrtf.
#include <cstdint>

namespace sae {

struct AdamFactors {
  float beta1, oneMinusBeta1, beta2, oneMinusBeta2, biasCorrection2Sqrt, eps, negStepSize;
};

// torch 1.13 _single_tensor_adam's five passes fused into one over n elements: each element's
// moments and parameter are read and written once, and nothing is allocated. The operations
// and their order per element are torch's (m*b1 + (1-b1)*g; v*b2 + (1-b2)*g*g;
// sqrt(v)/sqrt(bc2) + eps; p + (-lr/bc1) * (m/denom)), with the scalar factors rounded to float
// as torch rounds them; only whether the compiler contracts a multiply-add may differ, which the
// parity tests against torch's Adam bound.
void fusedAdamUpdate(float* param, float* expAvg, float* expAvgSq, const float* grad, int64_t n,
                     const AdamFactors& factors);

}  // namespace sae
