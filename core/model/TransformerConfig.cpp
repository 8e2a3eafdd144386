#include "model/TransformerConfig.h"

#include <cmath>
#include <fstream>
#include <optional>

#include "config/ConfigError.h"

namespace sae {

namespace {

[[noreturn]] void fail(const std::string& source, const std::string& problem) {
  throw ConfigError("model config '" + source + "': " + problem);
}

std::optional<int64_t> optionalInt(const nlohmann::json& j, const char* key,
                                   const std::string& source) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float() && std::floor(it->get<double>()) == it->get<double>())
    return static_cast<int64_t>(it->get<double>());
  fail(source, std::string("'") + key + "' must be an integer, found " + it->dump());
}

int64_t requiredInt(const nlohmann::json& j, const char* key, const std::string& source) {
  const auto v = optionalInt(j, key, source);
  if (!v) fail(source, std::string("the key '") + key + "' is missing");
  return *v;
}

std::optional<double> optionalNumber(const nlohmann::json& j, const char* key,
                                     const std::string& source) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number())
    fail(source, std::string("'") + key + "' must be a number, found " + it->dump());
  return it->get<double>();
}

std::optional<bool> optionalBool(const nlohmann::json& j, const char* key,
                                 const std::string& source) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean())
    fail(source, std::string("'") + key + "' must be true or false, found " + it->dump());
  return it->get<bool>();
}

std::optional<std::string> optionalString(const nlohmann::json& j, const char* key,
                                          const std::string& source) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_string())
    fail(source, std::string("'") + key + "' must be a string, found " + it->dump());
  return it->get<std::string>();
}

// Features of other architectures that TransformerLens configs can switch on: refused, since
// running them as a gelu-1l-family model would give silently wrong activations.
void refuseTrue(const nlohmann::json& j, const char* key, const std::string& source) {
  if (optionalBool(j, key, source).value_or(false)) {
    fail(source, std::string("'") + key +
                     "' is true, which is not supported (only the gelu-1l family: standard "
                     "positional embeddings, LN/LNPre/no normalisation, plain MLPs)");
  }
}

}  // namespace

TransformerConfig TransformerConfig::fromJson(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail(source, "expected a JSON object");
  TransformerConfig c;
  c.n_layers = requiredInt(j, "n_layers", source);
  c.d_model = requiredInt(j, "d_model", source);
  c.n_heads = requiredInt(j, "n_heads", source);
  c.d_vocab = requiredInt(j, "d_vocab", source);
  c.n_ctx = requiredInt(j, "n_ctx", source);
  c.attn_only = optionalBool(j, "attn_only", source).value_or(false);
  c.d_head = optionalInt(j, "d_head", source).value_or(c.n_heads > 0 ? c.d_model / c.n_heads : 0);
  c.d_mlp = optionalInt(j, "d_mlp", source).value_or(c.attn_only ? 0 : 4 * c.d_model);
  const int64_t vocabOut = optionalInt(j, "d_vocab_out", source).value_or(-1);
  c.d_vocab_out = vocabOut > 0 ? vocabOut : c.d_vocab;

  const auto act = optionalString(j, "act_fn", source);
  if (!act && !c.attn_only) fail(source, "the key 'act_fn' is missing (needed unless attn_only)");
  c.act_fn = act.value_or("");
  if (!c.attn_only && c.act_fn != "gelu" && c.act_fn != "gelu_new" && c.act_fn != "gelu_fast" &&
      c.act_fn != "relu" && c.act_fn != "silu" && c.act_fn != "solu_ln") {
    fail(source,
         "act_fn '" + c.act_fn +
             "' is not supported (supported: gelu, gelu_new, gelu_fast, relu, silu, solu_ln)");
  }

  // TransformerLens writes normalization_type; Neel's training configs write normalization.
  const char* normKey = j.contains("normalization_type") ? "normalization_type" : "normalization";
  const auto norm = optionalString(j, normKey, source);
  c.normalization_type = norm.value_or("");
  if (c.normalization_type == "None" || c.normalization_type == "none") c.normalization_type = "";
  if (!c.normalization_type.empty() && c.normalization_type != "LN" &&
      c.normalization_type != "LNPre") {
    fail(source, std::string("'") + normKey + "' is '" + c.normalization_type +
                     "', which is not supported (supported: LN, LNPre, null)");
  }

  const auto pos = optionalString(j, "positional_embedding_type", source).value_or("standard");
  if (pos != "standard") {
    fail(source, "positional_embedding_type '" + pos + "' is not supported (only 'standard')");
  }
  refuseTrue(j, "shortformer_pos", source);
  refuseTrue(j, "final_rms", source);
  refuseTrue(j, "gated_mlp", source);
  refuseTrue(j, "parallel_attn_mlp", source);
  refuseTrue(j, "use_local_attn", source);
  if (optionalInt(j, "n_key_value_heads", source)) {
    fail(source, "'n_key_value_heads' is set: grouped-query attention is not supported");
  }
  const auto dir = optionalString(j, "attention_dir", source).value_or("causal");
  if (dir != "causal") fail(source, "attention_dir '" + dir + "' is not supported (only 'causal')");

  c.eps =
      optionalNumber(j, "eps", source).value_or(optionalNumber(j, "ln_eps", source).value_or(1e-5));
  c.use_attn_scale = optionalBool(j, "use_attn_scale", source).value_or(true);
  const double scale = optionalNumber(j, "attn_scale", source).value_or(-1.0);
  c.attn_scale = scale > 0 ? scale : std::sqrt(static_cast<double>(c.d_head));
  c.tokenizer_name = optionalString(j, "tokenizer_name", source).value_or("");
  c.model_name = optionalString(j, "model_name", source).value_or("");
  c.default_prepend_bos = optionalBool(j, "default_prepend_bos", source).value_or(true);
  c.validate(source);
  return c;
}

