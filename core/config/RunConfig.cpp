#include "config/RunConfig.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>
#include <utility>

#include "config/AtomicFile.h"
#include "config/ConfigSchema.h"
#include "config/PythonFormat.h"

namespace sae {

namespace {

namespace fs = std::filesystem;
using Issue = ConfigError::Issue;

// Python's // on ints floors; C++'s / truncates. The counts here are non-negative after
// validation, but the preamble may be printed for an invalid config too.
int64_t floorDiv(int64_t a, int64_t b) {
  // INT64_MIN / -1 traps; its true quotient 2^63 is one past what int64 holds.
  if (b == -1)
    return a == std::numeric_limits<int64_t>::min() ? std::numeric_limits<int64_t>::max() : -a;
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string replaceAll(std::string text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  size_t pos = 0;
  while ((pos = text.find(from, pos)) != std::string::npos) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

std::string joined(const std::vector<std::string>& items, const std::string& separator) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i)
    text += (i ? separator : "") + items[i];
  return text;
}

// A bound as a reader would write it: "1", "0", "0.5".
std::string boundText(double value) {
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return PythonFormat::integer(static_cast<int64_t>(value));
  }
  return PythonFormat::repr(value);
}

std::string rangeText(const ConfigField& field) {
  const auto& lo = field.minimum;
  const auto& hi = field.maximum;
  if (lo && hi) {
    return "in " + std::string(field.exclusiveMinimum ? "(" : "[") + boundText(*lo) + ", " +
           boundText(*hi) + (field.exclusiveMaximum ? ")" : "]");
  }
  if (lo) return (field.exclusiveMinimum ? "greater than " : "at least ") + boundText(*lo);
  return (field.exclusiveMaximum ? "less than " : "at most ") + boundText(*hi);
}

std::string unknownFieldMessage(const std::string& key) {
  const std::string suggestion = ConfigSchema::closestName(key);
  // A suggestion only helps when it is plausibly a typo of what was written.
  const size_t limit = std::max<size_t>(3, key.size() / 3);
  const bool typo = ConfigSchema::editDistance(key, suggestion) <= limit;
  const bool part = key.size() >= 3 && suggestion.find(key) != std::string::npos;
  if (!suggestion.empty() && (typo || part)) {
    return "unknown field '" + key + "'; did you mean '" + suggestion + "'?";
  }
  return "unknown field '" + key + "'";
}

bool validDevice(const std::string& device) {
  if (device == "cpu" || device == "cuda" || device == "mps") return true;
  const std::string prefix = "cuda:";
  if (device.size() <= prefix.size() || device.compare(0, prefix.size(), prefix) != 0) {
    return false;
  }
  return std::all_of(device.begin() + static_cast<long>(prefix.size()), device.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; });
}

// Byte offset -> 1-based line and column of the character nlohmann read last.
std::pair<size_t, size_t> lineAndColumn(const std::string& text, size_t byte) {
  const size_t end = std::min(byte, text.size());
  size_t line = 1, column = 0;
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 0;
    } else {
      ++column;
    }
  }
  return {line, std::max<size_t>(column, 1)};
}

// nlohmann's what() is "[json.exception.parse_error.101] parse error at line 3, column 5:
// syntax error while parsing value - ..."; keep the part after the position.
std::string parseReason(const std::string& what) {
  const size_t column = what.find("column ");
  if (column != std::string::npos) {
    const size_t colon = what.find(": ", column);
    if (colon != std::string::npos) return what.substr(colon + 2);
  }
  const size_t bracket = what.find("] ");
  return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

std::string resolvePath(const ConfigField& field, const std::string& value,
                        const std::string& baseDir) {
  if (value.empty() || baseDir.empty()) return value;
  const fs::path path(value);
  if (path.is_absolute()) return value;
  const fs::path candidate = (fs::path(baseDir) / path).lexically_normal();
  std::error_code ec;
  if (field.name == "model_name") {
    // "gelu-1l" is a model name, not a path, unless a folder of that name sits beside the file.
    return fs::is_directory(candidate, ec) ? candidate.string() : value;
  }
  // "NeelNanda/c4-tokenized-2b" may be a hub name: resolve only what is clearly local.
  const bool explicitRelative = value.rfind("./", 0) == 0 || value.rfind("../", 0) == 0;
  if (explicitRelative || fs::exists(candidate, ec)) return candidate.string();
  return value;
}

}  // namespace

