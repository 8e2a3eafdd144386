#pragma once
// The architecture of a TransformerLens HookedTransformer of the gelu-1l family, read from the
// config.json of a model folder in either TransformerLens's key names (normalization_type,
// positional_embedding_type) or those of Neel Nanda's training code (normalization,
// shortformer_pos), as TransformerLens's convert_neel_model_config maps them. Torch-free.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace sae {

struct TransformerConfig {
  int64_t n_layers = 1;
  int64_t d_model = 512;
  int64_t n_heads = 8;
  int64_t d_head = 64;
  int64_t d_mlp = 2048;
  int64_t d_vocab = 48262;
  int64_t d_vocab_out = 48262;
  int64_t n_ctx = 1024;
  std::string act_fn = "gelu";  // gelu (erf) | gelu_new | gelu_fast | relu | silu | solu_ln
  std::string normalization_type = "LN";  // LN | LNPre | "" (none)
  bool attn_only = false;
  double eps = 1e-5;
  bool use_attn_scale = true;
  double attn_scale = 8.0;  // sqrt(d_head) unless the file says otherwise
  std::string tokenizer_name;
  std::string model_name;
  bool default_prepend_bos = true;

  // Parses and validates; `source` (the file) is named in every error. Unsupported values
  // (other positional embeddings, RMS norms, gated or parallel MLPs, grouped-query attention...)
  // are refused with a ConfigError that names the key, the value and what is supported.
  static TransformerConfig fromJson(const nlohmann::json& j, const std::string& source);
  static TransformerConfig fromFile(const std::string& path);
  // TransformerLens key names (what the demo model's config.json is saved with).
  nlohmann::json toJson() const;
  // Throws ConfigError naming `source` when a size is not positive or values disagree.
  void validate(const std::string& source) const;
  bool hasLayerNorm() const { return !normalization_type.empty(); }
  int64_t parameterCount() const;
};

}  // namespace sae
