#include "config/ConfigSchema.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

namespace sae {

namespace {

// Group names. The first twelve follow the order the fields appear in the seed notebook's
// config cell, so the form reads like the notebook; "Advanced" folds away the rest.
const char* const kModel = "Model & hook";
const char* const kData = "Data";
const char* const kSize = "SAE size";
const char* const kLoss = "Loss";
const char* const kLr = "Learning rate";
const char* const kInit = "Initialisation";
const char* const kOptim = "Optimiser";
const char* const kBuffer = "Buffer";
const char* const kFeatures = "Feature tracking";
const char* const kLogging = "Logging";
const char* const kMisc = "Misc";
const char* const kSynthetic = "Synthetic data";
const char* const kAdvanced = "Advanced";

// Fluent builder so that each field below stays one readable statement.
struct Field {
  ConfigField f;
  Field(std::string name, std::string group, FieldBinding binding, std::string help) {
    f.name = std::move(name);
    f.group = std::move(group);
    f.binding = binding;
    f.help = std::move(help);
    f.advanced = f.group == kAdvanced;
  }
  Field& min(double v) {
    f.minimum = v;
    return *this;
  }
  Field& above(double v) {  // strictly greater than v
    f.minimum = v;
    f.exclusiveMinimum = true;
    return *this;
  }
  Field& max(double v) {
    f.maximum = v;
    return *this;
  }
  Field& below(double v) {  // strictly less than v
    f.maximum = v;
    f.exclusiveMaximum = true;
    return *this;
  }
  Field& choices(std::vector<std::string> c) {
    f.choices = std::move(c);
    return *this;
  }
  Field& path() {
    f.isPath = true;
    return *this;
  }
  Field& advanced() {
    f.advanced = true;
    return *this;
  }
  Field& sweep() {
    f.sweepable = true;
    return *this;
  }
  Field& anyCase() {
    f.caseInsensitiveChoices = true;
    return *this;
  }
};

std::vector<ConfigField> buildFields() {
  using R = RunConfig;
  std::vector<Field> list = {
      // --- Model & hook
      Field("model_name", kModel, &R::model_name,
            "TransformerLens model name or a local model folder; empty for synthetic data")
          .path(),
      Field("hook_point", kModel, &R::hook_point,
            "activation to train on, e.g. blocks.0.hook_mlp_out; {layer} = hook_point_layer"),
      Field("hook_point_layer", kModel, &R::hook_point_layer,
            "layer index; replaces {layer} in hook_point")
          .min(0),
      Field("d_in", kModel, &R::d_in, "width of the hooked activation (d_model for hook_mlp_out)")
          .min(1),
      Field("hook_point_head_index", kModel, &R::hook_point_head_index,
            "attention head to take from a per-head hook; null = all heads")
          .min(0),
      Field("model_class_name", kModel, &R::model_class_name,
            "TransformerLens model class; only HookedTransformer is supported")
          .choices({"HookedTransformer"}),
      Field("hook_point_eval", kModel, &R::hook_point_eval,
            "cached during evaluation but never used (kept for SAELens compatibility)")
          .advanced(),
      // --- Data
      Field("dataset_path", kData, &R::dataset_path,
            "token dataset: a local file or folder (parquet, npy, bin, jsonl) or a HF name")
          .path(),
      Field("context_size", kData, &R::context_size, "tokens per context (sequence length)").min(1),
      Field("is_dataset_tokenized", kData, &R::is_dataset_tokenized,
            "unused by SAELens: tokenisation is detected from the dataset's columns"),
      Field("prepend_bos", kData, &R::prepend_bos, "prepend a BOS token to every context"),
      Field("token_file_dtype", kData, &R::token_file_dtype,
            "element type of raw .bin token files (ignored for parquet, npy and jsonl)")
          .choices({"uint16", "uint32"}),
      Field("training_tokens", kData, &R::training_tokens,
            "activations (tokens) to train on; steps = tokens // train_batch_size")
          .min(0),
      Field("train_batch_size", kData, &R::train_batch_size, "activations (tokens) per SAE step")
          .min(1),
      Field("finetuning_tokens", kData, &R::finetuning_tokens,
            "extra tokens trained with finetuning_method after training_tokens")
          .min(0),
      Field("streaming", kData, &R::streaming, "stream the dataset instead of loading it whole")
          .advanced(),
      Field("use_cached_activations", kData, &R::use_cached_activations,
            "read activations saved earlier instead of running the model"),
      Field("cached_activations_path", kData, &R::cached_activations_path,
            "folder of cached activations; null = activations/<dataset>/<model>/<hook>")
          .path(),
      // --- SAE size
      Field("expansion_factor", kSize, &R::expansion_factor, "d_sae = d_in * expansion_factor")
          .min(1)
          .sweep(),
      Field("d_sae", kSize, &R::d_sae,
            "derived: d_in * expansion_factor (a different value is rejected)"),
      Field("activation_fn", kSize, &R::activation_fn, "SAE nonlinearity; tanh-relu = tanh(relu)")
          .choices({"relu", "tanh-relu"})
          .sweep(),
      Field("from_pretrained_path", kSize, &R::from_pretrained_path,
            "start from a saved SAE instead of a fresh initialisation")
          .path(),
      // --- Loss
      Field("mse_loss_normalization", kLoss, &R::mse_loss_normalization,
            "null = plain MSE; dense_batch divides by the batch's centred variance")
          .choices({"dense_batch"})
          .sweep(),
      Field("l1_coefficient", kLoss, &R::l1_coefficient, "weight of the sparsity penalty")
          .min(0)
          .sweep(),
      Field("lp_norm", kLoss, &R::lp_norm, "p of the sparsity penalty's Lp norm (1 = L1)")
          .above(0)
          .sweep(),
      Field("scale_sparsity_penalty_by_decoder_norm", kLoss,
            &R::scale_sparsity_penalty_by_decoder_norm,
            "weight each feature's penalty by its decoder row norm (April 2024 update)")
          .sweep(),
      Field("l1_warm_up_steps", kLoss, &R::l1_warm_up_steps,
            "steps over which the L1 coefficient ramps linearly from 0")
          .min(0)
          .sweep(),
      // --- Learning rate
      Field("lr_scheduler_name", kLr, &R::lr_scheduler_name,
            "main schedule between warm-up and decay (case-insensitive)")
          .choices({"constant", "cosineannealing", "cosineannealingwarmrestarts"})
          .anyCase()
          .sweep(),
      Field("lr_warm_up_steps", kLr, &R::lr_warm_up_steps,
            "steps of linear warm-up at the start (SAELens 1.5 default 500)")
          .min(0)
          .sweep(),
      Field("lr_decay_steps", kLr, &R::lr_decay_steps,
            "steps of linear decay to lr_end at the end of training")
          .min(0)
          .sweep(),
      Field("lr", kLr, &R::lr, "Adam learning rate").above(0).sweep(),
      Field("lr_end", kLr, &R::lr_end, "learning rate reached by decay or cosine; null = lr / 10")
          .min(0)
          .sweep(),
      Field("n_restart_cycles", kLr, &R::n_restart_cycles, "cycles of cosineannealingwarmrestarts")
          .min(1)
          .sweep(),
      // --- Initialisation
      Field("apply_b_dec_to_input", kInit, &R::apply_b_dec_to_input,
            "subtract b_dec from the input before encoding")
          .sweep(),
      Field("b_dec_init_method", kInit, &R::b_dec_init_method,
            "decoder bias initialisation from the first buffer")
          .choices({"geometric_median", "mean", "zeros"})
          .sweep(),
      Field("normalize_sae_decoder", kInit, &R::normalize_sae_decoder,
            "keep decoder rows at unit norm (must be false for the April 2024 recipe)")
          .sweep(),
      Field("decoder_heuristic_init", kInit, &R::decoder_heuristic_init,
            "decoder rows uniform [0,1) scaled to norm 0.1")
          .sweep(),
      Field("init_encoder_as_decoder_transpose", kInit, &R::init_encoder_as_decoder_transpose,
            "initialise W_enc as W_dec transposed")
          .sweep(),
      Field("decoder_orthogonal_init", kInit, &R::decoder_orthogonal_init,
            "orthogonal decoder initialisation")
          .sweep(),
      // --- Optimiser
      Field("adam_beta1", kOptim, &R::adam_beta1, "Adam beta1 (SAELens 1.5 default 0)")
          .min(0)
          .below(1)
          .sweep(),
      Field("adam_beta2", kOptim, &R::adam_beta2, "Adam beta2").min(0).below(1).sweep(),
      // --- Buffer
      Field("n_batches_in_buffer", kBuffer, &R::n_batches_in_buffer,
            "store batches held in the shuffling buffer (half is served per refill)")
          .min(2),
      Field("store_batch_size", kBuffer, &R::store_batch_size,
            "contexts per model forward pass when filling the buffer")
          .min(1),
      Field("normalize_activations", kBuffer, &R::normalize_activations,
            "scale activations to mean squared norm d_in"),
      // --- Feature tracking
      Field("use_ghost_grads", kFeatures, &R::use_ghost_grads,
            "add the ghost-gradient loss for dead features")
          .sweep(),
      Field("feature_sampling_window", kFeatures, &R::feature_sampling_window,
            "steps between resets of the feature-sparsity statistics")
          .min(1)
          .sweep(),
      Field("dead_feature_window", kFeatures, &R::dead_feature_window,
            "a feature that has not fired for this many steps counts as dead")
          .min(1)
          .sweep(),
      Field("dead_feature_threshold", kFeatures, &R::dead_feature_threshold,
            "unused in language-model training (kept for SAELens compatibility)")
          .min(0),
      // --- Logging
      Field("log_to_wandb", kLogging, &R::log_to_wandb,
            "kept for compatibility: metrics always go to the run folder"),
      Field("wandb_project", kLogging, &R::wandb_project, "project name recorded with the run"),
      Field("wandb_log_frequency", kLogging, &R::wandb_log_frequency, "steps between metric logs")
          .min(1),
      Field("eval_every_n_wandb_logs", kLogging, &R::eval_every_n_wandb_logs,
            "metric logs between evaluations (CE loss score, L0, ...)")
          .min(1),
      Field("n_eval_batches", kLogging, &R::n_eval_batches, "batches per evaluation").min(1),
      Field("eval_batch_size_prompts", kLogging, &R::eval_batch_size_prompts,
            "contexts per evaluation batch; null = store_batch_size")
          .min(1),
      Field("run_name", kLogging, &R::run_name,
            "null = {d_sae}-L1-{l1_coefficient}-LR-{lr}-Tokens-{training_tokens:3.3e}"),
      Field("wandb_id", kLogging, &R::wandb_id, "run id; null = generated").advanced(),
      Field("wandb_entity", kLogging, &R::wandb_entity, "W&B entity (unused)").advanced(),
      Field("log_activations_store_to_wandb", kLogging, &R::log_activations_store_to_wandb,
            "unused (kept for SAELens compatibility)")
          .advanced(),
      Field("log_optimizer_state_to_wandb", kLogging, &R::log_optimizer_state_to_wandb,
            "unused (kept for SAELens compatibility)")
          .advanced(),
      // --- Misc
      Field("device", kMisc, &R::device, "cpu, cuda, cuda:N or mps"),
      Field("seed", kMisc, &R::seed, "random seed (SAELens 1.5 never used it; SAE Workbench does)"),
      Field("n_checkpoints", kMisc, &R::n_checkpoints,
            "checkpoints saved during training, besides the final one")
          .min(0),
      Field("checkpoint_path", kMisc, &R::checkpoint_path, "folder that receives checkpoints"),
      Field("dtype", kMisc, &R::dtype, "SAE parameter dtype")
          .choices({"float32", "float64", "float16", "bfloat16", "torch.float32", "torch.float64",
                    "torch.float16", "torch.bfloat16"}),
      Field("num_threads", kMisc, &R::num_threads, "CPU threads for training; 0 = all").min(0),
      Field("verbose", kMisc, &R::verbose, "print the SAELens preamble before training"),
      Field("resume", kMisc, &R::resume, "resume from the latest checkpoint"),
      // --- Synthetic data
      Field("use_synthetic_activations", kSynthetic, &R::use_synthetic_activations,
            "train on generated activations with known true features; no model or dataset"),
      Field("synthetic_n_features", kSynthetic, &R::synthetic_n_features,
            "true features in superposition")
          .min(1),
      Field("synthetic_feature_probability", kSynthetic, &R::synthetic_feature_probability,
            "chance that each true feature fires on a token")
          .above(0)
          .max(1),
      Field("synthetic_noise_std", kSynthetic, &R::synthetic_noise_std,
            "standard deviation of Gaussian noise added to every activation")
          .min(0),
      Field("synthetic_seed", kSynthetic, &R::synthetic_seed,
            "seed of the true feature directions and the activation stream")
          .min(0),
      // --- Advanced
      Field("finetuning_method", kAdvanced, &R::finetuning_method,
            "parameters trained during finetuning_tokens; null = no finetuning")
          .choices({"scale", "decoder", "unrotated_decoder"}),
      Field("noise_scale", kAdvanced, &R::noise_scale,
            "std of Gaussian noise added to the SAE's pre-activations")
          .min(0)
          .sweep(),
      Field("model_kwargs", kAdvanced, &R::model_kwargs,
            "extra keyword arguments of the model run"),
      Field("model_from_pretrained_kwargs", kAdvanced, &R::model_from_pretrained_kwargs,
            "extra keyword arguments for loading the model"),
      Field("autocast", kAdvanced, &R::autocast, "mixed precision (bf16) for the SAE"),
      Field("compile_llm", kAdvanced, &R::compile_llm, "torch.compile the model (no-op here)"),
      Field("llm_compilation_mode", kAdvanced, &R::llm_compilation_mode,
            "torch.compile mode for the model"),
      Field("compile_sae", kAdvanced, &R::compile_sae, "torch.compile the SAE (no-op here)"),
      Field("sae_compilation_mode", kAdvanced, &R::sae_compilation_mode,
            "torch.compile mode for the SAE"),
      Field("sae_lens_version", kAdvanced, &R::sae_lens_version,
            "SAELens version whose semantics this config follows"),
      Field("sae_lens_training_version", kAdvanced, &R::sae_lens_training_version,
            "SAELens version recorded as the training version"),
  };
  std::vector<ConfigField> fields;
  fields.reserve(list.size());
  for (auto& field : list)
    fields.push_back(std::move(field.f));
  return fields;
}

template <typename T>
struct MemberValue;
template <typename T>
struct MemberValue<T RunConfig::*> {
  using type = T;
};

std::string truncated(std::string text) {
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

// "got \"abc\" (a string)": the value as written and what JSON type it was.
std::string describe(const nlohmann::json& value) {
  std::string kind;
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      kind = "a boolean";
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      kind = "an integer";
      break;
    case nlohmann::json::value_t::number_float:
      kind = "a number";
      break;
    case nlohmann::json::value_t::string:
      kind = "a string";
      break;
    case nlohmann::json::value_t::array:
      kind = "a list";
      break;
    case nlohmann::json::value_t::object:
      kind = "an object";
      break;
    default:
      kind = "an unsupported value";
      break;
  }
  return truncated(value.dump()) + " (" + kind + ")";
}

[[noreturn]] void typeError(const ConfigField& field, const std::string& expected,
                            const nlohmann::json& value) {
  const std::string message = field.name + ": expected " + expected + ", got " + describe(value);
  throw ConfigError("config field '" + field.name + "'", {{field.name, message}});
}

std::string expectedText(FieldType type, bool nullable) {
  std::string text;
  switch (type) {
    case FieldType::Bool:
      text = "true or false";
      break;
    case FieldType::Int:
      text = "an integer";
      break;
    case FieldType::Float:
      text = "a number";
      break;
    case FieldType::String:
      text = "a string";
      break;
    case FieldType::Json:
      text = "a JSON object";
      break;
  }
  return nullable ? text + " or null" : text;
}

int64_t toInt(const ConfigField& field, const nlohmann::json& value) {
  if (value.is_number_integer() && !value.is_number_unsigned()) return value.get<int64_t>();
  if (value.is_number_unsigned()) {
    const auto u = value.get<uint64_t>();
    if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(u);
    }
  }
  // 2e6 is a natural way to write two million tokens in JSON: accept whole-valued numbers.
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) {
      return static_cast<int64_t>(d);
    }
  }
  typeError(field, expectedText(FieldType::Int, field.nullable()), value);
}

}  // namespace

