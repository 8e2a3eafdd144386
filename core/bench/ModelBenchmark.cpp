#include "bench/ModelBenchmark.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "bench/StepBenchmark.h"
#include "model/HookedTransformer.h"

namespace sae {

ModelBenchmarkResult ModelBenchmark::measure(const std::string& hook, int64_t batch,
                                             int64_t context, int repetitions) {
  TransformerConfig config;  // the defaults are gelu-1l's shape
  HookedTransformer model(config, /*seed=*/0);
  torch::NoGradGuard noGrad;
  auto gen = at::detail::createCPUGenerator(0);
  const auto tokens = torch::randint(config.d_vocab, {batch, context}, gen, torch::kInt64);
  HookedRunOptions options;
  options.stopAtLayer = model.stopAtLayerFor(hook);
  options.cacheNames = {hook};
  model.run(tokens, options);  // warm-up: allocator and thread pool
  std::vector<double> times;
  for (int r = 0; r < repetitions; ++r) {
    const auto start = std::chrono::steady_clock::now();
    const auto result = model.run(tokens, options);
    if (!result.cache.at(hook).defined()) throw std::runtime_error("benchmark hook not captured");
    times.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  ModelBenchmarkResult out;
  out.hook = hook;
  out.batch = batch;
  out.context = context;
  out.threads = torch::get_num_threads();
  out.repetitions = repetitions;
  out.seconds = times[times.size() / 2];
  out.activations_per_s = static_cast<double>(batch * context) / out.seconds;
  out.peak_rss_mb = StepBenchmark::peakRssMb();
  return out;
}

int ModelBenchmark::runCommandLine(bool json) {
  const int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(threads);
  const auto r = measure();
  if (json) {
    nlohmann::ordered_json out;
    out["hook"] = r.hook;
    out["batch"] = r.batch;
    out["context"] = r.context;
    out["threads"] = r.threads;
    out["repetitions"] = r.repetitions;
    out["seconds_per_batch"] = r.seconds;
    out["activations_per_s"] = r.activations_per_s;
    out["peak_rss_mb"] = r.peak_rss_mb;
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf(
      "gelu-1l-sized model up to %s (random weights, batch %lld x %lld tokens, %d threads)\n",
      r.hook.c_str(), static_cast<long long>(r.batch), static_cast<long long>(r.context),
      r.threads);
  std::printf("%.3f s per batch, %.0f activations/s, peak RSS %.0f MB\n", r.seconds,
              r.activations_per_s, r.peak_rss_mb);
  return 0;
}

}  // namespace sae
