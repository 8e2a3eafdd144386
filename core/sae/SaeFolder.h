#pragma once
// An SAE on disk in SAELens's layout: sae_weights.safetensors (W_enc [d_in,d_sae], b_enc,
// W_dec [d_sae,d_in], b_dec), cfg.json, sparsity.safetensors (key "sparsity", log10 density).
#include <string>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "config/RunConfig.h"
#include "sae/Sae.h"

namespace sae {

class SaeFolder {
 public:
  // Writes the three files (each to a temporary name, then renamed). scaling_factor is left
  // out while it is all ones, as SAELens 5/6 load with a strict state dict of four keys.
  static void save(const std::string& folder, const Sae& sae, const RunConfig& config,
                   const torch::Tensor& logSparsity);
  // The cfg.json SAELens 1.5 writes (cfg.__dict__: every field plus derived d_sae, run_name,
  // tokens_per_buffer), with the keys SAELens 5.x/6.x need to load it added.
  static nlohmann::json configJson(const RunConfig& config);
  // Loads the weights of `folder` into `sae`; errors name the file, key and shapes.
  static void loadWeights(const std::string& folder, Sae& sae);
};

}  // namespace sae
