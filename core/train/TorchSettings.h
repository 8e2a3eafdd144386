#pragma once
// Process-wide LibTorch settings, behind a torch-free header so app/ and ui/ code never
// includes <torch/torch.h>.
#include <cstdint>

namespace sae {

class TorchSettings {
 public:
  // Intra-op threads (LibTorch 1.13 uses one by default on a 2-core machine).
  static void setThreads(int threads);
  // Seeds torch's default generator (SAE init, buffer shuffles).
  static void seed(uint64_t seed);
};

}  // namespace sae
