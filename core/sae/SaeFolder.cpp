#include "sae/SaeFolder.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "config/AtomicFile.h"
#include "formats/Safetensors.h"

namespace sae {

namespace fs = std::filesystem;

namespace {

// SAELens's DTYPE_MAP knows float32/float64/float16/bfloat16 (with or without "torch."); the
// other spellings RunConfig accepts are written under those names.
std::string saeLensDtypeName(std::string dtype) {
  if (dtype.rfind("torch.", 0) == 0) dtype = dtype.substr(6);
  if (dtype == "float") return "float32";
  if (dtype == "double") return "float64";
  if (dtype == "half") return "float16";
  return dtype;
}

bool endsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool foldsScale(std::optional<double> scale) {
  return scale && *scale != 1.0;
}

}  // namespace

nlohmann::json SaeFolder::configJson(const RunConfig& config,
                                     std::optional<double> foldedActivationScale) {
  nlohmann::json cfg = config.toJson();
  const int64_t dSae = config.derivedDSae();
  const std::string hookName = config.resolvedHookPoint();
  const nlohmann::json headIndex = config.hook_point_head_index
                                       ? nlohmann::json(*config.hook_point_head_index)
                                       : nlohmann::json(nullptr);
  cfg["d_sae"] = dSae;
  cfg["run_name"] = config.effectiveRunName();
  cfg["tokens_per_buffer"] =
      config.train_batch_size * config.context_size * config.n_batches_in_buffer;

  // SAELens 5.x reads the flat keys (SAEConfig.from_dict renames hook_point -> hook_name,
  // hook_point_layer -> hook_layer, activation_fn -> activation_fn_str, and the later key in
  // the file wins: JSON objects here are sorted, so hook_point comes after hook_name). Both
  // therefore carry the resolved hook, never the "{layer}" template config.json keeps.
  cfg["architecture"] = "standard";
  cfg["hook_point"] = hookName;
  cfg["hook_name"] = hookName;
  cfg["hook_layer"] = config.hook_point_layer;
  cfg["hook_head_index"] = headIndex;
  cfg["activation_fn_str"] = config.activation_fn;
  cfg["activation_fn_kwargs"] = nlohmann::json::object();
  cfg["finetuning_scaling_factor"] = false;
  cfg["dataset_trust_remote_code"] = false;
  cfg["dtype"] = saeLensDtypeName(config.dtype);
  // The saved weights always take the activations the model produces: a run that normalised
  // them has its factor folded in (see save); cached activations are never normalised (SAELens
  // 1.5 reads them as they are), and before the first buffer no activation has been seen.
  cfg["normalize_activations"] = "none";
  if (foldedActivationScale) cfg["activation_norm_scaling_factor_folded"] = *foldedActivationScale;
  // 6.x (native path): SAEConfig fields are d_in, d_sae, dtype, device, apply_b_dec_to_input,
  // normalize_activations, reshape_activations and "metadata"; other top-level keys are dropped.
  cfg["reshape_activations"] = endsWith(hookName, "_z") ? "hook_z" : "none";
  // A top-level sae_lens_version would be read before metadata's and, being 1.5.0, send 6.x
  // down its pre-6 conversion. The SAELens 1.5 training semantics stay recorded as
  // sae_lens_training_version (flat, read by 5.x, and in metadata).
  cfg.erase("sae_lens_version");
  cfg["metadata"] = {
      {"sae_lens_version", kSaeLensFormatVersion},
      {"sae_lens_training_version", config.sae_lens_training_version},
      {"model_name", config.model_name},
      {"model_class_name", config.model_class_name},
      {"hook_name", hookName},
      {"hook_head_index", headIndex},
      {"context_size", config.context_size},
      {"prepend_bos", config.prepend_bos},
      {"dataset_path", config.dataset_path},
      {"model_from_pretrained_kwargs", config.model_from_pretrained_kwargs},
  };
  return cfg;
}

std::vector<std::pair<std::string, torch::Tensor>> SaeFolder::foldedWeights(
    const Sae& sae, std::optional<double> activationScale) {
  torch::NoGradGuard noGrad;
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  const bool fold = foldsScale(activationScale);
  const double s = activationScale.value_or(1.0);
  // The SAE was trained on x_n = s * x. With W_enc' = s W_enc and b_dec' = b_dec / s:
  // (x - b_dec') W_enc' + b_enc = (s x - b_dec) W_enc + b_enc, the same pre-activations, so the
  // same features; with W_dec' = W_dec / s the output is (f W_dec + b_dec) / s, the
  // reconstruction of x. Without apply_b_dec_to_input the first identity holds the same way.
  for (const auto& [name, tensor] : sae.namedTensors()) {
    torch::Tensor value = tensor.detach();
    if (fold && name == "W_enc") value = value * s;
    if (fold && (name == "W_dec" || name == "b_dec")) value = value / s;
    weights.emplace_back(name, value);
  }
  return weights;
}

void SaeFolder::save(const std::string& folder, const Sae& sae, const RunConfig& config,
                     const torch::Tensor& logSparsity, std::optional<double> activationScale) {
  fs::create_directories(folder);
  Safetensors::NamedTensors weights;
  bool writesScalingFactor = false;
  for (auto& [name, tensor] : foldedWeights(sae, activationScale)) {
    if (name == "scaling_factor") {
      if (tensor.eq(1).all().item<bool>()) continue;
      writesScalingFactor = true;  // SAELens loads it only when the config says it is there
    }
    weights.emplace_back(name, tensor);
  }
  nlohmann::json cfg = configJson(config, activationScale);
  cfg["finetuning_scaling_factor"] = writesScalingFactor;
  Safetensors::write((fs::path(folder) / "sae_weights.safetensors").string(), weights);
  AtomicFile::write((fs::path(folder) / "cfg.json").string(), cfg.dump(2) + "\n");
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
  // The folded factor, if this folder was written with one; SAELens's own folders have none.
  double folded = 1.0;
  const std::string cfgPath = (fs::path(folder) / "cfg.json").string();
  if (fs::exists(cfgPath)) {
    std::ifstream in(cfgPath);
    const nlohmann::json cfg = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (cfg.is_discarded()) {
      throw std::runtime_error(cfgPath +
                               " is not valid JSON; repair it or remove it (the weights load "
                               "without it)");
    }
    const auto it = cfg.find("activation_norm_scaling_factor_folded");
    if (it != cfg.end() && !it->is_null()) {
      if (!it->is_number() || !(it->get<double>() > 0)) {
        throw std::runtime_error(cfgPath + ": activation_norm_scaling_factor_folded is " +
                                 it->dump() + ", expected a positive number");
      }
      folded = it->get<double>();
    }
  }
  sae.loadTensors(Safetensors::read(path), path);
  if (folded != 1.0) {
    torch::NoGradGuard noGrad;
    sae.W_enc.div_(folded);
    sae.W_dec.mul_(folded);
    sae.b_dec.mul_(folded);
  }
}

}  // namespace sae
