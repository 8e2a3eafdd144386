#pragma once
// Finds repositories that `huggingface-cli download` put in the Hugging Face hub cache, so a
// config can name "NeelNanda/c4-tokenized-2b" or a model repo instead of a folder. Torch-free.
#include <optional>
#include <string>
#include <vector>

namespace sae {

class HubCache {
 public:
  enum class Kind { Model, Dataset };

  // Every hub cache folder huggingface_hub would use, in the order they are searched, whether or
  // not they exist (so a "not found" message can list what was looked at): $HF_HUB_CACHE,
  // $HUGGINGFACE_HUB_CACHE (its older name), $HF_HOME/hub, $XDG_CACHE_HOME/huggingface/hub and
  // ~/.cache/huggingface/hub. Unset variables are skipped; duplicates are listed once.
  static std::vector<std::string> searchFolders();

  // "models--Org--Name" / "datasets--Org--Name": the repository's folder inside a hub cache.
  static std::string repoFolderName(const std::string& repoId, Kind kind);

  // The snapshot folder (<cache>/<repo folder>/snapshots/<rev>) of the first search folder that
  // holds one: the revision named in refs/main when that snapshot exists, else the most recently
  // modified snapshot. nullopt when no search folder has one (or repoId is not a repo name).
  static std::optional<std::string> findSnapshot(const std::string& repoId, Kind kind);
  // The same, searching only `folders` (tests, and callers that add their own folders).
  static std::optional<std::string> findSnapshotIn(const std::string& repoId, Kind kind,
                                                   const std::vector<std::string>& folders);

  // A multi-line message for a repository that was not found: what was looked for, every folder
  // searched (each marked "(does not exist)" when missing, `alsoSearched` listed first, e.g. the
  // app's own models folder) and the `huggingface-cli download <repo> [--repo-type dataset]`
  // command that would fetch it.
  static std::string notFoundMessage(const std::string& repoId, Kind kind,
                                     const std::vector<std::string>& alsoSearched = {});
  // The command line that downloads `repoId` into the hub cache.
  static std::string downloadCommand(const std::string& repoId, Kind kind);
};

}  // namespace sae
