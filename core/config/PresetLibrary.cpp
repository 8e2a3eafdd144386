#include "config/PresetLibrary.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "config/ConfigError.h"

namespace sae {

namespace {

namespace fs = std::filesystem;

fs::path executableDir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);  // Linux: the running binary
  return ec ? fs::path() : exe.parent_path();
}

std::string stripJsonSuffix(std::string name) {
  const std::string suffix = ".json";
  if (name.size() > suffix.size() &&
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    name.erase(name.size() - suffix.size());
  }
  return name;
}

}  // namespace

std::vector<std::string> PresetLibrary::searchDirs() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("SAEWB_PRESETS_DIR"); env && *env) candidates.emplace_back(env);
  const fs::path exeDir = executableDir();
  if (!exeDir.empty()) candidates.push_back(exeDir / ".." / "share" / "sae-workbench" / "presets");
#ifdef SAEWB_PRESETS_SOURCE_DIR
  candidates.emplace_back(SAEWB_PRESETS_SOURCE_DIR);
#endif
  std::vector<std::string> dirs;
  for (const auto& candidate : candidates) {
    std::error_code ec;
    if (!fs::is_directory(candidate, ec)) continue;
    const std::string dir = candidate.lexically_normal().string();
    if (std::find(dirs.begin(), dirs.end(), dir) == dirs.end()) dirs.push_back(dir);
  }
  return dirs;
}

std::vector<std::string> PresetLibrary::names() {
  std::set<std::string> found;
  for (const auto& dir : searchDirs()) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().extension() == ".json" && entry.is_regular_file(ec)) {
        found.insert(entry.path().stem().string());
      }
    }
  }
  return {found.begin(), found.end()};
}

std::string PresetLibrary::pathOf(const std::string& name) {
  const std::string stem = stripJsonSuffix(name);
  const auto dirs = searchDirs();
  for (const auto& dir : dirs) {
    const fs::path candidate = fs::path(dir) / (stem + ".json");
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return candidate.string();
  }
  const auto available = names();
  std::string message = "unknown preset '" + name + "'";
  if (available.empty()) {
    message += "; no preset folder found (set SAEWB_PRESETS_DIR)";
  } else {
    std::string list;
    for (const auto& n : available)
      list += (list.empty() ? "" : ", ") + n;
    message += "; available presets: " + list;
  }
  throw ConfigError(message);
}

RunConfig PresetLibrary::load(const std::string& name) {
  return RunConfig::loadFile(pathOf(name));
}

}  // namespace sae
