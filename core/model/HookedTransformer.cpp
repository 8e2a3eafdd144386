#include "model/HookedTransformer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>
#include <stdexcept>

namespace sae {

namespace {

std::string shapeString(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// The hook points of one run: replacements first, then the cache, as a HookPoint with a forward
// hook that returns a value and a caching hook would.
struct HookContext {
  const HookedRunOptions& options;
  HookedRunResult& result;
  torch::Tensor operator()(const std::string& name, torch::Tensor x) const {
    if (!options.replacements.empty()) {
      const auto it = options.replacements.find(name);
      if (it != options.replacements.end()) {
        torch::Tensor y = it->second(x, name);
        if (!y.defined() || y.sizes() != x.sizes()) {
          throw std::runtime_error("the replacement for hook '" + name + "' returned shape " +
                                   (y.defined() ? shapeString(y.sizes()) : "(undefined)") +
                                   ", expected " + shapeString(x.sizes()));
        }
        x = y.to(x.scalar_type());
      }
    }
    if (options.cacheAll || options.cacheNames.count(name)) result.cache[name] = x;
    return x;
  }
};

// x [..., in] times W [in, out] plus b [out], as TransformerLens's batch_addmm.
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& W, const torch::Tensor& b) {
  auto sizes = x.sizes().vec();
  sizes.back() = W.size(1);
  return torch::addmm(b, x.reshape({-1, W.size(0)}), W).view(sizes);
}

// TransformerLens's LayerNorm / LayerNormPre: centre, scale = sqrt(mean(x^2) + eps) (biased
// variance, eps inside), hook_scale on the scale, hook_normalized on the output (after w, b).
torch::Tensor layerNorm(const HookContext& hook, const std::string& prefix, torch::Tensor x,
                        const torch::Tensor& w, const torch::Tensor& b, double eps) {
  x = x - x.mean(-1, true);
  const auto scale = hook(prefix + "hook_scale", (x.pow(2).mean(-1, true) + eps).sqrt());
  x = x / scale;
  return hook(prefix + "hook_normalized", w.defined() ? x * w + b : x);
}

torch::Tensor activation(const std::string& fn, const torch::Tensor& x) {
  if (fn == "gelu") return torch::gelu(x);  // exact erf form, as F.gelu
  if (fn == "relu") return torch::relu(x);
  if (fn == "silu") return torch::silu(x);
  if (fn == "gelu_new") {
    return 0.5 * x *
           (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * torch::pow(x, 3.0))));
  }
  if (fn == "gelu_fast")
    return 0.5 * x * (1.0 + torch::tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)));
  if (fn == "solu_ln") return x * torch::softmax(x, -1);  // the LayerNorm follows in the caller
  throw std::runtime_error("unsupported act_fn '" + fn + "'");
}

}  // namespace

HookedTransformer::HookedTransformer(TransformerConfig config, uint64_t seed)
    : config_(std::move(config)) {
  config_.validate("HookedTransformer");
  const auto& c = config_;
  const bool ln = c.normalization_type == "LN";
  auto gen = at::detail::createCPUGenerator(seed);
  const double std = 0.8 / std::sqrt(static_cast<double>(c.d_model));
  auto weight = [&](std::vector<int64_t> shape) {
    return torch::empty(shape).normal_(0.0, std, gen);
  };
  auto zeros = [](std::vector<int64_t> shape) { return torch::zeros(shape); };
  auto ones = [](std::vector<int64_t> shape) { return torch::ones(shape); };

  addParam("embed.W_E", weight({c.d_vocab, c.d_model}));
  addParam("pos_embed.W_pos", weight({c.n_ctx, c.d_model}));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    if (ln) {
      addParam(p + "ln1.w", ones({c.d_model}));
      addParam(p + "ln1.b", zeros({c.d_model}));
      if (!c.attn_only) {
        addParam(p + "ln2.w", ones({c.d_model}));
        addParam(p + "ln2.b", zeros({c.d_model}));
      }
    }
    for (const char* w : {"W_Q", "W_K", "W_V"})
      addParam(p + "attn." + w, weight({c.n_heads, c.d_model, c.d_head}));
    addParam(p + "attn.W_O", weight({c.n_heads, c.d_head, c.d_model}));
    for (const char* b : {"b_Q", "b_K", "b_V"})
      addParam(p + "attn." + b, zeros({c.n_heads, c.d_head}));
    addParam(p + "attn.b_O", zeros({c.d_model}));
    if (!c.attn_only) {
      addParam(p + "mlp.W_in", weight({c.d_model, c.d_mlp}));
      addParam(p + "mlp.b_in", zeros({c.d_mlp}));
      addParam(p + "mlp.W_out", weight({c.d_mlp, c.d_model}));
      addParam(p + "mlp.b_out", zeros({c.d_model}));
      if (c.act_fn == "solu_ln" && ln) {
        addParam(p + "mlp.ln.w", ones({c.d_mlp}));
        addParam(p + "mlp.ln.b", zeros({c.d_mlp}));
      }
    }
  }
  if (ln) {
    addParam("ln_final.w", ones({c.d_model}));
    addParam("ln_final.b", zeros({c.d_model}));
  }
  addParam("unembed.W_U", weight({c.d_model, c.d_vocab_out}));
  addParam("unembed.b_U", zeros({c.d_vocab_out}));
  layers_.resize(static_cast<size_t>(c.n_layers));
  bindLayers();
  for (const auto& name : hookNames())
    hookSet_.insert(name);
}

