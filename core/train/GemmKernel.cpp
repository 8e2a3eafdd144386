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
};

using Key = std::tuple<bool, bool, int64_t, int64_t, int64_t, bool>;

Key keyOf(const GemmKernel::Shape& s) {
  return std::make_tuple(s.transA, s.transB, s.m, s.k, s.n, s.accumulate);
}

std::mutex& cacheMutex() {
  static std::mutex mutex;
  return mutex;
}

std::map<Key, Measured>& cache() {
  static std::map<Key, Measured> measured;
  return measured;
}

const Measured& measure(const GemmKernel::Shape& shape) {
  std::lock_guard<std::mutex> lock(cacheMutex());
  const Key key = keyOf(shape);
  auto it = cache().find(key);
  if (it != cache().end()) return it->second;
  torch::NoGradGuard noGrad;
  const int64_t m = shape.m, k = shape.k, n = shape.n;
  // A private generator: drawing from torch's default one would shift every later draw of the
  // run (the activation store's shuffles), so a run's batches would depend on the kernel choice.
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(20261130);
  const torch::Tensor a = at::randn({m, k}, generator, torch::kFloat32);
  const torch::Tensor b = at::randn({k, n}, generator, torch::kFloat32) / std::sqrt(double(k));
  torch::Tensor c = torch::zeros({m, n});
  Measured result;
  // Small products are timed more often so that the choice is not noise.
  const double flops = 2.0 * m * k * n;
  const int repeats = flops > 1e10 ? 3 : flops > 1e8 ? 5 : 20;
  for (const auto kind : {GemmKernel::Kind::Torch, GemmKernel::Kind::OneDnn}) {
    // (a and b hold m*k and k*n floats whatever the transposition: only the layout differs.)
    GemmKernel::multiply(kind, shape, a.data_ptr<float>(), b.data_ptr<float>(),
                         c.data_ptr<float>());  // warm-up (oneDNN builds its kernel, pages)
    double best = 1e30;
    for (int r = 0; r < repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      GemmKernel::multiply(kind, shape, a.data_ptr<float>(), b.data_ptr<float>(),
                           c.data_ptr<float>());
      best = std::min(
          best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    result.candidates.push_back({kind, flops / best / 1e9});
  }
  return cache().emplace(key, std::move(result)).first->second;
}

// 2^24 multiply-adds: about 0.1 ms at this machine's rate.
constexpr int64_t kMinMeasuredMacs = int64_t(1) << 24;
constexpr double kClearMargin = 1.15;

GemmKernel::Shape plain(int64_t m, int64_t k, int64_t n) {
  GemmKernel::Shape shape;
  shape.m = m;
  shape.k = k;
  shape.n = n;
  return shape;
}

}  // namespace

void GemmKernel::multiply(Kind kind, const float* a, const float* b, float* c, int64_t m, int64_t k,
                          int64_t n) {
  multiply(kind, plain(m, k, n), a, b, c);
}

void GemmKernel::multiply(Kind kind, const Shape& shape, const float* a, const float* b, float* c) {
  const int64_t m = shape.m, k = shape.k, n = shape.n;
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (!shape.accumulate) std::fill(c, c + m * n, 0.0f);
    return;
  }
  if (kind == Kind::OneDnn) {
    // dnnl_sgemm is row-major; the leading dimensions are those of the stored matrices.
    const dnnl_status_t status = dnnl_sgemm(
        shape.transA ? 'T' : 'N', shape.transB ? 'T' : 'N', m, n, k, 1.0f, a, shape.transA ? m : k,
        b, shape.transB ? k : n, shape.accumulate ? 1.0f : 0.0f, c, n);
    if (status != dnnl_success) {
      throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(status) +
                               " for the product " + shape.text());
    }
    return;
  }
  const auto options = torch::TensorOptions().dtype(torch::kFloat32);
  // from_blob wraps the caller's memory; a transposed operand is a strided view, which the BLAS
  // call takes as a transposition flag (no copy). The products write straight into c.
  torch::Tensor ta = shape.transA ? torch::from_blob(const_cast<float*>(a), {k, m}, options).t()
                                  : torch::from_blob(const_cast<float*>(a), {m, k}, options);
  torch::Tensor tb = shape.transB ? torch::from_blob(const_cast<float*>(b), {n, k}, options).t()
                                  : torch::from_blob(const_cast<float*>(b), {k, n}, options);
  torch::Tensor tc = torch::from_blob(c, {m, n}, options);
  if (shape.accumulate) {
    at::addmm_out(tc, tc, ta, tb);
  } else {
    at::mm_out(tc, ta, tb);
  }
}

GemmKernel::Kind GemmKernel::choose(int64_t m, int64_t k, int64_t n) {
  return choose(plain(m, k, n));
}

GemmKernel::Kind GemmKernel::choose(const Shape& shape) {
  // The two kernels round differently, so the choice must not flip between two processes on
  // the same machine (a killed run resumes in a new process and must end bit-identical). Small
  // products take LibTorch's BLAS without timing (their timings are noise, and the step's cost is
  // elsewhere); larger ones take oneDNN only when it wins by a clear margin.
  if (shape.m * shape.k * shape.n < kMinMeasuredMacs) return Kind::Torch;
  const Measured& measured = measure(shape);
  double torchGflops = 0, oneDnnGflops = 0;
  for (const auto& candidate : measured.candidates)
    (candidate.kind == Kind::OneDnn ? oneDnnGflops : torchGflops) = candidate.gflops;
  return oneDnnGflops > kClearMargin * torchGflops ? Kind::OneDnn : Kind::Torch;
}

std::vector<GemmKernel::Candidate> GemmKernel::candidates(int64_t m, int64_t k, int64_t n) {
  return candidates(plain(m, k, n));
}

std::vector<GemmKernel::Candidate> GemmKernel::candidates(const Shape& shape) {
  return measure(shape).candidates;
}

std::string GemmKernel::Shape::text() const {
  const std::string lhs = std::to_string(m) + "x" + std::to_string(k) + (transA ? " (A^T)" : "");
  const std::string rhs = std::to_string(k) + "x" + std::to_string(n) + (transB ? " (B^T)" : "");
  return (accumulate ? "C += " : "C = ") + lhs + " by " + rhs;
}

std::string GemmKernel::name(Kind kind) {
  return kind == Kind::OneDnn ? "onednn-sgemm" : "torch-mm";
}

}  // namespace sae
