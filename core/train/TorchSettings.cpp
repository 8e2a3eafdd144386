#include "train/TorchSettings.h"

#include <algorithm>

#include <torch/torch.h>

namespace sae {

void TorchSettings::setThreads(int threads) {
  torch::set_num_threads(std::max(1, threads));
}

void TorchSettings::seed(uint64_t seed) {
  torch::manual_seed(seed);
}

}  // namespace sae
