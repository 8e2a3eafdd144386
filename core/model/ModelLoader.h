#pragma once
// Finds and loads a TransformerLens-style model: a folder with config.json plus weights
// (`*.safetensors`, or torch.save's `model_final.pth` / `*.pth`), named by path or by model
// name. Names are TransformerLens's aliases for Neel Nanda's models ("gelu-1l", "solu-2l",
// "attn-only-1l", ...) or repo ids ("NeelNanda/GELU_1L512W_C4_Code"), found in the app's own
// models folder or in the Hugging Face hub cache (core/data/HubCache).
#include <string>
#include <vector>

#include "model/HookedTransformer.h"

namespace sae {

class ModelLoader {
 public:
  // The hub repo of a TransformerLens alias (case-insensitive), `name` itself when it already
  // looks like "Org/Name", "" for anything else.
  static std::string repoIdFor(const std::string& name);
  // $XDG_CACHE_HOME/sae-workbench/models, else ~/.cache/sae-workbench/models.
  static std::string appModelsFolder();

  // The model folder for `modelName`: an existing folder path; else <app models>/<name> (also
  // under the repo id's last part); else the hub cache snapshot of its repo. Throws ConfigError
  // listing every folder searched and the `huggingface-cli download` command that fetches it.
  static std::string resolveFolder(const std::string& modelName);
  // The same with explicit search folders (tests).
  static std::string resolveFolderIn(const std::string& modelName, const std::string& appModels,
                                     const std::vector<std::string>& hubFolders);

  // The weights file of a folder: its only *.safetensors file (model.safetensors preferred),
  // else the *.pth / *.pt ending in "final.pth" (TransformerLens's choice), else its only .pth.
  static std::string weightsFile(const std::string& folder);
  // Tensors of a weights file by extension (.safetensors, else torch.save's zip format).
  static HookedTransformer::NamedTensors readWeights(const std::string& path);
  static HookedTransformer loadFolder(const std::string& folder);
  static HookedTransformer load(const std::string& modelName);
  // config.json (TransformerLens keys) + model.safetensors, each written atomically.
  static void saveFolder(const HookedTransformer& model, const std::string& folder);
};

}  // namespace sae