FieldType ConfigField::type() const {
  return std::visit(
      [](auto member) {
        using T = typename MemberValue<decltype(member)>::type;
        if constexpr (std::is_same_v<T, bool>) return FieldType::Bool;
        if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, std::optional<int64_t>>)
          return FieldType::Int;
        if constexpr (std::is_same_v<T, double> || std::is_same_v<T, std::optional<double>>)
          return FieldType::Float;
        if constexpr (std::is_same_v<T, std::string> ||
                      std::is_same_v<T, std::optional<std::string>>)
          return FieldType::String;
        return FieldType::Json;
      },
      binding);
}

bool ConfigField::nullable() const {
  return std::holds_alternative<std::optional<int64_t> RunConfig::*>(binding) ||
         std::holds_alternative<std::optional<double> RunConfig::*>(binding) ||
         std::holds_alternative<std::optional<std::string> RunConfig::*>(binding);
}

nlohmann::json ConfigField::defaultValue() const {
  return get(RunConfig{});
}

nlohmann::json ConfigField::get(const RunConfig& config) const {
  return std::visit(
      [&config](auto member) -> nlohmann::json {
        const auto& value = config.*member;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, std::optional<int64_t>> ||
                      std::is_same_v<T, std::optional<double>> ||
                      std::is_same_v<T, std::optional<std::string>>) {
          if (!value) return nullptr;
          return *value;
        } else {
          return value;
        }
      },
      binding);
}

