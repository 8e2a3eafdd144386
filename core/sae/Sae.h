#pragma once
// SAELens 1.5 SparseAutoencoder: parameters, every initialisation path, encode/decode,
// the training loss terms and the decoder helpers. Random draws come from torch's default
// generator in a fixed order (documented in Sae.cpp) so a Python reference seeded the same way
// produces the same initial weights.

#include <string>
#include <vector>

#include <torch/torch.h>

#include "config/RunConfig.h"

namespace sae {

struct SaeOptions {
  int64_t d_in = 512;
  int64_t d_sae = 2048;
  std::string activation_fn = "relu";  // "relu" or "tanh-relu"
  bool apply_b_dec_to_input = true;
  double noise_scale = 0.0;
  double lp_norm = 1.0;
  bool scale_sparsity_penalty_by_decoder_norm = false;
  std::string mse_loss_normalization;  // "" (none) or "dense_batch"
  bool use_ghost_grads = false;
  bool normalize_sae_decoder = true;
  bool decoder_orthogonal_init = false;
  bool decoder_heuristic_init = false;
  bool init_encoder_as_decoder_transpose = false;
  torch::Dtype dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;

  // Takes the SAE fields of a validated config (d_sae derived); device and dtype parsed.
  static SaeOptions fromConfig(const RunConfig& config);
};

// Everything one forward pass produces. Losses are 0-d tensors that carry autograd history.
struct SaeForward {
  torch::Tensor sae_out;          // [batch, d_in]
  torch::Tensor feature_acts;     // [batch, d_sae], after the activation function
  torch::Tensor hidden_pre;       // [batch, d_sae], before noise and activation
  torch::Tensor mse_loss;         // per_item_mse.sum(-1).mean()
  torch::Tensor sparsity;         // mean over batch of the (optionally decoder-norm-scaled) Lp norm
  torch::Tensor l1_loss;          // l1_coefficient * sparsity (SAELens's l1_loss)
  torch::Tensor ghost_grad_loss;  // 0 unless ghost grads are active
  torch::Tensor loss;             // mse_loss + l1_loss + ghost_grad_loss
};

class Sae {
 public:
  // Parameters are allocated and initialised with SAELens's initialize_weights (kaiming, then
  // orthogonal / heuristic / unit norm, then W_enc = W_dec^T or kaiming), b_enc = b_dec = 0,
  // scaling_factor = 1 (never trained).
  explicit Sae(const SaeOptions& options);

  const SaeOptions& options() const { return options_; }

  // forward(x, dead_neuron_mask) of SAELens with the coefficient passed in (SAELens keeps it
  // as a mutable attribute that the L1 scheduler sets). deadMask may be undefined. `training`
  // gates ghost grads exactly as SAE.training does.
  SaeForward forward(const torch::Tensor& x, double l1Coefficient,
                     const torch::Tensor& deadMask = {}, bool training = true) const;
  // (feature_acts, hidden_pre) as _encode_with_hidden_pre.
  std::pair<torch::Tensor, torch::Tensor> encodeWithHiddenPre(const torch::Tensor& x) const;
  torch::Tensor decode(const torch::Tensor& featureActs) const;

  // Decoder helpers (no_grad).
  void setDecoderNormToUnitNorm();
  void removeGradientParallelToDecoderDirections();
  void initializeBDecWithMean(const torch::Tensor& activations);
  void initializeBDecWithGeometricMedian(const torch::Tensor& activations);  // Weiszfeld

  // W_enc, b_enc, W_dec, b_dec: the tensors the optimiser and gradient clipping see
  // (scaling_factor is excluded, as SAELens sets requires_grad=False on it). SAELens's
  // sae.parameters() yields b_enc, W_dec, W_enc, b_dec; the order only changes the order in
  // which clip_grad_norm_ sums the four squared norms (an ulp of the total at most).
  std::vector<torch::Tensor> trainableParameters() const;

  // Named tensors in SAELens's order: W_enc, b_enc, W_dec, b_dec, scaling_factor.
  std::vector<std::pair<std::string, torch::Tensor>> namedTensors() const;
  // Replace weights from a loaded state dict; shapes are checked (error names key and shapes).
  // A missing scaling_factor is filled with ones, as SAELens does.
  void loadTensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   const std::string& sourceName);

  torch::Tensor W_enc, b_enc, W_dec, b_dec, scaling_factor;

 private:
  SaeOptions options_;
};

}  // namespace sae
