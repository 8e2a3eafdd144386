#include "model/ModelLoader.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "config/AtomicFile.h"
#include "config/ConfigError.h"
#include "data/HubCache.h"
#include "formats/PthReader.h"
#include "formats/Safetensors.h"

namespace fs = std::filesystem;

namespace sae {

namespace {

// TransformerLens's MODEL_ALIASES for Neel Nanda's models (loading_from_pretrained.py).
struct Alias {
  const char* repo;
  std::vector<const char*> names;
};

const std::vector<Alias>& aliases() {
  static const std::vector<Alias> table = {
      {"NeelNanda/SoLU_1L_v9_old", {"solu-1l-pile", "solu-1l-old"}},
      {"NeelNanda/SoLU_2L_v10_old", {"solu-2l-pile", "solu-2l-old"}},
      {"NeelNanda/SoLU_4L_v11_old", {"solu-4l-pile", "solu-4l-old"}},
      {"NeelNanda/SoLU_6L_v13_old", {"solu-6l-pile", "solu-6l-old"}},
      {"NeelNanda/SoLU_8L_v21_old", {"solu-8l-pile", "solu-8l-old"}},
      {"NeelNanda/SoLU_10L_v22_old", {"solu-10l-pile", "solu-10l-old"}},
      {"NeelNanda/SoLU_12L_v23_old", {"solu-12l-pile", "solu-12l-old"}},
      {"NeelNanda/SoLU_1L512W_C4_Code", {"solu-1l", "solu-1l-new", "solu-1l-c4-code"}},
      {"NeelNanda/SoLU_2L512W_C4_Code", {"solu-2l", "solu-2l-new", "solu-2l-c4-code"}},
      {"NeelNanda/SoLU_3L512W_C4_Code", {"solu-3l", "solu-3l-new", "solu-3l-c4-code"}},
      {"NeelNanda/SoLU_4L512W_C4_Code", {"solu-4l", "solu-4l-new", "solu-4l-c4-code"}},
      {"NeelNanda/SoLU_6L768W_C4_Code", {"solu-6l", "solu-6l-new", "solu-6l-c4-code"}},
      {"NeelNanda/SoLU_8L1024W_C4_Code", {"solu-8l", "solu-8l-new", "solu-8l-c4-code"}},
      {"NeelNanda/SoLU_10L1280W_C4_Code", {"solu-10l", "solu-10l-new", "solu-10l-c4-code"}},
      {"NeelNanda/SoLU_12L1536W_C4_Code", {"solu-12l", "solu-12l-new", "solu-12l-c4-code"}},
      {"NeelNanda/GELU_1L512W_C4_Code", {"gelu-1l", "gelu-1l-new", "gelu-1l-c4-code"}},
      {"NeelNanda/GELU_2L512W_C4_Code", {"gelu-2l", "gelu-2l-new", "gelu-2l-c4-code"}},
      {"NeelNanda/GELU_3L512W_C4_Code", {"gelu-3l", "gelu-3l-new", "gelu-3l-c4-code"}},
      {"NeelNanda/GELU_4L512W_C4_Code", {"gelu-4l", "gelu-4l-new", "gelu-4l-c4-code"}},
      {"NeelNanda/Attn_Only_1L512W_C4_Code",
       {"attn-only-1l", "attn-only-1l-new", "attn-only-1l-c4-code"}},
      {"NeelNanda/Attn_Only_2L512W_C4_Code",
       {"attn-only-2l", "attn-only-2l-new", "attn-only-2l-c4-code"}},
      {"NeelNanda/Attn_Only_3L512W_C4_Code",
       {"attn-only-3l", "attn-only-3l-new", "attn-only-3l-c4-code"}},
      {"NeelNanda/Attn_Only_4L512W_C4_Code",
       {"attn-only-4l", "attn-only-4l-new", "attn-only-4l-c4-code"}},
  };
  return table;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return s;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool isModelFolder(const fs::path& folder) {
  std::error_code ec;
  return fs::is_regular_file(folder / "config.json", ec);
}

}  // namespace

std::string ModelLoader::repoIdFor(const std::string& name) {
  const std::string key = lower(name);
  for (const auto& alias : aliases()) {
    if (lower(alias.repo) == key) return alias.repo;
    for (const char* n : alias.names) {
      if (key == n) return alias.repo;
    }
  }
  const auto slash = name.find('/');
  if (slash != std::string::npos && slash > 0 && slash + 1 < name.size() &&
      name.find('/', slash + 1) == std::string::npos) {
    return name;
  }
  return "";
}

std::string ModelLoader::appModelsFolder() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  fs::path base;
  if (xdg && *xdg) {
    base = xdg;
  } else if (home && *home) {
    base = fs::path(home) / ".cache";
  } else {
    base = fs::temp_directory_path();
  }
  return (base / "sae-workbench" / "models").string();
}

std::string ModelLoader::resolveFolder(const std::string& modelName) {
  return resolveFolderIn(modelName, appModelsFolder(), HubCache::searchFolders());
}

std::string ModelLoader::resolveFolderIn(const std::string& modelName, const std::string& appModels,
                                         const std::vector<std::string>& hubFolders) {
  std::error_code ec;
  if (modelName.empty()) throw ConfigError("model_name is empty: name a model folder or a model");
  if (fs::is_directory(modelName, ec)) {
    if (!isModelFolder(modelName)) {
      throw ConfigError("model folder '" + modelName +
                        "' has no config.json (a TransformerLens model folder holds config.json "
                        "and the weights, *.safetensors or model_final.pth)");
    }
    return modelName;
  }
  const std::string repo = repoIdFor(modelName);
  std::vector<std::string> appCandidates = {(fs::path(appModels) / modelName).string()};
  if (!repo.empty()) {
    appCandidates.push_back((fs::path(appModels) / repo.substr(repo.find('/') + 1)).string());
  }
  for (const auto& candidate : appCandidates) {
    if (isModelFolder(candidate)) return candidate;
  }
  if (repo.empty()) {
    std::string known;
    for (const auto& alias : aliases())
      known += std::string(known.empty() ? "" : ", ") + alias.names[0];
    throw ConfigError("model_name '" + modelName + "' is not a folder, not in " + appModels +
                      ", and not a known model name or Hugging Face repo id (Org/Name). Known "
                      "names: " +
                      known);
  }
  if (const auto snapshot = HubCache::findSnapshotIn(repo, HubCache::Kind::Model, hubFolders)) {
    if (isModelFolder(*snapshot)) return *snapshot;
    throw ConfigError("model '" + modelName + "': the hub cache snapshot " + *snapshot +
                      " has no config.json (incomplete download?). Run: " +
                      HubCache::downloadCommand(repo, HubCache::Kind::Model));
  }
  // HubCache's message lists the hub folders; the app's own candidates come first.
  std::string message = "model '" + modelName + "' (" + repo + ") was not found.\nSearched:\n";
  for (const auto& candidate : appCandidates) {
    message += "  " + candidate + (fs::exists(candidate, ec) ? "" : " (does not exist)") + "\n";
  }
  for (const auto& folder : hubFolders) {
    const auto repoFolder =
        fs::path(folder) / HubCache::repoFolderName(repo, HubCache::Kind::Model);
    message +=
        "  " + repoFolder.string() + (fs::exists(repoFolder, ec) ? "" : " (does not exist)") + "\n";
  }
  message += "To fetch it: " + HubCache::downloadCommand(repo, HubCache::Kind::Model);
  throw ConfigError(message);
}

std::string ModelLoader::weightsFile(const std::string& folder) {
  std::vector<fs::path> safetensors, pth;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_regular_file(ec) && !entry.is_symlink(ec)) continue;
    if (endsWith(name, ".safetensors")) safetensors.push_back(entry.path());
    if (endsWith(name, ".pth") || endsWith(name, ".pt")) pth.push_back(entry.path());
  }
  if (ec) throw ConfigError("model folder '" + folder + "' cannot be listed: " + ec.message());
  std::sort(safetensors.begin(), safetensors.end());
  std::sort(pth.begin(), pth.end());
  for (const auto& p : safetensors) {
    if (p.filename() == "model.safetensors") return p.string();
  }
  if (safetensors.size() == 1) return safetensors[0].string();
  if (safetensors.size() > 1) {
    throw ConfigError("model folder '" + folder +
                      "' has several .safetensors files and no model.safetensors; sharded "
                      "checkpoints are not supported");
  }
  std::vector<fs::path> finals;
  for (const auto& p : pth) {
    if (endsWith(p.filename().string(), "final.pth")) finals.push_back(p);
  }
  if (finals.size() == 1) return finals[0].string();
  if (pth.size() == 1) return pth[0].string();
  throw ConfigError(
      "model folder '" + folder + "' has " +
      (pth.empty() ? std::string("no weights file")
                   : std::to_string(pth.size()) + " .pth files and none is *final.pth") +
      ": expected model.safetensors, *.safetensors or model_final.pth next to config.json");
}

HookedTransformer::NamedTensors ModelLoader::readWeights(const std::string& path) {
  if (endsWith(path, ".safetensors")) return Safetensors::read(path);
  return PthReader::read(path);
}

HookedTransformer ModelLoader::loadFolder(const std::string& folder) {
  const auto config = TransformerConfig::fromFile((fs::path(folder) / "config.json").string());
  const std::string weights = weightsFile(folder);
  HookedTransformer model(config);
  model.loadStateDict(readWeights(weights), weights);
  return model;
}

HookedTransformer ModelLoader::load(const std::string& modelName) {
  return loadFolder(resolveFolder(modelName));
}

void ModelLoader::saveFolder(const HookedTransformer& model, const std::string& folder) {
  fs::create_directories(folder);
  HookedTransformer::NamedTensors tensors;
  for (const auto& [name, tensor] : model.stateDict())
    tensors.emplace_back(name, tensor.detach());
  Safetensors::write((fs::path(folder) / "model.safetensors").string(), tensors);
  AtomicFile::write((fs::path(folder) / "config.json").string(),
                    model.config().toJson().dump(2) + "\n");
}

}  // namespace sae
