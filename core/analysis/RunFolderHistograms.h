#pragma once
// The histograms a saved run folder can still show without its training process: decoder row
// norms ("weights/W_dec_norms") and log10 feature density ("plots/feature_density_line_chart"),
// read from final/ or else the latest checkpoint, under the names the live trainer emits so the
// dashboard draws them in the same views. Torch-free header (the GUI includes it).
#include <cstdint>
#include <string>
#include <vector>

#include "train/TrainingEvents.h"

namespace sae {

struct RunFolderHistogramsResult {
  std::string saeFolder;  // the folder read: <run>/final or <run>/checkpoints/<tokens>
  std::vector<HistogramEvent> histograms;
  // What could not be shown and why (e.g. no sparsity.safetensors); the rest is still returned.
  std::vector<std::string> problems;
};

class RunFolderHistograms {
 public:
  // <runDir>/final when it holds sae_weights.safetensors, else the checkpoint with the most
  // tokens that holds one; "" when there is none.
  static std::string saeFolderOf(const std::string& runDir);
  // The histograms of saeFolderOf(runDir). The step is run.json's step for final/ and
  // checkpoint tokens // train_batch_size (config.json) for a checkpoint, 0 when unknown.
  // Throws std::runtime_error naming the run folder when it has no SAE folder, or the file and
  // key when W_dec cannot be read; a missing or bad sparsity file is only a problem.
  static RunFolderHistogramsResult read(const std::string& runDir);
  // One SAE folder (sae_weights.safetensors [+ sparsity.safetensors, cfg.json]). Decoder norms
  // are those of the decoder the run trained: a folder whose cfg.json records
  // activation_norm_scaling_factor_folded = s has W_dec / s on disk, so its norms are scaled by s
  // back (as SaeFolder::loadWeights unfolds it).
  static RunFolderHistogramsResult readSaeFolder(const std::string& saeFolder, int64_t step);
};

}  // namespace sae