void HookedTransformer::addParam(const std::string& name, torch::Tensor value) {
  paramIndex_[name] = params_.size();
  params_.emplace_back(name, std::move(value));
}

const torch::Tensor& HookedTransformer::param(const std::string& name) const {
  static const torch::Tensor undefined;
  const auto it = paramIndex_.find(name);
  return it == paramIndex_.end() ? undefined : params_[it->second].second;
}

void HookedTransformer::bindLayers() {
  W_E_ = param("embed.W_E");
  W_pos_ = param("pos_embed.W_pos");
  ln_final_w_ = param("ln_final.w");
  ln_final_b_ = param("ln_final.b");
  W_U_ = param("unembed.W_U");
  b_U_ = param("unembed.b_U");
  for (size_t l = 0; l < layers_.size(); ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    Layer& L = layers_[l];
    L.ln1_w = param(p + "ln1.w");
    L.ln1_b = param(p + "ln1.b");
    L.ln2_w = param(p + "ln2.w");
    L.ln2_b = param(p + "ln2.b");
    L.W_Q = param(p + "attn.W_Q");
    L.W_K = param(p + "attn.W_K");
    L.W_V = param(p + "attn.W_V");
    L.W_O = param(p + "attn.W_O");
    L.b_Q = param(p + "attn.b_Q");
    L.b_K = param(p + "attn.b_K");
    L.b_V = param(p + "attn.b_V");
    L.b_O = param(p + "attn.b_O");
    L.W_in = param(p + "mlp.W_in");
    L.b_in = param(p + "mlp.b_in");
    L.W_out = param(p + "mlp.W_out");
    L.b_out = param(p + "mlp.b_out");
    L.mlp_ln_w = param(p + "mlp.ln.w");
    L.mlp_ln_b = param(p + "mlp.ln.b");
  }
}

