#include "sae/SaeFolder.h"

#include <filesystem>
#include <stdexcept>

#include "config/AtomicFile.h"
#include "formats/Safetensors.h"

namespace sae {

namespace fs = std::filesystem;

nlohmann::json SaeFolder::configJson(const RunConfig& config) {
  nlohmann::json cfg = config.toJson();
  const int64_t dSae = config.derivedDSae();
  cfg["d_sae"] = dSae;
  cfg["run_name"] = config.effectiveRunName();
  cfg["tokens_per_buffer"] =
      config.train_batch_size * config.context_size * config.n_batches_in_buffer;
  // Keys SAELens 5.x (flat) and 6.x (converted from the flat pre-6 dict) read. The weights
  // are in the activation space the model produces, so no normalisation is applied at load.
  cfg["architecture"] = "standard";
  cfg["activation_fn_str"] = config.activation_fn;
  cfg["hook_name"] = config.resolvedHookPoint();
  cfg["hook_layer"] = config.hook_point_layer;
  cfg["hook_head_index"] = config.hook_point_head_index
                               ? nlohmann::json(*config.hook_point_head_index)
                               : nlohmann::json(nullptr);
  cfg["finetuning_scaling_factor"] = false;
  cfg["dataset_trust_remote_code"] = false;
  cfg["normalize_activations"] = "none";
  std::string dtype = config.dtype;
  if (dtype.rfind("torch.", 0) == 0) dtype = dtype.substr(6);
  cfg["dtype"] = dtype;
  return cfg;
}

void SaeFolder::save(const std::string& folder, const Sae& sae, const RunConfig& config,
                     const torch::Tensor& logSparsity) {
  fs::create_directories(folder);
  Safetensors::NamedTensors weights;
  for (const auto& [name, tensor] : sae.namedTensors()) {
    if (name == "scaling_factor" && tensor.eq(1).all().item<bool>()) continue;
    weights.emplace_back(name, tensor.detach());
  }
  Safetensors::write((fs::path(folder) / "sae_weights.safetensors").string(), weights);
  AtomicFile::write((fs::path(folder) / "cfg.json").string(), configJson(config).dump(2) + "\n");
  if (logSparsity.defined()) {
    Safetensors::write((fs::path(folder) / "sparsity.safetensors").string(),
                       {{"sparsity", logSparsity.detach()}});
  }
}

void SaeFolder::loadWeights(const std::string& folder, Sae& sae) {
  const std::string path = (fs::path(folder) / "sae_weights.safetensors").string();
  if (!fs::exists(path)) {
    throw std::runtime_error(
        "from_pretrained_path '" + folder +
        "' has no sae_weights.safetensors; point it at a folder SAELens "
        "or SAE Workbench saved (it holds sae_weights.safetensors and cfg.json)");
  }
  sae.loadTensors(Safetensors::read(path), path);
}

}  // namespace sae
