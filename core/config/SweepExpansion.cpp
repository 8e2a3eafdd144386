#include "config/SweepExpansion.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "config/ConfigError.h"
#include "config/ConfigSchema.h"
#include "config/PythonFormat.h"

namespace sae {

namespace {

namespace fs = std::filesystem;
using Issue = ConfigError::Issue;

// SAELens's _wandb_log_suffix renames these four keys; the rest keep their field name.
std::string suffixKey(const std::string& field) {
  static const std::map<std::string, std::string> renamed = {
      {"hook_point_layer", "layer"}, {"l1_coefficient", "coeff"}, {"lp_norm", "l"}, {"lr", "lr"}};
  const auto it = renamed.find(field);
  return it == renamed.end() ? field : it->second;
}

// Fields read before any SAE exists: they decide which activations every SAE sees.
bool definesStream(const ConfigField& field) {
  static const std::set<std::string> groups = {"Model & hook", "Data", "Buffer", "Synthetic data"};
  static const std::set<std::string> names = {"seed", "device", "num_threads", "model_kwargs",
                                              "model_from_pretrained_kwargs"};
  return groups.count(field.group) > 0 || names.count(field.name) > 0;
}

std::string notSweepableMessage(const ConfigField& field) {
  const std::string& name = field.name;
  if (name == "d_sae")
    return "d_sae: cannot be a list: it is derived from d_in * expansion_factor; sweep "
           "expansion_factor instead";
  if (definesStream(field))
    return name +
           ": cannot be a list: it defines the activation stream that every SAE of a sweep "
           "shares (one pass over the data trains them all); give one value, or write one "
           "config per value";
  return name +
         ": cannot be a list: it is a setting of the whole sweep (logging, checkpoints, "
         "names, evaluation); give one value. Lists are allowed for the SAE, loss, "
         "learning-rate and optimiser fields";
}

// One path component: SAELens's names carry the model name ("NeelNanda/...", a local path).
std::string safeFolderName(const std::string& name) {
  std::string folder;
  for (const char c : name) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-' || c == '+';
    folder += keep ? c : '_';
  }
  if (folder.empty() || folder[0] == '.') folder = "_" + folder;
  return folder;
}

std::string describeValues(const nlohmann::ordered_json& values) {
  std::string text;
  for (const auto& [key, value] : values.items())
    text += (text.empty() ? "" : ", ") + key + "=" + value.dump();
  return text;
}

}  // namespace

const std::vector<std::string>& SweepExpansion::sweepOrder() {
  // LanguageModelSAERunnerConfig @5f46329d: the `X | list[X]` fields (expansion_factor, the
  // Adam betas, l1_coefficient, lp_norm, l1_warm_up_steps, the six LR fields, use_ghost_grads)
  // plus the other per-SAE fields, each where SAELens declares it.
  static const std::vector<std::string> order = {
      "b_dec_init_method",
      "expansion_factor",
      "activation_fn",
      "normalize_sae_decoder",
      "noise_scale",
      "apply_b_dec_to_input",
      "decoder_orthogonal_init",
      "decoder_heuristic_init",
      "init_encoder_as_decoder_transpose",
      "adam_beta1",
      "adam_beta2",
      "mse_loss_normalization",
      "l1_coefficient",
      "lp_norm",
      "scale_sparsity_penalty_by_decoder_norm",
      "l1_warm_up_steps",
      "lr",
      "lr_scheduler_name",
      "lr_warm_up_steps",
      "lr_end",
      "lr_decay_steps",
      "n_restart_cycles",
      "use_ghost_grads",
      "feature_sampling_window",
      "dead_feature_window",
  };
  return order;
}

std::vector<std::string> SweepExpansion::listFields(const nlohmann::json& object) {
  std::vector<std::string> fields;
  if (!object.is_object()) return fields;
  for (const auto& name : sweepOrder())
    if (object.contains(name) && object[name].is_array()) fields.push_back(name);
  for (const auto& [key, value] : object.items())
    if (value.is_array() && std::find(fields.begin(), fields.end(), key) == fields.end())
      fields.push_back(key);
  return fields;
}

bool SweepExpansion::isSweep(const nlohmann::json& object) {
  return !listFields(object).empty();
}

std::string SweepExpansion::pythonStr(const nlohmann::json& value) {
  if (value.is_null()) return "None";
  if (value.is_boolean()) return value.get<bool>() ? "True" : "False";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_float()) return PythonFormat::repr(value.get<double>());
  if (value.is_number_unsigned()) return std::to_string(value.get<uint64_t>());
  if (value.is_number_integer()) return PythonFormat::integer(value.get<int64_t>());
  return value.dump();
}