std::vector<std::string> HookedTransformer::loadStateDict(const NamedTensors& tensors,
                                                          const std::string& source) {
  std::map<std::string, const torch::Tensor*> given;
  for (const auto& [name, tensor] : tensors)
    given[name] = &tensor;
  std::vector<std::string> ignored;
  for (const auto& [name, tensor] : tensors) {
    if (paramIndex_.count(name)) continue;
    ignored.push_back(name);
  }
  // Check everything before changing anything, so a bad file leaves the model as it was.
  for (const auto& [name, param] : params_) {
    const auto it = given.find(name);
    if (it == given.end()) {
      if (name == "unembed.b_U") continue;  // Neel's Unembed has no bias: zeros, as TL fills it
      std::string some;
      size_t shown = 0;
      for (const auto& [key, t] : given) {
        if (shown++ == 8) {
          some += ", ...";
          break;
        }
        some += (shown > 1 ? ", " : "") + key;
      }
      throw std::runtime_error("weights '" + source + "': the key '" + name + "' (shape " +
                               shapeString(param.sizes()) + ") is missing; the file has " +
                               std::to_string(given.size()) + " tensors (" + some +
                               "). Does config.json match these weights?");
    }
    const torch::Tensor& t = *it->second;
    if (!t.is_floating_point()) {
      throw std::runtime_error("weights '" + source + "': the key '" + name + "' has dtype " +
                               std::string(c10::toString(t.scalar_type())) +
                               ", expected a floating-point tensor");
    }
    if (t.sizes() != param.sizes()) {
      throw std::runtime_error("weights '" + source + "': the key '" + name + "' has shape " +
                               shapeString(t.sizes()) + " but config.json implies " +
                               shapeString(param.sizes()));
    }
  }
  torch::NoGradGuard noGrad;
  for (auto& [name, param] : params_) {
    const auto it = given.find(name);
    if (it == given.end()) {
      param.zero_();
    } else {
      param.copy_(it->second->to(torch::kFloat32));
    }
  }
  for (size_t l = 0; l < layers_.size(); ++l) {
    const auto it = given.find("blocks." + std::to_string(l) + ".attn.IGNORE");
    layers_[l].ignore = -std::numeric_limits<double>::infinity();
    if (it != given.end() && it->second->numel() == 1 && it->second->is_floating_point()) {
      layers_[l].ignore = it->second->to(torch::kFloat64).item<double>();
    }
  }
  return ignored;
}

std::vector<torch::Tensor> HookedTransformer::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& [name, tensor] : params_)
    out.push_back(tensor);
  return out;
}

void HookedTransformer::setRequiresGrad(bool requiresGrad) {
  for (auto& [name, tensor] : params_)
    tensor.set_requires_grad(requiresGrad);
}

std::vector<std::string> HookedTransformer::hookNames() const {
  const auto& c = config_;
  const bool norm = c.hasLayerNorm();
  std::vector<std::string> names = {"hook_embed", "hook_pos_embed"};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    names.push_back(p + "hook_resid_pre");
    if (norm) {
      names.push_back(p + "ln1.hook_scale");
      names.push_back(p + "ln1.hook_normalized");
    }
    for (const char* h :
         {"hook_q", "hook_k", "hook_v", "hook_attn_scores", "hook_pattern", "hook_z"})
      names.push_back(p + "attn." + h);
    names.push_back(p + "hook_attn_out");
    if (!c.attn_only) {
      names.push_back(p + "hook_resid_mid");
      if (norm) {
        names.push_back(p + "ln2.hook_scale");
        names.push_back(p + "ln2.hook_normalized");
      }
      names.push_back(p + "mlp.hook_pre");
      if (c.act_fn == "solu_ln") {
        names.push_back(p + "mlp.hook_mid");
        names.push_back(p + "mlp.ln.hook_scale");
        names.push_back(p + "mlp.ln.hook_normalized");
      }
      names.push_back(p + "mlp.hook_post");
      names.push_back(p + "hook_mlp_out");
    }
    names.push_back(p + "hook_resid_post");
  }
  if (norm) {
    names.push_back("ln_final.hook_scale");
    names.push_back("ln_final.hook_normalized");
  }
  return names;
}

bool HookedTransformer::hasHook(const std::string& name) const {
  return hookSet_.count(name) > 0;
}

int64_t HookedTransformer::stopAtLayerFor(const std::string& name) const {
  if (!hasHook(name)) {
    std::string all;
    for (const auto& n : hookNames())
      all += (all.empty() ? "" : ", ") + n;
    throw std::runtime_error("unknown hook point '" + name +
                             "'; this model's hook points are: " + all);
  }
  if (name.rfind("blocks.", 0) == 0) return std::stoll(name.substr(7)) + 1;
  if (name.rfind("ln_final.", 0) == 0) return -1;
  return 0;
}

void HookedTransformer::checkHookNames(const HookedRunOptions& options) const {
  auto check = [&](const std::string& name) {
    const int64_t stop = stopAtLayerFor(name);  // throws for unknown names
    if (options.stopAtLayer >= 0 && (stop < 0 || stop > options.stopAtLayer)) {
      throw std::runtime_error("hook point '" + name + "' is not reached when stopping at layer " +
                               std::to_string(options.stopAtLayer));
    }
    if (options.skipUnembed && name.rfind("ln_final.", 0) == 0 && options.stopAtLayer >= 0) {
      throw std::runtime_error("hook point '" + name + "' is not reached");
    }
  };
  for (const auto& name : options.cacheNames)
    check(name);
  for (const auto& [name, fn] : options.replacements)
    check(name);
}

