#pragma once
// The built-in presets (resources/presets/*.json), found wherever the program runs from: an
// override folder, the installed share folder, or the source tree of a development build.
#include <string>
#include <vector>

#include "config/RunConfig.h"

namespace sae {

class PresetLibrary {
 public:
  // Existing preset folders in search order: $SAEWB_PRESETS_DIR, <exe dir>/../share/
  // sae-workbench/presets, then the source tree's resources/presets.
  static std::vector<std::string> searchDirs();
  // Preset names (file names without .json), sorted; a name found in an earlier folder hides
  // the same name in later ones.
  static std::vector<std::string> names();
  // Full path of a preset file. Throws ConfigError listing the available names when unknown.
  static std::string pathOf(const std::string& name);
  // Load and validate a preset ("synthetic-demo" or "synthetic-demo.json").
  static RunConfig load(const std::string& name);
};

}  // namespace sae
