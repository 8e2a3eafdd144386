#pragma once
// The training configuration: every field of SAELens 1.5's LanguageModelSAERunnerConfig under
// the same name and with the same default, plus the fields SAE Workbench adds (grouped under
// "workbench" and "synthetic" in the schema). Torch-free on purpose: the GUI form includes it.
//
// Member names deliberately use SAELens's snake_case so a config file, the schema, the docs
// and the code all say the same word.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/ConfigError.h"

namespace sae {

struct RunConfig {
  // --- model & hook ---
  std::string model_name = "gelu-2l";
  std::string model_class_name = "HookedTransformer";
  std::string hook_point = "blocks.{layer}.hook_mlp_out";
  std::string hook_point_eval = "blocks.{layer}.attn.pattern";
  int64_t hook_point_layer = 0;
  std::optional<int64_t> hook_point_head_index;
  // --- data ---
  std::string dataset_path = "NeelNanda/c4-tokenized-2b";
  bool streaming = true;
  bool is_dataset_tokenized = true;
  int64_t context_size = 128;
  bool use_cached_activations = false;
  // null: derived (see resolvedCachedActivationsPath)
  std::optional<std::string> cached_activations_path;
  bool prepend_bos = true;
  // Element type of raw .bin token files, which carry no header to say it.
  std::string token_file_dtype = "uint16";
  // --- SAE size & architecture ---
  int64_t d_in = 512;
  // Derived from d_in * expansion_factor: fromJson and applyOverride fill it in (as SAELens's
  // __post_init__); an explicit different value is reported by validate() instead of dropped.
  std::optional<int64_t> d_sae;
  int64_t expansion_factor = 4;
  std::string activation_fn = "relu";
  bool apply_b_dec_to_input = true;
  std::optional<std::string> from_pretrained_path;
  // --- initialisation ---
  std::string b_dec_init_method = "geometric_median";
  bool normalize_sae_decoder = true;
  bool decoder_orthogonal_init = false;
  bool decoder_heuristic_init = false;
  bool init_encoder_as_decoder_transpose = false;
  double noise_scale = 0.0;
  // --- activation store / buffer ---
  int64_t n_batches_in_buffer = 20;
  int64_t training_tokens = 2'000'000;
  int64_t finetuning_tokens = 0;
  int64_t store_batch_size = 32;
  int64_t train_batch_size = 4096;
  bool normalize_activations = false;
  // --- misc ---
  std::string device = "cpu";
  int64_t seed = 42;
  std::string dtype = "float32";
  // --- optimiser ---
  double adam_beta1 = 0.0;
  double adam_beta2 = 0.999;
  // --- loss ---
  std::optional<std::string> mse_loss_normalization;
  double l1_coefficient = 1e-3;
  double lp_norm = 1.0;
  bool scale_sparsity_penalty_by_decoder_norm = false;
  int64_t l1_warm_up_steps = 0;
  // --- learning rate ---
  double lr = 3e-4;
  std::string lr_scheduler_name = "constant";
  int64_t lr_warm_up_steps = 500;
  std::optional<double> lr_end;  // null: lr / 10
  int64_t lr_decay_steps = 0;
  int64_t n_restart_cycles = 1;
  // --- finetuning ---
  std::optional<std::string> finetuning_method;
  // --- feature tracking ---
  bool use_ghost_grads = false;
  int64_t feature_sampling_window = 2000;
  int64_t dead_feature_window = 1000;
  double dead_feature_threshold = 1e-8;
  // --- logging (W&B fields kept for compatibility; logging goes to files) ---
  bool log_to_wandb = true;
  bool log_activations_store_to_wandb = false;
  bool log_optimizer_state_to_wandb = false;
  std::string wandb_project = "mats_sae_training_language_model";
  std::optional<std::string> wandb_id;
  std::optional<std::string> run_name;
  std::optional<std::string> wandb_entity;
  int64_t wandb_log_frequency = 10;
  int64_t eval_every_n_wandb_logs = 100;
  // --- checkpoints & other ---
  bool resume = false;
  int64_t n_checkpoints = 0;
  std::string checkpoint_path = "checkpoints";
  bool verbose = true;
  nlohmann::json model_kwargs = nlohmann::json::object();
  std::string sae_lens_version = "1.5.0";
  std::string sae_lens_training_version = "1.5.0";
  // --- added in SAELens 1.6-1.8 ---
  bool autocast = false;
  bool compile_llm = false;
  std::optional<std::string> llm_compilation_mode;
  bool compile_sae = false;
  std::optional<std::string> sae_compilation_mode;
  int64_t n_eval_batches = 10;
  std::optional<int64_t> eval_batch_size_prompts;  // null: store_batch_size
  nlohmann::json model_from_pretrained_kwargs = nlohmann::json::object();
  // --- SAE Workbench additions ---
  int64_t num_threads = 0;  // intra-op threads; 0 = all hardware threads
  bool use_synthetic_activations = false;
  int64_t synthetic_n_features = 1024;          // true features in superposition
  double synthetic_feature_probability = 0.01;  // chance each true feature fires on a token
  double synthetic_noise_std = 0.0;             // Gaussian noise added to every activation
  int64_t synthetic_seed = 0;                   // seed of the ground-truth directions and stream

