#pragma once
// The notebook's "look at the data before training" cells as histogram samples: the decoder-row
// norms of a freshly initialised SAE, the activation norms of one get_buffer(32), and the mean
// norm of ten get_buffer(64) calls. Torch-free header (the GUI calls it); torch in the .cpp.
#include <cstdint>
#include <string>
#include <vector>

#include "config/RunConfig.h"
#include "train/TrainingEvents.h"

namespace sae {

struct DataInspectionOptions {
  int64_t normBufferBatches = 32;  // activation_store.get_buffer(32)
  int64_t meanBufferBatches = 64;  // activation_store.get_buffer(64) ...
  int64_t meanBufferCount = 10;    // ... ten times
};

class DataInspection {
 public:
  // Histogram samples at step 0, in this order:
  //  - "weights/W_dec_norms_init": norms of W_dec rows of Trainer::makeSae(config) after
  //    seeding torch with config.seed, i.e. the SAE a run of this config starts from;
  //  - "activations/buffer_norms": row norms of one getBuffer(normBufferBatches), markers
  //    "sqrt(d_in)", "mean" and (when normalize_activations) "estimated_norm_scaling_factor";
  //  - "activations/buffer_norm_means": the mean row norm of each of meanBufferCount
  //    getBuffer(meanBufferBatches) calls, titled by bufferNormMeansTitle().
  // It uses its own activation source and store (built from the config as a run builds them),
  // and restores torch's default generator afterwards, so a run started later draws exactly
  // what it would have drawn without the inspection. Do not call it while a run trains in
  // another thread (they share that generator). The config must be valid: throws ConfigError
  // listing the problems otherwise, and passes on the source's errors (missing cache, ...).
  static std::vector<HistogramEvent> inspect(const RunConfig& config);
  static std::vector<HistogramEvent> inspect(const RunConfig& config,
                                             const DataInspectionOptions& options);

  // "Buffer Norm Mean over N batches, mean: M std: S": the notebook's title, mean and
  // population std (numpy's default) printed with 6 significant digits.
  static std::string bufferNormMeansTitle(const std::vector<double>& means);
};

}  // namespace sae
