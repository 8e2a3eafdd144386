#pragma once
// One description per config field: JSON load/save, validation, CLI overrides, the GUI form
// and the docs table all read this list, so adding a field is one line in ConfigSchema.cpp.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/RunConfig.h"

namespace sae {

enum class FieldType { Bool, Int, Float, String, Json };

// Pointer to the RunConfig member that holds the field's value.
using FieldBinding =
    std::variant<bool RunConfig::*, int64_t RunConfig::*, double RunConfig::*,
                 std::string RunConfig::*, std::optional<int64_t> RunConfig::*,
                 std::optional<double> RunConfig::*, std::optional<std::string> RunConfig::*,
                 nlohmann::json RunConfig::*>;

struct ConfigField {
  std::string name;   // SAELens name, also the JSON key
  std::string group;  // form group, e.g. "Model & hook"
  FieldBinding binding;
  std::string help;                  // one line, shown as tooltip and in --help-config
  std::optional<double> minimum;     // inclusive, numeric fields only
  std::optional<double> maximum;     // inclusive
  std::vector<std::string> choices;  // allowed strings; empty = free text
  bool isPath = false;               // resolved against the config file's folder
  bool advanced = false;             // W&B / compile fields the form can fold away
  // Added: strict bounds (lr > 0, adam betas < 1) keep minimum/maximum usable as spin-box limits.
  bool exclusiveMinimum = false;  // value must be > minimum
  bool exclusiveMaximum = false;  // value must be < maximum
  // May hold a list in a config file: a sweep, one SAE per combination (SweepExpansion). The
  // SAE, loss, schedule and optimiser fields; never those that define the shared activations.
  bool sweepable = false;
  bool caseInsensitiveChoices = false;  // lr_scheduler_name: SAELens lower-cases it

  FieldType type() const;
  bool nullable() const;
  nlohmann::json defaultValue() const;                // from a default-constructed RunConfig
  nlohmann::json get(const RunConfig& config) const;  // value as JSON (null for empty optional)
  // Store a JSON value; throws ConfigError with a message naming the field on a type mismatch.
  void set(RunConfig& config, const nlohmann::json& value) const;
};

class ConfigSchema {
 public:
  static const std::vector<ConfigField>& fields();
  static const ConfigField* find(const std::string& name);
  // The known field name closest to `name` (edit distance), for "did you mean" messages.
  static std::string closestName(const std::string& name);
  // Group names in display order (the notebook's order).
  static const std::vector<std::string>& groups();
  // Position of the field in fields(), or -1: validation and toJson use schema order.
  static int indexOf(const std::string& name);
  // Levenshtein distance behind closestName, for other "did you mean" messages.
  static size_t editDistance(const std::string& a, const std::string& b);
};

}  // namespace sae
