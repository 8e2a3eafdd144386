#pragma once
// A LibTorch port of TransformerLens's HookedTransformer (v2, loaded "no processing": raw
// weights, no LayerNorm folding or centring, as SAELens loads models) for the gelu-1l family.
// Every hook point of formats.md §2 fires with TransformerLens's name and shape, in its order;
// a run can stop after a layer (stop_at_layer), cache any hooks, and replace any hook's value
// (the SAE splice and zero ablation of the CE evals). The forward is differentiable, so a model
// can also be trained with autograd.
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "model/TransformerConfig.h"

namespace sae {

// Replaces a hook's value: gets the activation (and the hook's name) and returns the value the
// forward continues with, of the same shape (TransformerLens's fwd_hooks that return a tensor).
using HookFunction =
    std::function<torch::Tensor(const torch::Tensor& activation, const std::string& hookName)>;

struct HookedRunOptions {
  // Run blocks [0, stopAtLayer) only and return the residual stream after them, as
  // TransformerLens's stop_at_layer; -1 runs the whole model. 0 returns the embeddings' sum.
  int64_t stopAtLayer = -1;
  // Hooks whose values (after any replacement) are returned in HookedRunResult::cache.
  std::set<std::string> cacheNames;
  bool cacheAll = false;
  std::map<std::string, HookFunction> replacements;
  // Skip the unembedding: output is ln_final's output [B, P, d_model] (the loss uses this to
  // compute logits in chunks instead of holding [B, P, d_vocab] at once).
  bool skipUnembed = false;
};

struct HookedRunResult {
  // Logits [B, P, d_vocab_out]; the residual [B, P, d_model] when stopped early or skipUnembed.
  torch::Tensor output;
  std::map<std::string, torch::Tensor> cache;
};

class HookedTransformer {
 public:
  using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

  // Parameters of the right shapes, initialised like TransformerLens's default ("gpt2": every
  // W_ normal with std 0.8/sqrt(d_model), biases zero, LayerNorm weights one).
  explicit HookedTransformer(TransformerConfig config, uint64_t seed = 0);

  const TransformerConfig& config() const { return config_; }

  // Copies a checkpoint's tensors in (converted to float32). Neel's buffers attn.mask are
  // ignored and attn.IGNORE sets the masked attention score, a missing unembed.b_U is zeros (as
  // TransformerLens fills missing keys); any other missing key, a shape mismatch or a
  // non-floating dtype throws std::runtime_error naming `source`, the key and both shapes.
  // Returns the keys that were ignored.
  std::vector<std::string> loadStateDict(const NamedTensors& tensors, const std::string& source);
  // The parameters under TransformerLens's names (the tensors themselves, not copies).
  NamedTensors stateDict() const { return params_; }
  std::vector<torch::Tensor> parameters() const;
  void setRequiresGrad(bool requiresGrad);

  // tokens: int64 [batch, pos], pos <= n_ctx, ids < d_vocab (checked, with a clear error).
  HookedRunResult run(const torch::Tensor& tokens, const HookedRunOptions& options = {}) const;
  torch::Tensor forward(const torch::Tensor& tokens) const;
  // The values of `names` (each must be a hook of this model), running only as far as needed.
  std::map<std::string, torch::Tensor> runWithCache(const torch::Tensor& tokens,
                                                    const std::set<std::string>& names) const;
  // TransformerLens's return_type="loss": mean over batch and positions 0..P-2 of
  // -log_softmax(logits)[token at the next position], with optional hook replacements.
  torch::Tensor loss(const torch::Tensor& tokens,
                     const std::map<std::string, HookFunction>& replacements = {}) const;
  // utils.lm_cross_entropy_loss on given logits; perToken gives [B, P-1].
  static torch::Tensor crossEntropyLoss(const torch::Tensor& logits, const torch::Tensor& tokens,
                                        bool perToken = false);

  // Every hook point of this model in firing order.
  std::vector<std::string> hookNames() const;
  bool hasHook(const std::string& name) const;
  // The stop_at_layer that still fires `name` (SAELens: layer + 1; 0 for the embedding hooks,
  // -1 for ln_final's). Throws std::runtime_error listing the hooks when `name` is unknown.
  int64_t stopAtLayerFor(const std::string& name) const;

 private:
  struct Layer {
    torch::Tensor ln1_w, ln1_b, W_Q, W_K, W_V, W_O, b_Q, b_K, b_V, b_O;
    torch::Tensor ln2_w, ln2_b, W_in, b_in, W_out, b_out, mlp_ln_w, mlp_ln_b;
    double ignore = -std::numeric_limits<double>::infinity();
  };
  void addParam(const std::string& name, torch::Tensor value);
  const torch::Tensor& param(const std::string& name) const;
  void bindLayers();
  void checkHookNames(const HookedRunOptions& options) const;

  TransformerConfig config_;
  NamedTensors params_;
  std::map<std::string, size_t> paramIndex_;
  std::vector<Layer> layers_;
  torch::Tensor W_E_, W_pos_, ln_final_w_, ln_final_b_, W_U_, b_U_;
  std::set<std::string> hookSet_;
};

}  // namespace sae
