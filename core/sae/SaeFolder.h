#pragma once
// An SAE on disk in SAELens's layout: sae_weights.safetensors (W_enc [d_in,d_sae], b_enc,
// W_dec [d_sae,d_in], b_dec), cfg.json, sparsity.safetensors (key "sparsity", log10 density).
// SAELens 5.9+ and 6.x load such a folder with SAE.load_from_disk(path); docs/semantics.md
// ("SAELens compatibility") lists what each version reads and how that was checked.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "config/RunConfig.h"
#include "sae/Sae.h"

namespace sae {

class SaeFolder {
 public:
  // The SAELens version whose cfg.json layout (flat keys plus a "metadata" object) this writes.
  // SAELens 6.x converts a cfg.json as a pre-6 flat dict unless metadata.sae_lens_version is at
  // least 6.0.0-rc.0; 6.0.0 is the first release that reads "metadata" (dict-like SAEMetadata).
  static constexpr const char* kSaeLensFormatVersion = "6.0.0";

  // Writes the three files (each to a temporary name, then renamed). scaling_factor is left
  // out while it is all ones, as SAELens 5/6 load with a strict state dict of four keys.
  // activationScale: the factor s the run multiplied every activation by (normalize_activations);
  // when set and not 1 it is folded into the saved weights (W_enc * s, W_dec / s, b_dec / s, as
  // SAELens's fold_activation_norm_scaling_factor does), so the saved SAE takes the activations
  // the model produces: on x it gives the features the trained SAE gives on s x, and that SAE's
  // output divided by s. The in-memory SAE is not changed.
  static void save(const std::string& folder, const Sae& sae, const RunConfig& config,
                   const torch::Tensor& logSparsity,
                   std::optional<double> activationScale = std::nullopt);
  // The cfg.json SAELens 1.5 writes (cfg.__dict__: every field plus derived d_sae, run_name,
  // tokens_per_buffer), with the keys SAELens 5.x reads flat and 6.x reads from "metadata"
  // added. foldedActivationScale is recorded as activation_norm_scaling_factor_folded.
  static nlohmann::json configJson(const RunConfig& config,
                                   std::optional<double> foldedActivationScale = std::nullopt);
  // Sae::namedTensors() with activationScale folded in (see save) when set and not 1.
  static std::vector<std::pair<std::string, torch::Tensor>> foldedWeights(
      const Sae& sae, std::optional<double> activationScale);
  // Loads the weights of `folder` into `sae`; errors name the file, key and shapes. A folder
  // whose cfg.json records activation_norm_scaling_factor_folded is unfolded again, so a run
  // continuing from it (from_pretrained_path) sees the weights SAELens 1.5 would have saved.
  static void loadWeights(const std::string& folder, Sae& sae);
};

}  // namespace sae