TransformerConfig TransformerConfig::fromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, "cannot be opened");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("is not valid JSON: ") + e.what());
  }
  return fromJson(j, path);
}

void TransformerConfig::validate(const std::string& source) const {
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0)
      fail(source, std::string("'") + key + "' must be positive, found " + std::to_string(v));
  };
  positive("n_layers", n_layers);
  positive("d_model", d_model);
  positive("n_heads", n_heads);
  positive("d_head", d_head);
  positive("d_vocab", d_vocab);
  positive("d_vocab_out", d_vocab_out);
  positive("n_ctx", n_ctx);
  if (!attn_only) positive("d_mlp", d_mlp);
  if (!(eps > 0)) fail(source, "'eps' must be positive");
  if (act_fn == "solu_ln" && attn_only) fail(source, "act_fn solu_ln with attn_only");
}

nlohmann::json TransformerConfig::toJson() const {
  nlohmann::json j;
  j["n_layers"] = n_layers;
  j["d_model"] = d_model;
  j["n_heads"] = n_heads;
  j["d_head"] = d_head;
  j["d_mlp"] = attn_only ? nlohmann::json(nullptr) : nlohmann::json(d_mlp);
  j["d_vocab"] = d_vocab;
  j["d_vocab_out"] = d_vocab_out;
  j["n_ctx"] = n_ctx;
  j["act_fn"] = attn_only ? nlohmann::json(nullptr) : nlohmann::json(act_fn);
  j["normalization_type"] =
      normalization_type.empty() ? nlohmann::json(nullptr) : nlohmann::json(normalization_type);
  j["positional_embedding_type"] = "standard";
  j["attn_only"] = attn_only;
  j["eps"] = eps;
  j["use_attn_scale"] = use_attn_scale;
  j["attn_scale"] = attn_scale;
  j["tokenizer_name"] = tokenizer_name;
  j["model_name"] = model_name;
  j["default_prepend_bos"] = default_prepend_bos;
  return j;
}

int64_t TransformerConfig::parameterCount() const {
  int64_t n = d_vocab * d_model + n_ctx * d_model + d_model * d_vocab_out + d_vocab_out;
  const int64_t ln = normalization_type == "LN" ? 2 * d_model : 0;
  int64_t block = ln + 4 * n_heads * d_model * d_head + 3 * n_heads * d_head + d_model;
  if (!attn_only) {
    block += ln + 2 * d_model * d_mlp + d_mlp + d_model;
    if (act_fn == "solu_ln" && normalization_type == "LN") block += 2 * d_mlp;
  }
  return n + n_layers * block + ln;
}

}  // namespace sae
