#include "bench/StepBenchmark.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "sae/Sae.h"
#include "train/AdamOptimizer.h"
#include "train/GradientClipping.h"

namespace sae {

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

double measureGemmGflops(int64_t m, int64_t k, int64_t n) {
  torch::NoGradGuard noGrad;
  const torch::Tensor a = torch::randn({m, k});
  const torch::Tensor b = torch::randn({k, n});
  torch::Tensor c = torch::mm(a, b);  // warm-up, allocates c
  std::vector<double> times;
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    torch::mm_out(c, a, b);
    times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
  }
  return 2.0 * m * k * n / median(times) / 1e9;
}

}  // namespace

double StepBenchmark::peakRssMb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

StepBenchmarkResult StepBenchmark::measure(const std::string& name, int64_t dIn, int64_t dSae,
                                           int64_t batch, int repetitions, double targetL0) {
  torch::manual_seed(0);
  // The notebook's recipe: heuristic init, W_enc = W_dec^T, decoder-norm-scaled L1.
  SaeOptions options;
  options.d_in = dIn;
  options.d_sae = dSae;
  options.apply_b_dec_to_input = false;
  options.normalize_sae_decoder = false;
  options.decoder_heuristic_init = true;
  options.init_encoder_as_decoder_transpose = true;
  options.scale_sparsity_penalty_by_decoder_norm = true;
  Sae sae(options);
  const torch::Tensor x = torch::randn({batch, dIn});

  // Calibrate a shared negative encoder bias so about targetL0 latents fire per token, as in a
  // trained SAE (a fresh heuristic-init SAE fires half its latents).
  {
    torch::NoGradGuard noGrad;
    const int64_t sampleRows = batch;  // the whole batch: L0 varies a lot from row to row
    const torch::Tensor pre = torch::mm(x.slice(0, 0, sampleRows), sae.W_enc).flatten();
    const int64_t keep = std::max<int64_t>(1, static_cast<int64_t>(targetL0 * sampleRows));
    const double threshold = std::get<0>(torch::topk(pre, keep)).min().item<double>();
    sae.b_enc.fill_(-threshold);
  }

  AdamOptimizer optimizer(sae.trainableParameters(), 0.9, 0.999);
  StepBenchmarkResult result;
  result.name = name;
  result.d_in = dIn;
  result.d_sae = dSae;
  result.batch = batch;
  result.repetitions = repetitions;
  std::vector<double> times, forwardTimes, backwardTimes, clipTimes, adamTimes;
  auto since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  for (int i = 0; i <= repetitions; ++i) {  // the first step is a warm-up
    const auto start = Clock::now();
    SaeForward out = sae.forward(x, 5.0);
    const double forward = since(start);
    auto t = Clock::now();
    optimizer.zeroGrad();
    out.loss.backward();
    const double backward = since(t);
    t = Clock::now();
    GradientClipping::clipByTotalNorm(sae.trainableParameters(), 1.0);
    const double clip = since(t);
    t = Clock::now();
    optimizer.step(5e-5);
    const double adam = since(t);
    const double elapsed = since(start);
    if (i == 0) {
      result.l0 = (out.feature_acts > 0).to(torch::kFloat32).sum(-1).mean().item<double>();
    } else {
      times.push_back(elapsed);
      forwardTimes.push_back(forward);
      backwardTimes.push_back(backward);
      clipTimes.push_back(clip);
      adamTimes.push_back(adam);
    }
  }
  result.forward_seconds = median(forwardTimes);
  result.backward_seconds = median(backwardTimes);
  result.clip_seconds = median(clipTimes);
  result.adam_seconds = median(adamTimes);
  result.step_seconds = median(times);
  result.tokens_per_s = batch / result.step_seconds;
  result.gemm_gflops = measureGemmGflops(batch, dIn, dSae);
  result.step_gflops = 10.0 * batch * dIn * dSae / result.step_seconds / 1e9;
  result.dense_gemm_fraction = result.step_gflops / result.gemm_gflops;
  return result;
}

int StepBenchmark::runCommandLine(bool json) {
  const int threads = std::max(1u, std::thread::hardware_concurrency());
  torch::set_num_threads(threads);
  std::vector<StepBenchmarkResult> results;
  results.push_back(measure("small", 64, 512, 1024, 20, 16));
  results.push_back(measure("notebook", 512, 32768, 4096, 3, 64));
  const double rss = peakRssMb();
  const auto& notebook = results.back();
  if (json) {
    nlohmann::ordered_json out;
    out["threads"] = threads;
    out["dense_tokens_per_s"] = notebook.tokens_per_s;
    out["l0"] = notebook.l0;
    out["gemm_gflops"] = notebook.gemm_gflops;
    out["dense_gemm_fraction"] = notebook.dense_gemm_fraction;
    out["peak_rss_mb"] = rss;
    for (const auto& r : results) {
      out["shapes"][r.name] = {{"d_in", r.d_in},
                               {"d_sae", r.d_sae},
                               {"batch", r.batch},
                               {"repetitions", r.repetitions},
                               {"step_seconds", r.step_seconds},
                               {"forward_seconds", r.forward_seconds},
                               {"backward_seconds", r.backward_seconds},
                               {"clip_seconds", r.clip_seconds},
                               {"adam_seconds", r.adam_seconds},
                               {"tokens_per_s", r.tokens_per_s},
                               {"l0", r.l0},
                               {"gemm_gflops", r.gemm_gflops},
                               {"step_gflops", r.step_gflops},
                               {"dense_gemm_fraction", r.dense_gemm_fraction}};
    }
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("SAE training step benchmark (LibTorch %d.%d.%d, %d threads)\n", TORCH_VERSION_MAJOR,
              TORCH_VERSION_MINOR, TORCH_VERSION_PATCH, threads);
  std::printf("%-9s %6s %7s %6s %10s %12s %8s %11s %11s %9s\n", "shape", "d_in", "d_sae", "batch",
              "step ms", "tokens/s", "L0", "gemm GF/s", "step GF/s", "fraction");
  for (const auto& r : results) {
    std::printf("%-9s %6lld %7lld %6lld %10.2f %12.0f %8.1f %11.1f %11.1f %9.3f\n", r.name.c_str(),
                static_cast<long long>(r.d_in), static_cast<long long>(r.d_sae),
                static_cast<long long>(r.batch), r.step_seconds * 1e3, r.tokens_per_s, r.l0,
                r.gemm_gflops, r.step_gflops, r.dense_gemm_fraction);
  }
  std::printf("\nstep split (ms): forward (encode, decode, loss) / backward / clip / Adam\n");
  for (const auto& r : results) {
    std::printf("%-9s %10.2f %10.2f %10.2f %10.2f\n", r.name.c_str(), r.forward_seconds * 1e3,
                r.backward_seconds * 1e3, r.clip_seconds * 1e3, r.adam_seconds * 1e3);
  }
  std::printf("peak RSS: %.0f MB\n", rss);
  return 0;
}

}  // namespace sae