// ------------------------------------------------------------------ loading & saving

RunConfig RunConfig::fromJson(const nlohmann::json& object, const std::string& sourceName,
                              const std::string& baseDir) {
  if (!object.is_object()) {
    throw ConfigError(sourceName, {{"", "expected a JSON object of config fields, got " +
                                            std::string(object.type_name())}});
  }
  RunConfig config;
  std::vector<std::pair<int, Issue>> issues;  // (schema index, issue): reported in schema order
  std::vector<std::string> badFields;
  for (const auto& [key, value] : object.items()) {
    const int index = ConfigSchema::indexOf(key);
    if (index < 0) {
      issues.push_back({-1, {key, unknownFieldMessage(key)}});
      continue;
    }
    const ConfigField& field = ConfigSchema::fields()[static_cast<size_t>(index)];
    try {
      field.set(config, value);
      if (field.isPath && value.is_string()) {
        field.set(config, resolvePath(field, value.get<std::string>(), baseDir));
      }
    } catch (const ConfigError& error) {
      for (const auto& issue : error.issues())
        issues.push_back({index, issue});
      badFields.push_back(key);
    }
  }
  // Rules on fields that failed to parse would only repeat the problem with a default value.
  for (auto& issue : config.validate()) {
    if (std::find(badFields.begin(), badFields.end(), issue.field) != badFields.end()) continue;
    issues.push_back({ConfigSchema::indexOf(issue.field), std::move(issue)});
  }
  if (!issues.empty()) {
    std::stable_sort(issues.begin(), issues.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<Issue> list;
    for (auto& entry : issues)
      list.push_back(std::move(entry.second));
    throw ConfigError(sourceName, std::move(list));
  }
  config.d_sae = config.derivedDSae();  // as SAELens's __post_init__
  return config;
}

nlohmann::json RunConfig::readJsonFile(const std::string& path, std::string* baseDir) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError("cannot read config file '" + path + "': " + std::strerror(errno));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    const auto [line, column] = lineAndColumn(text, error.byte);
    throw ConfigError(path + ": invalid JSON at line " + std::to_string(line) + ", column " +
                      std::to_string(column) + ": " + parseReason(error.what()));
  }
  if (baseDir) {
    std::error_code ec;
    fs::path base = fs::absolute(fs::path(path), ec).parent_path();
    if (ec) base = fs::path(path).parent_path();
    *baseDir = base.string();
  }
  return object;
}

RunConfig RunConfig::loadFile(const std::string& path) {
  std::string base;
  const nlohmann::json object = readJsonFile(path, &base);
  return fromJson(object, path, base);
}

nlohmann::ordered_json RunConfig::toOrderedJson() const {
  RunConfig normalized = *this;
  normalized.d_sae = derivedDSae();
  nlohmann::ordered_json object = nlohmann::ordered_json::object();
  for (const auto& field : ConfigSchema::fields()) {
    object[field.name] = nlohmann::ordered_json(field.get(normalized));
  }
  return object;
}

nlohmann::json RunConfig::toJson() const {
  return nlohmann::json(toOrderedJson());
}

void RunConfig::saveFile(const std::string& path) const {
  AtomicFile::write(path, toOrderedJson().dump(2) + "\n");
}