void ConfigField::set(RunConfig& config, const nlohmann::json& value) const {
  if (value.is_array() && sweepable) {
    // Lists are expanded by SweepExpansion before any RunConfig is filled: one run holds one
    // value per field.
    throw ConfigError("config field '" + name + "'",
                      {{name, name + ": a list of values is a sweep (one SAE per combination): "
                                     "train the file with sae-train --config FILE; one run "
                                     "takes one value here"}});
  }
  const FieldType fieldType = type();
  const std::string expected = expectedText(fieldType, nullable());
  if (value.is_null()) {
    if (!nullable()) typeError(*this, expected, value);
    std::visit(
        [&config](auto member) {
          using T = typename MemberValue<decltype(member)>::type;
          if constexpr (std::is_same_v<T, std::optional<int64_t>> ||
                        std::is_same_v<T, std::optional<double>> ||
                        std::is_same_v<T, std::optional<std::string>>) {
            (config.*member).reset();
          }
        },
        binding);
    return;
  }
  std::visit(
      [&](auto member) {
        using T = typename MemberValue<decltype(member)>::type;
        if constexpr (std::is_same_v<T, bool>) {
          if (!value.is_boolean()) typeError(*this, expected, value);
          config.*member = value.get<bool>();
        } else if constexpr (std::is_same_v<T, int64_t> ||
                             std::is_same_v<T, std::optional<int64_t>>) {
          config.*member = toInt(*this, value);
        } else if constexpr (std::is_same_v<T, double> ||
                             std::is_same_v<T, std::optional<double>>) {
          if (!value.is_number()) typeError(*this, expected, value);
          config.*member = value.get<double>();
        } else if constexpr (std::is_same_v<T, std::string> ||
                             std::is_same_v<T, std::optional<std::string>>) {
          if (!value.is_string()) typeError(*this, expected, value);
          config.*member = value.get<std::string>();
        } else {
          if (!value.is_object()) typeError(*this, expected, value);
          config.*member = value;
        }
      },
      binding);
}