  // ---------------------------------------------------------------- loading & saving
  // Parse a JSON object. Unknown keys, wrong types and failed rules are collected and thrown
  // together as a ConfigError. Relative paths (dataset_path, cached_activations_path,
  // from_pretrained_path, model_name when it names an existing folder) resolve against baseDir.
  static RunConfig fromJson(const nlohmann::json& object, const std::string& sourceName = "config",
                            const std::string& baseDir = "");
  // Read a JSON file; broken JSON is reported with file, line and column.
  static RunConfig loadFile(const std::string& path);
  // The parsed JSON of a config file, not checked against the schema (a sweep file holds
  // lists); errors as loadFile. baseDir, when given, receives the folder relative paths in
  // the file resolve against.
  static nlohmann::json readJsonFile(const std::string& path, std::string* baseDir = nullptr);
  // Every field, SAELens names, derived values not included (except d_sae, written as
  // d_in * expansion_factor like SAELens's saved config). nlohmann::json sorts keys.
  nlohmann::json toJson() const;
  // The same, keys in schema order: what saveFile writes, so files read like the form.
  nlohmann::ordered_json toOrderedJson() const;
  // Written to a temporary name and renamed.
  void saveFile(const std::string& path) const;
  // Apply one `key=value` override from the command line; the value is parsed as JSON when
  // it parses, else taken as a string. Throws ConfigError naming the key.
  void applyOverride(const std::string& keyEqualsValue);

  // ---------------------------------------------------------------- validation
  // Every rule that fails, in schema order; empty when the config is valid.
  std::vector<ConfigError::Issue> validate() const;

  // ---------------------------------------------------------------- derived values
  int64_t derivedDSae() const;          // d_in * expansion_factor
  int64_t totalTrainingTokens() const;  // training_tokens + finetuning_tokens
  int64_t totalSteps() const;           // total tokens // train_batch_size
  double effectiveLrEnd() const;        // lr_end or lr / 10
  int64_t effectiveEvalBatchSizePrompts() const;
  int hookLayer() const;                  // hook_point_layer
  std::string resolvedHookPoint() const;  // "{layer}" replaced by hook_point_layer
  // "{d_sae}-L1-{l1}-LR-{lr}-Tokens-{training_tokens:3.3e}" with Python's float formatting.
  std::string defaultRunName() const;
  std::string effectiveRunName() const;  // run_name or defaultRunName()
  std::string resolvedCachedActivationsPath() const;
  // The verbose block SAELens prints, line by line, byte-identical (no trailing newlines).
  std::vector<std::string> preambleLines() const;
  int effectiveNumThreads() const;  // num_threads or std::thread::hardware_concurrency()
};

}  // namespace sae