void RunConfig::applyOverride(const std::string& keyEqualsValue) {
  const std::string source = "override '" + keyEqualsValue + "'";
  const size_t equals = keyEqualsValue.find('=');
  if (equals == std::string::npos) {
    throw ConfigError(source, {{"", "expected key=value, e.g. l1_coefficient=0.005"}});
  }
  std::string key = keyEqualsValue.substr(0, equals);
  key.erase(0, key.find_first_not_of(" \t"));
  key.erase(key.find_last_not_of(" \t") + 1);
  const std::string text = keyEqualsValue.substr(equals + 1);
  const ConfigField* field = ConfigSchema::find(key);
  if (!field) throw ConfigError(source, {{key, unknownFieldMessage(key)}});

  nlohmann::json value = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;
  // wandb_id=12345 or run_name=true mean the text itself: only "null" and quoted strings
  // are read as JSON for string fields.
  if (field->type() == FieldType::String && !value.is_string() && !value.is_null()) {
    value = text;
  }
  try {
    field->set(*this, value);
  } catch (const ConfigError& error) {
    throw ConfigError(source, error.issues());
  }
  if (key != "d_sae") d_sae = derivedDSae();
}

// ------------------------------------------------------------------ validation

std::vector<ConfigError::Issue> RunConfig::validate() const {
  std::vector<std::pair<int, Issue>> found;
  auto add = [&found](const std::string& field, std::string message) {
    found.push_back({ConfigSchema::indexOf(field), {field, field + ": " + std::move(message)}});
  };

  // Ranges and choices straight from the schema.
  for (const auto& field : ConfigSchema::fields()) {
    const nlohmann::json value = field.get(*this);
    if (value.is_null()) continue;
    if (value.is_number() && (field.minimum || field.maximum)) {
      const double x = value.get<double>();
      bool ok = !std::isnan(x);
      if (field.minimum)
        ok = ok && (field.exclusiveMinimum ? x > *field.minimum : x >= *field.minimum);
      if (field.maximum)
        ok = ok && (field.exclusiveMaximum ? x < *field.maximum : x <= *field.maximum);
      if (!ok) add(field.name, value.dump() + " is not allowed: must be " + rangeText(field));
    }
    if (value.is_string() && !field.choices.empty()) {
      const std::string text = value.get<std::string>();
      const bool ok =
          std::any_of(field.choices.begin(), field.choices.end(), [&](const std::string& choice) {
            return field.caseInsensitiveChoices ? lower(choice) == lower(text) : choice == text;
          });
      if (ok) continue;
      if (field.name == "lr_scheduler_name") {
        // SAELens's own wording (optim.py), with the choices added.
        add(field.name,
            "Unsupported scheduler: " + text + "; choose one of " + joined(field.choices, ", "));
      } else {
        add(field.name, value.dump() + " is not allowed: choose " +
                            (field.nullable() ? "null or " : "") + "one of " +
                            joined(field.choices, ", "));
      }
    }
  }

  // SAELens's __post_init__ rejections.
  if (normalize_sae_decoder && decoder_heuristic_init) {
    add("normalize_sae_decoder",
        "true cannot be combined with decoder_heuristic_init = true (SAELens: \"You can't "
        "normalize the decoder and use heuristic initialization.\"); set normalize_sae_decoder "
        "to false to use decoder_heuristic_init");
  }
  if (normalize_sae_decoder && scale_sparsity_penalty_by_decoder_norm) {
    add("normalize_sae_decoder",
        "true cannot be combined with scale_sparsity_penalty_by_decoder_norm = true (SAELens: "
        "\"Weighting loss by decoder norm makes no sense if you are normalizing the decoder "
        "weight norms to 1\"); set normalize_sae_decoder to false to use "
        "scale_sparsity_penalty_by_decoder_norm");
  }
  if (finetuning_method && *finetuning_method == "decoder" && apply_b_dec_to_input) {
    add("finetuning_method",
        "\"decoder\" cannot be combined with apply_b_dec_to_input = true (SAELens: \"If we are "
        "fine tuning the decoder, we can't be applying b_dec to the input.\"); set "
        "apply_b_dec_to_input to false");
  }
  if (lr_decay_steps > 0 && effectiveLrEnd() == 0.0) {
    add("lr_end",
        "Cannot have decay_steps with lr_end=0.0, this would decay from 0 to 0 and be "
        "a waste. (lr_decay_steps = " +
            PythonFormat::integer(lr_decay_steps) + ")");
  }

  // Derived d_sae: a different explicit value would be silently dropped by SAELens.
  if (d_sae && *d_sae != derivedDSae()) {
    add("d_sae", PythonFormat::integer(*d_sae) + " does not match d_in * expansion_factor = " +
                     PythonFormat::integer(derivedDSae()) +
                     "; d_sae is derived (as in SAELens): change expansion_factor or set d_sae "
                     "to null");
  }

  // Products and sums of unbounded fields must fit in int64: they overflowed (undefined
  // behaviour) into a wrong d_sae or step count. Inputs: tests/fixtures/fuzz-regressions/config.
  int64_t unused = 0;
  if (__builtin_mul_overflow(d_in, expansion_factor, &unused)) {
    add("expansion_factor", "d_in * expansion_factor = " + PythonFormat::integer(d_in) + " * " +
                                PythonFormat::integer(expansion_factor) +
                                " does not fit in a 64-bit integer; use a realistic SAE width");
  }
  if (__builtin_add_overflow(training_tokens, finetuning_tokens, &unused)) {
    add("finetuning_tokens",
        "training_tokens + finetuning_tokens = " + PythonFormat::integer(training_tokens) + " + " +
            PythonFormat::integer(finetuning_tokens) + " does not fit in a 64-bit integer");
  }

  // Enough tokens for the schedule to make sense.
  if (train_batch_size >= 1 && training_tokens >= 0 && finetuning_tokens >= 0) {
    const int64_t steps = totalSteps();
    if (steps < 1) {
      add("training_tokens", PythonFormat::integer(training_tokens) +
                                 " gives no training step: needs at least "
                                 "train_batch_size = " +
                                 PythonFormat::integer(train_batch_size) + " tokens");
    } else if (lr_decay_steps > 0 && lr_warm_up_steps >= 0 &&
               lr_decay_steps > steps - lr_warm_up_steps) {
      // With decay the two phases would overlap (SequentialLR's milestones out of order).
      // Warm-up alone may outlast training: SAELens's own defaults do (500 of 488 steps).
      add("lr_decay_steps",
          "lr_warm_up_steps + lr_decay_steps = " + PythonFormat::integer(lr_warm_up_steps) + " + " +
              PythonFormat::integer(lr_decay_steps) + " exceeds the " +
              PythonFormat::integer(steps) +
              " total training steps; shorten them or train on more tokens");
    }
  }

  if (!validDevice(device)) {
    add("device",
        "\"" + device + "\" is not allowed: use cpu, cuda, cuda:N (N = 0, 1, ...) or mps");
  }

  // Where activations come from.
  if (use_cached_activations && use_synthetic_activations) {
    add("use_synthetic_activations",
        "true cannot be combined with use_cached_activations = true; choose one source");
  }
  if (use_cached_activations && !cached_activations_path &&
      (dataset_path.empty() || model_name.empty())) {
    add("use_cached_activations",
        "true needs cached_activations_path (or dataset_path and model_name to derive it)");
  }
  if (!use_synthetic_activations) {
    // Cached activations need no model (CE evals are then skipped).
    if (model_name.empty() && !use_cached_activations) {
      add("model_name",
          "\"\" is not allowed: name a model or model folder, or set "
          "use_synthetic_activations or use_cached_activations to true");
    }
    if (hook_point.empty()) {
      add("hook_point", "\"\" is not allowed: name the activation, e.g. blocks.0.hook_mlp_out");
    }
    if (dataset_path.empty() && !(use_cached_activations && cached_activations_path)) {
      add("dataset_path",
          "\"\" is not allowed: give a token dataset, or set use_synthetic_activations to true");
    }
  }

  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Issue> issues;
  for (auto& entry : found)
    issues.push_back(std::move(entry.second));
  return issues;
}