std::vector<SweepCombination> SweepExpansion::expand(const nlohmann::json& object,
                                                     const std::string& sourceName,
                                                     const std::string& baseDir) {
  if (!object.is_object()) return {{0, RunConfig::fromJson(object, sourceName, baseDir)}};
  std::vector<Issue> issues;
  std::vector<std::string> swept;  // in sweepOrder()
  for (const auto& key : listFields(object)) {
    const ConfigField* field = ConfigSchema::find(key);
    if (!field) continue;  // fromJson reports the unknown key with a suggestion
    if (!field->sweepable) {
      issues.push_back({key, notSweepableMessage(*field)});
    } else if (object[key].empty()) {
      issues.push_back(
          {key, key + ": the list is empty, so the sweep has no SAE; give at least one value"});
    } else {
      swept.push_back(key);
    }
  }
  if (std::find(swept.begin(), swept.end(), "expansion_factor") != swept.end() &&
      object.contains("d_sae") && !object["d_sae"].is_null()) {
    issues.push_back({"d_sae",
                      "d_sae: leave it out (or null) when expansion_factor is a list: each "
                      "combination derives its own d_in * expansion_factor"});
  }
  size_t count = 1;
  for (const auto& key : swept) {
    count *= object[key].size();
    if (count > kMaxCombinations) {
      issues.push_back({key, "the lists give more than " + std::to_string(kMaxCombinations) +
                                 " combinations: sweep fewer values at once"});
      break;
    }
  }
  if (!issues.empty()) throw ConfigError(sourceName, issues);

  // The model name as written: a local model folder resolves to an absolute path in the
  // config, which would make a poor name.
  const std::string modelName = object.contains("model_name") && object["model_name"].is_string()
                                    ? object["model_name"].get<std::string>()
                                    : RunConfig().model_name;
  std::vector<SweepCombination> combinations;
  std::set<std::string> seenIssues;
  std::map<std::string, size_t> folders;
  for (size_t index = 0; index < count; ++index) {
    SweepCombination combination;
    combination.index = index;
    combination.values = nlohmann::ordered_json::object();
    nlohmann::json scalar = object;
    // Mixed radix with the last swept field as the fastest digit, as itertools.product.
    size_t rest = index;
    std::vector<size_t> digits(swept.size());
    for (size_t k = swept.size(); k-- > 0;) {
      const size_t n = object[swept[k]].size();
      digits[k] = rest % n;
      rest /= n;
    }
    for (size_t k = 0; k < swept.size(); ++k) {
      scalar[swept[k]] = object[swept[k]][digits[k]];
      combination.values[swept[k]] = object[swept[k]][digits[k]];
    }
    const std::string label = swept.empty()
                                  ? sourceName
                                  : sourceName + " (sweep combination " + std::to_string(index) +
                                        ": " + describeValues(combination.values) + ")";
    try {
      combination.config = RunConfig::fromJson(scalar, label, baseDir);
    } catch (const ConfigError& error) {
      for (const auto& issue : error.issues()) {
        // Lists of several fields repeat one bad value in many combinations: report it once.
        const std::string message =
            swept.empty() ? issue.message
                          : issue.message + " [in " + describeValues(combination.values) + "]";
        const bool firstTime = seenIssues.insert(issue.message).second;
        if (firstTime) issues.push_back({issue.field, message});
      }
      continue;
    }
    const RunConfig& c = combination.config;
    combination.saeName = modelName + "_" + c.resolvedHookPoint() + "_" +
                          PythonFormat::integer(c.derivedDSae()) + "_";
    for (size_t k = 0; k < swept.size(); ++k) {
      const nlohmann::json& value = combination.values[swept[k]];
      combination.saeName += (k ? "_" : "") + swept[k] + "_" + pythonStr(value);
      // The suffix reads the SAE's config after __post_init__: a null lr_end is lr / 10 there.
      const nlohmann::json used = swept[k] == "lr_end" && value.is_null()
                                      ? nlohmann::json(c.effectiveLrEnd())
                                      : nlohmann::json(value);
      combination.metricSuffix += "_" + suffixKey(swept[k]) + pythonStr(used);
    }
    combination.folderName = safeFolderName(combination.saeName);
    const auto [it, inserted] = folders.emplace(combination.folderName, index);
    if (!inserted) {
      issues.push_back({swept.empty() ? "" : swept.back(),
                        "sweep combinations " + std::to_string(it->second) + " and " +
                            std::to_string(index) + " get the same name '" +
                            combination.folderName + "': a list repeats a value (" +
                            describeValues(combination.values) + ")"});
    }
    combinations.push_back(std::move(combination));
  }
  if (!issues.empty()) throw ConfigError(sourceName, issues);
  return combinations;
}

std::vector<SweepCombination> SweepExpansion::loadFile(const std::string& path) {
  std::string base;
  const nlohmann::json object = RunConfig::readJsonFile(path, &base);
  return expand(object, path, base);
}

void SweepExpansion::applyOverride(nlohmann::json& object, const std::string& keyEqualsValue) {
  const size_t equals = keyEqualsValue.find('=');
  RunConfig scratch;
  if (equals == std::string::npos) scratch.applyOverride(keyEqualsValue);  // throws: no '='
  std::string key = keyEqualsValue.substr(0, equals);
  key.erase(0, key.find_first_not_of(" \t"));
  key.erase(key.find_last_not_of(" \t") + 1);
  const std::string text = keyEqualsValue.substr(equals + 1);
  const ConfigField* field = ConfigSchema::find(key);
  const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) object = nlohmann::json::object();
  if (field && !parsed.is_discarded() && parsed.is_array()) {
    object[key] = parsed;  // expand() checks that the field may be swept
  } else {
    // RunConfig's reading of the value (types, strings, unknown keys named with a suggestion).
    scratch.applyOverride(keyEqualsValue);
    nlohmann::json value = field->get(scratch);
    if (field->isPath && value.is_string()) {
      // A path on the command line is relative to the working folder, not to the config file.
      const std::string path = value.get<std::string>();
      std::error_code ec;
      const bool local = path.rfind("./", 0) == 0 || path.rfind("../", 0) == 0 ||
                         (key != "model_name" && fs::exists(path, ec)) ||
                         (key == "model_name" && fs::is_directory(path, ec));
      if (!path.empty() && fs::path(path).is_relative() && local)
        value = fs::absolute(path, ec).lexically_normal().string();
    }
    object[key] = value;
  }
  // d_sae follows d_in * expansion_factor again, as RunConfig::applyOverride does.
  if (key == "d_in" || key == "expansion_factor") object.erase("d_sae");
}

}  // namespace sae
