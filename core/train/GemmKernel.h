#pragma once
// The fp32 matrix product of the sparse training step's encoder, C = A * B (row-major,
// contiguous): LibTorch's BLAS (at::mm_out) or oneDNN's dnnl_sgemm. Which one is faster depends
// on the BLAS Debian's LibTorch picked and on the CPU, so the choice is made by timing both on
// the shape in use, once per process, never by environment variables.
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

  // c[m,n] = a[m,k] * b[k,n]; all row-major with leading dimensions k, n, n.
  static void multiply(Kind kind, const float* a, const float* b, float* c, int64_t m, int64_t k,
                       int64_t n);
  // The kernel for this shape: LibTorch's BLAS for products under 2^24 multiply-adds; else
  // both are timed on first use (cached for the process) and oneDNN is taken when it is more
  // than 15% faster, so that the choice, and with it the rounding, is stable across processes.
  static Kind choose(int64_t m, int64_t k, int64_t n);
  // The timings behind choose() for this shape (measured now if not yet).
  static std::vector<Candidate> candidates(int64_t m, int64_t k, int64_t n);
  static std::string name(Kind kind);
};

}  // namespace sae