// ------------------------------------------------------------------ derived values

// Both saturate rather than overflow; validate() rejects a config where they would.
int64_t RunConfig::derivedDSae() const {
  int64_t product = 0;
  if (!__builtin_mul_overflow(d_in, expansion_factor, &product)) return product;
  return (d_in < 0) != (expansion_factor < 0) ? std::numeric_limits<int64_t>::min()
                                              : std::numeric_limits<int64_t>::max();
}

int64_t RunConfig::totalTrainingTokens() const {
  int64_t sum = 0;
  if (!__builtin_add_overflow(training_tokens, finetuning_tokens, &sum)) return sum;
  return training_tokens < 0 ? std::numeric_limits<int64_t>::min()
                             : std::numeric_limits<int64_t>::max();
}

int64_t RunConfig::totalSteps() const {
  return train_batch_size > 0 ? floorDiv(totalTrainingTokens(), train_batch_size) : 0;
}

double RunConfig::effectiveLrEnd() const {
  return lr_end ? *lr_end : lr / 10;
}

int64_t RunConfig::effectiveEvalBatchSizePrompts() const {
  return eval_batch_size_prompts ? *eval_batch_size_prompts : store_batch_size;
}

int RunConfig::hookLayer() const {
  return static_cast<int>(hook_point_layer);
}