const std::vector<ConfigField>& ConfigSchema::fields() {
  static const std::vector<ConfigField> list = buildFields();
  return list;
}

const ConfigField* ConfigSchema::find(const std::string& name) {
  const int index = indexOf(name);
  return index < 0 ? nullptr : &fields()[static_cast<size_t>(index)];
}

int ConfigSchema::indexOf(const std::string& name) {
  const auto& list = fields();
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

size_t ConfigSchema::editDistance(const std::string& a, const std::string& b) {
  // Two-row Levenshtein: insertions, deletions and substitutions all cost 1.
  std::vector<size_t> previous(b.size() + 1), current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    previous[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

std::string ConfigSchema::closestName(const std::string& name) {
  // A field that contains what was typed ("expansion" -> "expansion_factor") beats a short
  // unrelated name at the same edit distance; otherwise plain Levenshtein.
  std::string best;
  size_t bestDistance = std::numeric_limits<size_t>::max();
  bool bestContains = false;
  for (const auto& field : fields()) {
    const bool containsName = name.size() >= 3 && field.name.find(name) != std::string::npos;
    const size_t distance = editDistance(name, field.name);
    // Ties keep the earlier (schema-order) field.
    if ((containsName && !bestContains) ||
        (containsName == bestContains && distance < bestDistance)) {
      bestDistance = distance;
      best = field.name;
      bestContains = containsName;
    }
  }
  return best;
}

const std::vector<std::string>& ConfigSchema::groups() {
  static const std::vector<std::string> list = {kModel, kData,      kSize,    kLoss,     kLr,
                                                kInit,  kOptim,     kBuffer,  kFeatures, kLogging,
                                                kMisc,  kSynthetic, kAdvanced};
  return list;
}

}  // namespace sae
