#pragma once
// `sae-train --benchmark`: times one full training step (forward, loss, backward, clipping,
// Adam) at the notebook's shape and at a small one, on a batch whose L0 is calibrated to what a
// trained SAE shows, next to the machine's fp32 matrix-multiply throughput measured in the same
// run: the dense step (Sae::forward + autograd), the sparse-aware step and the chunked dense step
// (SparseTrainingStep's two paths).
// tests/reference/bench_step.py times the same dense step in PyTorch eager.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sae {

struct StepBenchmarkResult {
  std::string name;
  int64_t d_in = 0, d_sae = 0, batch = 0;
  int repetitions = 0;
  // Dense step (medians over repetitions).
  double step_seconds = 0;
  double forward_seconds = 0;   // encode, decode and loss terms
  double backward_seconds = 0;  // zero_grad + autograd backward
  double clip_seconds = 0;      // gradient clipping at total norm 1.0
  double adam_seconds = 0;      // Adam update
  double tokens_per_s = 0;
  double l0 = 0;                   // mean active latents per token of the benchmark batch
  double gemm_gflops = 0;          // [batch,d_in] x [d_in,d_sae] fp32 product (torch), same process
  double step_gflops = 0;          // 10 * batch * d_in * d_sae flops (five products) per step
  double dense_gemm_fraction = 0;  // step_gflops / gemm_gflops
  // Sparse-aware step (medians over repetitions).
  double sparse_step_seconds = 0;
  double sparse_encode_seconds = 0;       // encoder product in row chunks, bias, ReLU -> CSR
  double sparse_encode_gemm_seconds = 0;  // of which the matrix products
  double sparse_decode_loss_seconds = 0;  // decoder, MSE, L1, dL/dpre at the active entries
  double sparse_backward_seconds = 0;     // gradients of the four parameters
  double sparse_clip_seconds = 0;
  double sparse_adam_seconds = 0;
  double sparse_tokens_per_s = 0;
  double sparse_l0 = 0;
  std::string encoder_kernel;  // chosen by timing the candidates on the chunk shape
  int64_t chunk_rows = 0;
  std::vector<std::pair<std::string, double>> kernel_gflops;  // every candidate, chunk shape
  double sparse_peak_rss_mb = 0;  // process peak after the sparse runs (before any dense one)
  // The sparse step with `autocast` (bf16 encoder product, Bf16Gemm); 0 when the CPU has none.
  double bf16_step_seconds = 0;
  double bf16_encode_gemm_seconds = 0;
  double bf16_tokens_per_s = 0;
  double bf16_l0 = 0;
  // Chunked dense step (medians over repetitions; the split from its timings, since its
  // forward call also computes the gradients).
  double chunked_step_seconds = 0;
  double chunked_encode_seconds = 0;       // encoder products, bias, ReLU, counts
  double chunked_encode_gemm_seconds = 0;  // of which the matrix products
  double chunked_decode_loss_seconds = 0;  // decoder products, b_dec, residual, MSE
  double chunked_decode_gemm_seconds = 0;
  double chunked_backward_seconds = 0;  // three products per chunk, mask pass, final terms
  double chunked_backward_gemm_seconds = 0;
  double chunked_clip_seconds = 0;
  double chunked_adam_seconds = 0;
  double chunked_tokens_per_s = 0;
  double chunked_l0 = 0;
  int64_t chunked_rows = 0;
  struct Product {
    std::string shape, kernel;                           // the product and the kernel chosen
    std::vector<std::pair<std::string, double>> gflops;  // every candidate's GF/s
  };
  std::vector<Product> chunked_products;
  double chunked_step_gflops = 0;       // 10 * batch * d_in * d_sae flops per whole step
  double chunked_gemm_fraction = 0;     // chunked_step_gflops / reference_gemm_gflops
  double chunked_fb_gemm_fraction = 0;  // the same for forward + backward only (no clip, Adam)
  // Of the chunked forward + backward time, the share spent inside the five products (the rest:
  // the element-wise passes, the residual, the final gradient terms); independent of the
  // reference product's timing.
  double chunked_gemm_time_share = 0;
  // Each chunked step (forward + backward) over the fastest of its five products (kernel choice
  // timings) timed again right after that step; median over the repetitions. Less exposed to
  // other processes than the fraction against a product timed minutes apart.
  double chunked_gemm_fraction_paired = 0;
  std::string paired_gemm;  // that product and kernel
  double paired_gemm_gflops = 0;
  double chunked_peak_rss_mb = 0;  // process peak after the chunked runs
  // The best single fp32 product rate measured in this run for this shape: the full-batch
  // encoder product (torch and oneDNN), the sparse step's encoder chunk and the chunked step's
  // five products, each with both kernels.
  double gemm_onednn_gflops = 0;  // [batch,d_in] x [d_in,d_sae], oneDNN
  double reference_gemm_gflops = 0;
  std::string reference_gemm;  // which product and kernel it was
  double peak_rss_mb = 0;      // process peak after this shape's dense run
};

// Sparse vs chunked vs autograd dense step time at one density (the auto switch point's
// evidence).
struct SwitchPoint {
  double density = 0;
  double sparse_seconds = 0, chunked_seconds = 0, dense_seconds = 0;
};

class StepBenchmark {
 public:
  static StepBenchmarkResult measure(const std::string& name, int64_t dIn, int64_t dSae,
                                     int64_t batch, int repetitions, double targetL0);
  // Sparse, chunked and dense step times at these densities (d_in 512, d_sae 4096, batch 1024).
  static std::vector<SwitchPoint> measureSwitch(const std::vector<double>& densities);
  // Prints a table (or one JSON object with --json) and returns the exit code.
  static int runCommandLine(bool json);
  static double peakRssMb();
};

}  // namespace sae
