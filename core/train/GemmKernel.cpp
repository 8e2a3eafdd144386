#include "train/GemmKernel.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <mutex>
#include <stdexcept>
#include <tuple>

#include <ATen/CPUGeneratorImpl.h>
#include <oneapi/dnnl/dnnl.h>
#include <torch/torch.h>

namespace sae {

namespace {

struct Measured {
  std::vector<GemmKernel::Candidate> candidates;
  GemmKernel::Kind best = GemmKernel::Kind::Torch;
};

std::mutex& cacheMutex() {
  static std::mutex mutex;
  return mutex;
}

std::map<std::tuple<int64_t, int64_t, int64_t>, Measured>& cache() {
  static std::map<std::tuple<int64_t, int64_t, int64_t>, Measured> measured;
  return measured;
}

const Measured& measure(int64_t m, int64_t k, int64_t n) {
  std::lock_guard<std::mutex> lock(cacheMutex());
  const auto key = std::make_tuple(m, k, n);
  auto it = cache().find(key);
  if (it != cache().end()) return it->second;
  torch::NoGradGuard noGrad;
  // A private generator: drawing from torch's default one would shift every later draw of the
  // run (the activation store's shuffles), so a run's batches would depend on the kernel choice.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(20261130);
  const torch::Tensor a = at::randn({m, k}, generator, torch::kFloat32);
  const torch::Tensor b = at::randn({k, n}, generator, torch::kFloat32) / std::sqrt(double(k));
  torch::Tensor c = torch::empty({m, n});
  Measured result;
  double bestSeconds = 0;
  // Small products are timed more often so that the choice is not noise.
  const double flops = 2.0 * m * k * n;
  const int repeats = flops > 1e10 ? 3 : flops > 1e8 ? 5 : 20;
  for (const auto kind : {GemmKernel::Kind::Torch, GemmKernel::Kind::OneDnn}) {
    GemmKernel::multiply(kind, a.data_ptr<float>(), b.data_ptr<float>(), c.data_ptr<float>(), m, k,
                         n);  // warm-up (oneDNN builds its kernel, pages are touched)
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      GemmKernel::multiply(kind, a.data_ptr<float>(), b.data_ptr<float>(), c.data_ptr<float>(), m,
                           k, n);
      best = std::min(
          best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    result.candidates.push_back({kind, flops / best / 1e9});
    if (result.candidates.size() == 1 || best < bestSeconds) {
      bestSeconds = best;
      result.best = kind;
    }
  }
  return cache().emplace(key, std::move(result)).first->second;
}

// 2^24 multiply-adds: about 0.1 ms at this machine's rate.
constexpr int64_t kMinMeasuredMacs = int64_t(1) << 24;
constexpr double kClearMargin = 1.15;

}  // namespace

void GemmKernel::multiply(Kind kind, const float* a, const float* b, float* c, int64_t m, int64_t k,
                          int64_t n) {
  if (m == 0 || n == 0) return;
  if (kind == Kind::OneDnn) {
    const dnnl_status_t status = dnnl_sgemm('N', 'N', m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    if (status != dnnl_success) {
      throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(status) +
                               " for a " + std::to_string(m) + "x" + std::to_string(k) + " by " +
                               std::to_string(k) + "x" + std::to_string(n) + " product");
    }
    return;
  }
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  // from_blob wraps the caller's memory: mm_out writes straight into c.
  const torch::Tensor ta = torch::from_blob(const_cast<float*>(a), {m, k}, options);
  const torch::Tensor tb = torch::from_blob(const_cast<float*>(b), {k, n}, options);
  torch::Tensor tc = torch::from_blob(c, {m, n}, options);
  at::mm_out(tc, ta, tb);
}

GemmKernel::Kind GemmKernel::choose(int64_t m, int64_t k, int64_t n) {
  // The two kernels round differently, so the choice must not flip between two processes on
  // the same machine (a killed run resumes in a new process and must end bit-identical). Small
  // products take LibTorch's BLAS without timing (their timings are noise, and the step's cost is
  // elsewhere); larger ones take oneDNN only when it wins by a clear margin.
  if (m * k * n < kMinMeasuredMacs) return Kind::Torch;
  const Measured& measured = measure(m, k, n);
  double torchGflops = 0, oneDnnGflops = 0;
  for (const auto& candidate : measured.candidates)
    (candidate.kind == Kind::OneDnn ? oneDnnGflops : torchGflops) = candidate.gflops;
  return oneDnnGflops > kClearMargin * torchGflops ? Kind::OneDnn : Kind::Torch;
}

std::vector<GemmKernel::Candidate> GemmKernel::candidates(int64_t m, int64_t k, int64_t n) {
  return measure(m, k, n).candidates;
}

std::string GemmKernel::name(Kind kind) {
  return kind == Kind::OneDnn ? "onednn-sgemm" : "torch-mm";
}

}  // namespace sae
