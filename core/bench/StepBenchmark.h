#pragma once
// `sae-train --benchmark`: times one full training step (forward, loss, backward, clipping,
// Adam) at the notebook's shape and at a small one, on a batch whose L0 is calibrated to what a
// trained SAE shows, next to the machine's fp32 matrix-multiply throughput measured in the same
// run. tests/reference/bench_step.py times the same step in PyTorch eager.
#include <cstdint>
#include <string>

namespace sae {

struct StepBenchmarkResult {
  std::string name;
  int64_t d_in = 0, d_sae = 0, batch = 0;
  int repetitions = 0;
  double step_seconds = 0;      // median over repetitions
  double forward_seconds = 0;   // encode, decode and loss terms
  double backward_seconds = 0;  // zero_grad + autograd backward
  double clip_seconds = 0;      // gradient clipping at total norm 1.0
  double adam_seconds = 0;      // Adam update
  double tokens_per_s = 0;
  double l0 = 0;                   // mean active latents per token of the benchmark batch
  double gemm_gflops = 0;          // [batch,d_in] x [d_in,d_sae] fp32 product, same process
  double step_gflops = 0;          // 10 * batch * d_in * d_sae flops (five products) per step
  double dense_gemm_fraction = 0;  // step_gflops / gemm_gflops
};

class StepBenchmark {
 public:
  static StepBenchmarkResult measure(const std::string& name, int64_t dIn, int64_t dSae,
                                     int64_t batch, int repetitions, double targetL0);
  // Prints a table (or one JSON object with --json) and returns the exit code.
  static int runCommandLine(bool json);
  static double peakRssMb();
};

}  // namespace sae