HookedRunResult HookedTransformer::run(const torch::Tensor& tokens,
                                       const HookedRunOptions& options) const {
  const auto& c = config_;
  if (tokens.dim() != 2 || tokens.scalar_type() != torch::kInt64) {
    throw std::runtime_error("model input must be int64 tokens of shape [batch, pos], got " +
                             std::string(c10::toString(tokens.scalar_type())) + " " +
                             shapeString(tokens.sizes()));
  }
  const int64_t B = tokens.size(0), P = tokens.size(1);
  if (P < 1 || P > c.n_ctx) {
    throw std::runtime_error("model input has " + std::to_string(P) +
                             " positions; this model takes 1.." + std::to_string(c.n_ctx) +
                             " (n_ctx)");
  }
  if (tokens.numel() > 0) {
    const int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
    if (lo < 0 || hi >= c.d_vocab) {
      throw std::runtime_error("token id " + std::to_string(lo < 0 ? lo : hi) +
                               " is outside this model's vocabulary (d_vocab " +
                               std::to_string(c.d_vocab) + "): is the dataset tokenized for it?");
    }
  }
  if (options.stopAtLayer > c.n_layers) {
    throw std::runtime_error("stop_at_layer " + std::to_string(options.stopAtLayer) +
                             " is past the model's " + std::to_string(c.n_layers) + " layers");
  }
  checkHookNames(options);

  HookedRunResult result;
  const HookContext hook{options, result};
  const bool ln = c.normalization_type == "LN";
  const bool norm = c.hasLayerNorm();
  const torch::Tensor none;

  const auto embed = hook("hook_embed", torch::embedding(W_E_, tokens));
  const auto pos =
      hook("hook_pos_embed", W_pos_.slice(0, 0, P).unsqueeze(0).expand({B, P, c.d_model}));
  torch::Tensor residual = embed + pos;

  const int64_t stop = options.stopAtLayer < 0 ? c.n_layers : options.stopAtLayer;
  const auto causal = torch::triu(torch::ones({P, P}, torch::kBool), 1);
  const double scale = c.use_attn_scale ? c.attn_scale : 1.0;
  const int64_t H = c.n_heads, D = c.d_head;
  for (int64_t l = 0; l < stop; ++l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    const std::string p = "blocks." + std::to_string(l) + ".";
    const auto residPre = hook(p + "hook_resid_pre", residual);
    const auto attnIn = norm ? layerNorm(hook, p + "ln1.", residPre, ln ? L.ln1_w : none,
                                         ln ? L.ln1_b : none, c.eps)
                             : residPre;
    // q, k, v from one product: [d_model, 3 * H * d_head].
    const auto Wqkv = torch::cat({L.W_Q.permute({1, 0, 2}).reshape({c.d_model, H * D}),
                                  L.W_K.permute({1, 0, 2}).reshape({c.d_model, H * D}),
                                  L.W_V.permute({1, 0, 2}).reshape({c.d_model, H * D})},
                                 1);
    const auto bqkv =
        torch::cat({L.b_Q.reshape({H * D}), L.b_K.reshape({H * D}), L.b_V.reshape({H * D})});
    const auto qkv = linear(attnIn, Wqkv, bqkv).split(H * D, -1);
    const auto q = hook(p + "attn.hook_q", qkv[0].reshape({B, P, H, D}));
    const auto k = hook(p + "attn.hook_k", qkv[1].reshape({B, P, H, D}));
    const auto v = hook(p + "attn.hook_v", qkv[2].reshape({B, P, H, D}));
    auto scores = torch::matmul(q.permute({0, 2, 1, 3}), k.permute({0, 2, 3, 1})) / scale;
    scores = hook(p + "attn.hook_attn_scores", scores.masked_fill(causal, L.ignore));
    auto pattern = torch::softmax(scores, -1);
    pattern = hook(p + "attn.hook_pattern", torch::nan_to_num(pattern, 0.0));
    const auto z = hook(p + "attn.hook_z",
                        torch::matmul(pattern, v.permute({0, 2, 1, 3})).permute({0, 2, 1, 3}));
    const auto attnOut =
        hook(p + "hook_attn_out",
             linear(z.reshape({B, P, H * D}), L.W_O.reshape({H * D, c.d_model}), L.b_O));
    if (c.attn_only) {
      residual = hook(p + "hook_resid_post", residPre + attnOut);
      continue;
    }
    const auto residMid = hook(p + "hook_resid_mid", residPre + attnOut);
    const auto mlpIn = norm ? layerNorm(hook, p + "ln2.", residMid, ln ? L.ln2_w : none,
                                        ln ? L.ln2_b : none, c.eps)
                            : residMid;
    const auto pre = hook(p + "mlp.hook_pre", linear(mlpIn, L.W_in, L.b_in));
    torch::Tensor post;
    if (c.act_fn == "solu_ln") {
      const auto mid = hook(p + "mlp.hook_mid", activation(c.act_fn, pre));
      post = hook(p + "mlp.hook_post",
                  layerNorm(hook, p + "mlp.ln.", mid, L.mlp_ln_w, L.mlp_ln_b, c.eps));
    } else {
      post = hook(p + "mlp.hook_post", activation(c.act_fn, pre));
    }
    const auto mlpOut = hook(p + "hook_mlp_out", linear(post, L.W_out, L.b_out));
    residual = hook(p + "hook_resid_post", residMid + mlpOut);
  }
  if (options.stopAtLayer >= 0) {
    result.output = residual;
    return result;
  }
  if (norm) residual = layerNorm(hook, "ln_final.", residual, ln_final_w_, ln_final_b_, c.eps);
  result.output = options.skipUnembed ? residual : linear(residual, W_U_, b_U_);
  return result;
}

