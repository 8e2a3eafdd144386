#include "analysis/RunFolderHistograms.h"

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "formats/Safetensors.h"

namespace fs = std::filesystem;

namespace sae {

namespace {

const char* const kWeightsFile = "sae_weights.safetensors";
const char* const kSparsityFile = "sparsity.safetensors";

// A JSON file as an object; a discarded value when it is missing or broken (callers fall back).
nlohmann::json readJsonObject(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return nlohmann::json(nlohmann::json::value_t::discarded);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return nlohmann::json(nlohmann::json::value_t::discarded);
  return j;
}

std::vector<double> toDoubles(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat64).contiguous().reshape({-1});
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

bool isTokenCount(const std::string& name) {
  return !name.empty() && name.size() < 19 &&
         name.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

std::string RunFolderHistograms::saeFolderOf(const std::string& runDir) {
  std::error_code ec;
  const fs::path final = fs::path(runDir) / "final";
  if (fs::exists(final / kWeightsFile, ec)) return final.string();
  std::string best;
  int64_t bestTokens = -1;
  const fs::path checkpoints = fs::path(runDir) / "checkpoints";
  if (!fs::is_directory(checkpoints, ec)) return best;
  for (const auto& entry : fs::directory_iterator(checkpoints, ec)) {
    const std::string name = entry.path().filename().string();
    if (!isTokenCount(name) || !fs::exists(entry.path() / kWeightsFile, ec)) continue;
    const int64_t tokens = std::stoll(name);
    if (tokens > bestTokens) {
      bestTokens = tokens;
      best = entry.path().string();
    }
  }
  return best;
}

RunFolderHistogramsResult RunFolderHistograms::read(const std::string& runDir) {
  const std::string folder = saeFolderOf(runDir);
  if (folder.empty()) {
    throw std::runtime_error("run folder '" + runDir + "' has no final/" + kWeightsFile +
                             " and no checkpoints/<tokens>/" + kWeightsFile +
                             ": its histograms appear once a checkpoint is written or the run "
                             "finishes");
  }
  int64_t step = 0;
  const std::string name = fs::path(folder).filename().string();
  if (name == "final") {
    const nlohmann::json run = readJsonObject(fs::path(runDir) / "run.json");
    if (!run.is_discarded() && run.contains("step") && run["step"].is_number_integer())
      step = run["step"].get<int64_t>();
  } else if (isTokenCount(name)) {
    const nlohmann::json config = readJsonObject(fs::path(runDir) / "config.json");
    if (!config.is_discarded() && config.contains("train_batch_size") &&
        config["train_batch_size"].is_number_integer() &&
        config["train_batch_size"].get<int64_t>() > 0)
      step = std::stoll(name) / config["train_batch_size"].get<int64_t>();
  }
  return readSaeFolder(folder, step);
}

RunFolderHistogramsResult RunFolderHistograms::readSaeFolder(const std::string& saeFolder,
                                                             int64_t step) {
  RunFolderHistogramsResult result;
  result.saeFolder = saeFolder;
  const std::string weightsPath = (fs::path(saeFolder) / kWeightsFile).string();

  double folded = 1.0;
  const nlohmann::json cfg = readJsonObject(fs::path(saeFolder) / "cfg.json");
  if (!cfg.is_discarded()) {
    const auto it = cfg.find("activation_norm_scaling_factor_folded");
    if (it != cfg.end() && it->is_number() && it->get<double>() > 0) folded = it->get<double>();
  }

  torch::NoGradGuard noGrad;
  const torch::Tensor wDec = Safetensors::readTensor(weightsPath, "W_dec");
  if (wDec.dim() != 2) {
    throw std::runtime_error(weightsPath + ": W_dec has " + std::to_string(wDec.dim()) +
                             " dimensions, expected 2 ([d_sae, d_in])");
  }
  HistogramEvent norms;
  norms.step = step;
  norms.name = "weights/W_dec_norms";
  norms.values = toDoubles(wDec.to(torch::kFloat64).norm(2, {1}) * folded);
  result.histograms.push_back(std::move(norms));

  const std::string sparsityPath = (fs::path(saeFolder) / kSparsityFile).string();
  std::error_code ec;
  if (!fs::exists(sparsityPath, ec)) {
    result.problems.push_back(sparsityPath +
                              " is missing: no log10 feature density to show for this run");
    return result;
  }
  try {
    HistogramEvent density;
    density.step = step;
    density.name = "plots/feature_density_line_chart";
    density.values = toDoubles(Safetensors::readTensor(sparsityPath, "sparsity"));
    result.histograms.push_back(std::move(density));
  } catch (const std::exception& error) {
    result.problems.push_back(error.what());
  }
  return result;
}

}  // namespace sae