std::string RunConfig::resolvedHookPoint() const {
  return replaceAll(hook_point, "{layer}", PythonFormat::integer(hook_point_layer));
}

std::string RunConfig::defaultRunName() const {
  // f"{d_sae}-L1-{l1_coefficient}-LR-{lr}-Tokens-{training_tokens:3.3e}"
  return PythonFormat::integer(derivedDSae()) + "-L1-" + PythonFormat::repr(l1_coefficient) +
         "-LR-" + PythonFormat::repr(lr) + "-Tokens-" +
         PythonFormat::scientific(static_cast<double>(training_tokens), 3);
}

std::string RunConfig::effectiveRunName() const {
  return run_name ? *run_name : defaultRunName();
}

std::string RunConfig::resolvedCachedActivationsPath() const {
  if (cached_activations_path) return *cached_activations_path;
  std::string path = "activations/" + replaceAll(dataset_path, "/", "_") + "/" +
                     replaceAll(model_name, "/", "_") + "/" + resolvedHookPoint();
  if (hook_point_head_index) path += "_" + PythonFormat::integer(*hook_point_head_index);
  return path;
}

std::vector<std::string> RunConfig::preambleLines() const {
  const int64_t S = store_batch_size, C = context_size, N = n_batches_in_buffer;
  const int64_t B = train_batch_size, T = totalTrainingTokens();
  // Python's int / int is the correctly rounded quotient; for products below 2^53 that is
  // exactly the double product / 1e6. Products are taken in double: in int64 a valid config with
  // huge sizes overflowed (tests/fixtures/fuzz-regressions/config).
  auto millions = [](double n) { return PythonFormat::repr(n / 1e6); };
  auto product = [](int64_t a, int64_t b, int64_t c) {
    return static_cast<double>(a) * static_cast<double>(b) * static_cast<double>(c);
  };
  // Python would raise ZeroDivisionError; an invalid config still gets a readable preamble.
  auto div = [](int64_t a, int64_t b) {
    return b == 0 ? std::string("nan") : PythonFormat::integer(floorDiv(a, b));
  };
  const int64_t steps = B == 0 ? 0 : floorDiv(T, B);
  std::vector<std::string> lines = {
      "Run name: " + defaultRunName(),
      "n_tokens_per_buffer (millions): " + millions(product(S, C, N)),
      "Lower bound: n_contexts_per_buffer (millions): " + millions(product(S, N, 1)),
      "Total training steps: " + div(T, B),
      "Total wandb updates: " + div(steps, wandb_log_frequency),
      "n_tokens_per_feature_sampling_window (millions): " +
          millions(product(feature_sampling_window, C, B)),
      "n_tokens_per_dead_feature_window (millions): " +
          millions(product(dead_feature_window, C, B)),
      "We will reset the sparsity calculation " + div(steps, feature_sampling_window) + " times.",
      "Number tokens in sparsity calculation window: " +
          PythonFormat::scientific(product(feature_sampling_window, B, 1), 2),
  };
  if (use_ghost_grads) lines.push_back("Using Ghost Grads.");
  return lines;
}

int RunConfig::effectiveNumThreads() const {
  if (num_threads > 0) return static_cast<int>(num_threads);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace sae