torch::Tensor HookedTransformer::forward(const torch::Tensor& tokens) const {
  return run(tokens).output;
}

std::map<std::string, torch::Tensor> HookedTransformer::runWithCache(
    const torch::Tensor& tokens, const std::set<std::string>& names) const {
  HookedRunOptions options;
  options.cacheNames = names;
  int64_t stop = 0;
  for (const auto& name : names) {
    const int64_t s = stopAtLayerFor(name);
    stop = (s < 0 || stop < 0) ? -1 : std::max(stop, s);
  }
  options.stopAtLayer = stop;
  options.skipUnembed = true;
  return run(tokens, options).cache;
}

torch::Tensor HookedTransformer::loss(
    const torch::Tensor& tokens, const std::map<std::string, HookFunction>& replacements) const {
  HookedRunOptions options;
  options.replacements = replacements;
  options.skipUnembed = true;
  const auto finalResidual = run(tokens, options).output;
  const int64_t B = tokens.size(0), P = tokens.size(1);
  if (P < 2) throw std::runtime_error("the loss needs at least 2 positions per row");
  // Logits in chunks of rows, so [B, P, d_vocab] never exists at once (gelu-1l: 48262 wide).
  const int64_t rowsPerChunk = std::max<int64_t>(1, (int64_t(1) << 24) / (P * config_.d_vocab_out));
  std::vector<torch::Tensor> parts;
  for (int64_t r = 0; r < B; r += rowsPerChunk) {
    const int64_t n = std::min(rowsPerChunk, B - r);
    const auto logits = linear(finalResidual.slice(0, r, r + n), W_U_, b_U_);
    parts.push_back(crossEntropyLoss(logits, tokens.slice(0, r, r + n), true).sum());
  }
  return torch::stack(parts).sum() / static_cast<double>(B * (P - 1));
}

torch::Tensor HookedTransformer::crossEntropyLoss(const torch::Tensor& logits,
                                                  const torch::Tensor& tokens, bool perToken) {
  const auto logProbs = logits.to(torch::kFloat32).log_softmax(-1);
  const auto P = tokens.size(1);
  const auto predicted =
      logProbs.slice(1, 0, P - 1).gather(-1, tokens.slice(1, 1, P).unsqueeze(-1)).squeeze(-1);
  return perToken ? -predicted : -predicted.mean();
}

}  // namespace sae
