#pragma once
// SAELens's grid sweep (sae_group.py, SparseAutoencoderDictionary): a config whose SAE, loss,
// schedule or optimiser fields hold lists, e.g. "l1_coefficient": [2, 5, 10], stands for the
// Cartesian product of those lists, one SAE per combination, all trained on one activation
// stream (SweepRun). Fields that define that stream (model, hook, data, buffer, token budget,
// seed, ...) must stay single values. Torch-free: the CLI and the GUI read it.
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/RunConfig.h"

namespace sae {

struct SweepCombination {
  size_t index = 0;
  RunConfig config;               // one value per field, validated
  nlohmann::ordered_json values;  // swept field -> this combination's value, as written
  // SAELens's name: "{model_name}_{hook_point}_{d_sae}_" + "k_v" pairs joined by "_".
  std::string saeName;
  std::string folderName;  // saeName as one path component ('/' and the like become '_')
  // SAELens's W&B metric suffix, e.g. "_coeff2_lr0.0003" ("" when nothing is swept).
  std::string metricSuffix;
};

class SweepExpansion {
 public:
  // The fields that may hold lists, in SAELens 1.5's declaration order of
  // LanguageModelSAERunnerConfig: the order of the product (the last one varies fastest, as
  // itertools.product) and of the name's k_v pairs. The schema marks the same set sweepable.
  static const std::vector<std::string>& sweepOrder();
  // Keys of `object` whose value is a list, in sweepOrder() (others after, in key order).
  static std::vector<std::string> listFields(const nlohmann::json& object);
  // Whether any top-level value is a list.
  static bool isSweep(const nlohmann::json& object);

  // Every combination, in product order. A config without lists gives one combination equal to
  // RunConfig::fromJson(object). Throws ConfigError listing every problem: a list on a field
  // that cannot be swept (named, with why), an empty list, a combination that fails
  // validation (its values named), two combinations with the same folder name.
  static std::vector<SweepCombination> expand(const nlohmann::json& object,
                                              const std::string& sourceName = "config",
                                              const std::string& baseDir = "");
  static std::vector<SweepCombination> loadFile(const std::string& path);

  // A command-line `key=value` applied to a config object before expansion: a JSON list makes
  // (or replaces) a sweep of that field; anything else is read as RunConfig::applyOverride
  // reads it. Throws ConfigError naming the key.
  static void applyOverride(nlohmann::json& object, const std::string& keyEqualsValue);

  // Python's str() of a JSON value as SAELens formats it in names: 2, 2.0, 5e-05, True, None.
  static std::string pythonStr(const nlohmann::json& value);
  // The sweep's limit on combinations (a typo in a list should not start 10^6 trainers).
  static constexpr size_t kMaxCombinations = 4096;
};

}  // namespace sae
