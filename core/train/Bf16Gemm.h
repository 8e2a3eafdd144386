#pragma once
// The encoder product under SAELens's `autocast` (torch.autocast(bfloat16) on CPU): C = bf16(A) *
// bf16(B), both inputs rounded to bfloat16 (round-to-nearest-even, as torch's .bfloat16()), the
// products accumulated in fp32 and written as fp32. Computed by oneDNN's matmul primitive with bf16
// source and weights (brgemm with vdpbf16ps on CPUs with avx512_bf16).
//
// B (the encoder weights, k x n) changes every optimiser step but is shared by all row chunks of
// a step, so it is converted once per step by prepareB() straight into the blocked layout the
// primitive reads (oneDNN's BA16a64b2a: pairs of k interleaved for vdpbf16ps), and each chunk of
// rows then costs one multiply(). Primitives are created once per (m, k, n) and kept; the bf16
// buffers are allocated once and only grow.
//
// Not thread-safe: one object per thread of callers (oneDNN and at::parallel_for already use all
// cores inside each call). Header free of LibTorch and oneDNN so that it is cheap to include.
#include <cstdint>
#include <memory>
#include <string>

namespace sae {

class Bf16Gemm {
 public:
  Bf16Gemm();
  ~Bf16Gemm();
  Bf16Gemm(const Bf16Gemm&) = delete;
  Bf16Gemm& operator=(const Bf16Gemm&) = delete;

  // Whether this CPU and oneDNN run a bf16 matmul with an optimised kernel: a probe primitive
  // is created once per process (not a timing). False when creation fails or only oneDNN's
  // reference kernel (orders of magnitude slower) accepts it, e.g. on CPUs without avx512_bf16
  // or AMX. Callers refuse `autocast` then, with unavailableReason() in the message.
  static bool available();
  // Why available() is false (the oneDNN status or the implementation oneDNN offered); empty
  // when it is true.
  static std::string unavailableReason();

  // dst[i] = bf16 bits of src[i], rounded to nearest, ties to even, exactly as torch's
  // float -> bfloat16 conversion: subnormals are kept (not flushed), overflow rounds to +-inf and
  // NaN stays a (quiet) NaN. Vectorised (AVX-512F when the CPU has it) and run in parallel with
  // at::parallel_for.
  static void toBf16(const float* src, uint16_t* dst, int64_t count);
  // The fp32 value of a bf16 bit pattern (exact).
  static float bf16ToFloat(uint16_t bits);

  // Rounds b[k, n] (row-major fp32, leading dimension n) to bf16 and keeps it, packed, for the
  // following multiply(a, c, m) calls. Call again whenever b changes (every optimiser step):
  // the object keeps a converted copy, not a reference to b. Throws std::runtime_error for
  // k or n < 1 or when oneDNN cannot create the primitive.
  void prepareB(const float* b, int64_t k, int64_t n);
  // c[m, n] = bf16(a)[m, k] * prepared B, fp32 accumulation; a is row-major with leading
  // dimension k, c with leading dimension n (both as passed to prepareB). m may differ between
  // calls (a smaller last chunk); m == 0 does nothing. Throws std::runtime_error when no B is
  // prepared or oneDNN fails.
  void multiply(const float* a, float* c, int64_t m);
  // prepareB(b, k, n) then multiply(a, c, m): for a product whose B is used once.
  void multiply(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n);

  int64_t preparedK() const;  // 0 before the first prepareB
  int64_t preparedN() const;
  // oneDNN's name for the kernel of the last primitive created (e.g. "brg:avx512_core_bf16").
  std::string implementation() const;

  // Throwaway figure for benchmarks: GF/s (2 m k n flops per product) of the best of `repeats`
  // timed runs on random inputs. With includePrepareB each run is prepareB + multiply (one
  // chunk per step); without it, multiply alone (B prepared once, many chunks per step).
  static double benchmarkGflops(int64_t m, int64_t k, int64_t n, bool includePrepareB = true,
                                int repeats = 5);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sae
