#pragma once
// The fp32 matrix products of the training step, C = op(A) * op(B) (+ C), row-major and
// contiguous: LibTorch's BLAS (at::mm_out / at::addmm_out on strided views) or oneDNN's
// dnnl_sgemm. Which one is faster depends on the BLAS Debian's LibTorch picked, on the CPU and
// on the shape (the transposed and accumulating products of the backward pass run at different
// speeds), so the choice is made by timing both on each shape in use, once per process, never by
// environment variables.
#include <cstdint>
#include <string>
#include <vector>

namespace sae {

class GemmKernel {
 public:
  enum class Kind { Torch, OneDnn };

  struct Candidate {
    Kind kind;
    double gflops;  // best of a few timed products of the measured shape
  };

  // One product's layout: op(A) is [m, k], op(B) is [k, n], C is [m, n]. A is stored [m, k]
  // (or [k, m] when transA), B [k, n] (or [n, k] when transB), all contiguous row-major.
  // accumulate: C += op(A) op(B) instead of C = op(A) op(B).
  struct Shape {
    bool transA = false, transB = false;
    int64_t m = 0, k = 0, n = 0;
    bool accumulate = false;
    std::string text() const;  // e.g. "1024x512 by 512x32768" with "^T" and "+=" marks
  };

  // c[m,n] = a[m,k] * b[k,n]; all row-major with leading dimensions k, n, n.
  static void multiply(Kind kind, const float* a, const float* b, float* c, int64_t m, int64_t k,
                       int64_t n);
  // c = op(a) op(b) (+ c when shape.accumulate).
  static void multiply(Kind kind, const Shape& shape, const float* a, const float* b, float* c);
  // The kernel for this shape: LibTorch's BLAS for products under 2^24 multiply-adds; else
  // both are timed on first use (cached for the process) and oneDNN is taken when it is more
  // than 15% faster, so that the choice, and with it the rounding, is stable across processes.
  static Kind choose(int64_t m, int64_t k, int64_t n);
  static Kind choose(const Shape& shape);
  // The timings behind choose() for this shape (measured now if not yet).
  static std::vector<Candidate> candidates(int64_t m, int64_t k, int64_t n);
  static std::vector<Candidate> candidates(const Shape& shape);
  static std::string name(Kind kind);
};

}  // namespace sae
