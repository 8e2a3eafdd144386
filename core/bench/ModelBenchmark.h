#pragma once
// Language-model activations per second: a gelu-1l-sized HookedTransformer with random weights
// (d_model 512, d_mlp 2048, 8 heads of 64, d_vocab 48262, n_ctx 1024) run on batches of token
// rows up to a hook (blocks.0.hook_mlp_out: stop_at_layer 1, as SAELens's store does), under
// no-grad. tests/reference/bench_model.py times the same forward in PyTorch eager with the same
// thread count. Torch-free header, so sae-train's argument parsing can include it.
#include <cstdint>
#include <string>

namespace sae {

struct ModelBenchmarkResult {
  std::string hook;
  int64_t batch = 0, context = 0;
  int threads = 0;
  int repetitions = 0;
  double seconds = 0;            // median forward time for one batch
  double activations_per_s = 0;  // batch * context / seconds (one activation row per token)
  double peak_rss_mb = 0;
};

class ModelBenchmark {
 public:
  static ModelBenchmarkResult measure(const std::string& hook = "blocks.0.hook_mlp_out",
                                      int64_t batch = 16, int64_t context = 1024,
                                      int repetitions = 5);
  // Prints one line (or a JSON object with json=true) and returns the exit code.
  static int runCommandLine(bool json);
};

}  // namespace sae
