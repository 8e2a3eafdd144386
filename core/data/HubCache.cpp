#include "data/HubCache.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

namespace sae {

namespace fs = std::filesystem;

namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

bool isDirectory(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

// A repo id is "Org/Name" or a bare legacy "name"; anything that could escape the cache folder
// (absolute paths, "..", empty parts) is not one.
bool looksLikeRepoId(const std::string& repoId) {
  if (repoId.empty() || repoId.front() == '/' || repoId.back() == '/') return false;
  if (std::count(repoId.begin(), repoId.end(), '/') > 1) return false;
  if (repoId.find("..") != std::string::npos || repoId.find('\\') != std::string::npos)
    return false;
  return true;
}

std::optional<std::string> snapshotOf(const fs::path& repoFolder) {
  const fs::path snapshots = repoFolder / "snapshots";
  if (!isDirectory(snapshots)) return std::nullopt;
  // refs/main holds the commit hash of the revision `huggingface-cli download` fetched last.
  std::ifstream ref(repoFolder / "refs" / "main");
  std::string revision;
  if (ref && std::getline(ref, revision)) {
    while (!revision.empty() && std::isspace(static_cast<unsigned char>(revision.back())))
      revision.pop_back();
    if (!revision.empty() && revision.find('/') == std::string::npos &&
        isDirectory(snapshots / revision))
      return (snapshots / revision).string();
  }
  std::optional<fs::path> newest;
  fs::file_time_type newestTime{};
  std::error_code ec;
  for (fs::directory_iterator it(snapshots, ec), end; !ec && it != end; it.increment(ec)) {
    if (!isDirectory(it->path())) continue;
    std::error_code timeError;
    const auto time = fs::last_write_time(it->path(), timeError);
    if (timeError) continue;
    // Ties go to the name that sorts last so the choice does not depend on directory order.
    if (!newest || time > newestTime ||
        (time == newestTime && it->path().filename() > newest->filename())) {
      newest = it->path();
      newestTime = time;
    }
  }
  if (!newest) return std::nullopt;
  return newest->string();
}

}  // namespace

std::vector<std::string> HubCache::searchFolders() {
  std::vector<std::string> folders;
  auto add = [&folders](const std::string& path) {
    std::string clean = fs::path(path).lexically_normal().string();
    if (clean.size() > 1 && clean.back() == '/') clean.pop_back();
    if (std::find(folders.begin(), folders.end(), clean) == folders.end()) folders.push_back(clean);
  };
  if (auto v = env("HF_HUB_CACHE")) add(*v);
  if (auto v = env("HUGGINGFACE_HUB_CACHE")) add(*v);
  if (auto v = env("HF_HOME")) add((fs::path(*v) / "hub").string());
  if (auto v = env("XDG_CACHE_HOME")) add((fs::path(*v) / "huggingface" / "hub").string());
  if (auto v = env("HOME")) add((fs::path(*v) / ".cache" / "huggingface" / "hub").string());
  return folders;
}

std::string HubCache::repoFolderName(const std::string& repoId, Kind kind) {
  std::string name = repoId;
  for (size_t pos = name.find('/'); pos != std::string::npos; pos = name.find('/', pos + 2))
    name.replace(pos, 1, "--");
  return (kind == Kind::Model ? "models--" : "datasets--") + name;
}

std::optional<std::string> HubCache::findSnapshot(const std::string& repoId, Kind kind) {
  return findSnapshotIn(repoId, kind, searchFolders());
}

std::optional<std::string> HubCache::findSnapshotIn(const std::string& repoId, Kind kind,
                                                    const std::vector<std::string>& folders) {
  if (!looksLikeRepoId(repoId)) return std::nullopt;
  const std::string repoFolder = repoFolderName(repoId, kind);
  for (const auto& folder : folders) {
    if (auto snapshot = snapshotOf(fs::path(folder) / repoFolder)) return snapshot;
  }
  return std::nullopt;
}

std::string HubCache::downloadCommand(const std::string& repoId, Kind kind) {
  return "huggingface-cli download " + repoId +
         (kind == Kind::Dataset ? " --repo-type dataset" : "");
}

std::string HubCache::notFoundMessage(const std::string& repoId, Kind kind,
                                      const std::vector<std::string>& alsoSearched) {
  const char* what = kind == Kind::Model ? "model" : "dataset";
  std::string message = std::string(what) + " \"" + repoId + "\" was not found: no folder " +
                        repoFolderName(repoId, kind) + "/snapshots/<revision> in the hub cache";
  message += alsoSearched.empty() ? ".\nSearched:\n" : ", nor in the other folders.\nSearched:\n";
  std::vector<std::string> all = alsoSearched;
  for (const auto& folder : searchFolders())
    all.push_back(folder);
  for (const auto& folder : all)
    message += "  " + folder + (isDirectory(folder) ? "" : " (does not exist)") + "\n";
  message += "Download it with:\n  " + downloadCommand(repoId, kind) +
             "\nor give the path of a local " + what + " folder instead.";
  return message;
}

}  // namespace sae
