#include "sae/Sae.h"

#include <algorithm>
#include <stdexcept>

#include <ATen/Context.h>

#include "sae/GeometricMedian.h"

namespace sae {

namespace {

using torch::indexing::Slice;

torch::Dtype parseDtype(const std::string& text) {
  std::string name = text;
  const std::string prefix = "torch.";
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  if (name == "float32" || name == "float") return torch::kFloat32;
  if (name == "float64" || name == "double") return torch::kFloat64;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16" || name == "half") return torch::kFloat16;
  throw std::runtime_error("unsupported dtype '" + text +
                           "'; use float32, float64, bfloat16 or float16");
}

torch::Device parseDevice(const std::string& text) {
  const bool isCuda = text == "cuda" || text.rfind("cuda:", 0) == 0;
  const bool isMps = text == "mps" || text.rfind("mps:", 0) == 0;
  if (text != "cpu" && !isCuda && !isMps) {
    throw std::runtime_error("unknown device '" + text + "'; use cpu, cuda, cuda:N or mps");
  }
  if ((isCuda && !torch::cuda::is_available()) || (isMps && !at::hasMPS())) {
    throw std::runtime_error("device '" + text +
                             "' is not available in this LibTorch build (CPU only); set device "
                             "to cpu or build against a CUDA LibTorch with -DTorch_DIR=...");
  }
  torch::Device device(text);  // validates the index syntax
  if (isCuda && device.has_index() &&
      device.index() >= static_cast<int>(torch::cuda::device_count())) {
    throw std::runtime_error("device '" + text + "' does not exist (" +
                             std::to_string(torch::cuda::device_count()) + " CUDA devices)");
  }
  return device;
}

// torch.nn.init.orthogonal_ as Python 1.13 writes it: the Gaussian draw takes the tensor's own
// dtype (LibTorch's C++ version always draws float32), so float64 SAEs match Python too.
void orthogonalInPlace(torch::Tensor tensor) {
  const int64_t rows = tensor.size(0);
  const int64_t cols = tensor.numel() / rows;
  auto flattened = torch::empty({rows, cols}, tensor.options()).normal_(0, 1);
  if (rows < cols) flattened.t_();
  auto [q, r] = torch::linalg_qr(flattened);
  auto ph = torch::diag(r, 0).sign();
  q *= ph;
  if (rows < cols) q.t_();
  tensor.view_as(q).copy_(q);
}

// Row L2 norms exactly as Python's torch.norm(W, dim=1, keepdim=True) computes them
// (p="fro" with one dim dispatches to norm(2, dim)).
torch::Tensor rowNorms(const torch::Tensor& w, bool keepdim) {
  return at::norm(w, 2, {1}, keepdim);
}

// SAELens's _per_item_mse_loss_with_target_norm.
torch::Tensor perItemMse(const torch::Tensor& preds, const torch::Tensor& target,
                         const std::string& normalization) {
  auto mse = torch::mse_loss(preds, target, at::Reduction::None);
  if (normalization == "dense_batch") {
    auto centered = target - target.mean(0, /*keepdim=*/true);
    auto norm = at::norm(centered, 2, {-1}, /*keepdim=*/true);
    return mse / (norm + 1e-6);
  }
  return mse;
}

}  // namespace

SaeOptions SaeOptions::fromConfig(const RunConfig& config) {
  SaeOptions o;
  o.d_in = config.d_in;
  o.d_sae = config.derivedDSae();
  o.activation_fn = config.activation_fn;
  o.apply_b_dec_to_input = config.apply_b_dec_to_input;
  o.noise_scale = config.noise_scale;
  o.lp_norm = config.lp_norm;
  o.scale_sparsity_penalty_by_decoder_norm = config.scale_sparsity_penalty_by_decoder_norm;
  o.mse_loss_normalization = config.mse_loss_normalization.value_or("");
  o.use_ghost_grads = config.use_ghost_grads;
  o.normalize_sae_decoder = config.normalize_sae_decoder;
  o.decoder_orthogonal_init = config.decoder_orthogonal_init;
  o.decoder_heuristic_init = config.decoder_heuristic_init;
  o.init_encoder_as_decoder_transpose = config.init_encoder_as_decoder_transpose;
  o.dtype = parseDtype(config.dtype);
  o.device = parseDevice(config.device);
  return o;
}

Sae::Sae(const SaeOptions& options) : options_(options) {
  if (options.activation_fn != "relu" && options.activation_fn != "tanh-relu") {
    throw std::invalid_argument("unknown activation_fn '" + options.activation_fn +
                                "'; use relu or tanh-relu");
  }
  const auto opts = torch::TensorOptions().dtype(options.dtype).device(options.device);
  const int64_t dIn = options.d_in, dSae = options.d_sae;
  torch::NoGradGuard noGrad;

  // SAELens 1.5 initialize_weights, one draw after another from the default generator:
  // 1) W_dec: kaiming_uniform_ (a=0, fan_in = d_in, leaky_relu gain sqrt(2)).
  W_dec = torch::nn::init::kaiming_uniform_(torch::empty({dSae, dIn}, opts));
  // 2) the first matching decoder branch.
  if (options.decoder_orthogonal_init) {
    orthogonalInPlace(W_dec.t());  // orthogonal_(W_dec.T).T writes through the transposed view
  } else if (options.decoder_heuristic_init) {
    // Uniform [0, 1): all entries positive; rows then rescaled to norm 0.1 (hard-coded).
    W_dec = torch::rand({dSae, dIn}, opts);
    W_dec /= rowNorms(W_dec, true);
    W_dec *= 0.1;
  } else if (options.normalize_sae_decoder) {
    W_dec /= rowNorms(W_dec, true);
  }
  // 3) W_enc. SAELens always draws a kaiming W_enc first and then either replaces it by
  // W_dec^T or draws a second one; the discarded draw still advances the generator, so it is
  // kept to stay seed-for-seed identical with SAELens.
  W_enc = torch::nn::init::kaiming_uniform_(torch::empty({dIn, dSae}, opts));
  if (options.init_encoder_as_decoder_transpose) {
    W_enc = W_dec.t().contiguous();
  } else {
    W_enc = torch::nn::init::kaiming_uniform_(torch::empty({dIn, dSae}, opts));
  }
  // 4) unit-norm decoder rows again.
  if (options.normalize_sae_decoder) W_dec /= rowNorms(W_dec, true);

  b_enc = torch::zeros({dSae}, opts);
  b_dec = torch::zeros({dIn}, opts);
  scaling_factor = torch::ones({dSae}, opts);  // trained only by finetuning: no grad here
  W_enc.set_requires_grad(true);
  b_enc.set_requires_grad(true);
  W_dec.set_requires_grad(true);
  b_dec.set_requires_grad(true);
}

std::pair<torch::Tensor, torch::Tensor> Sae::encodeWithHiddenPre(const torch::Tensor& x) const {
  auto input = x.to(W_enc.device(), options_.dtype);
  // SAELens writes x - b_dec * apply_b_dec_to_input; multiplying by False adds exactly 0 to
  // both the value and b_dec's gradient, so skipping the subtraction is equivalent.
  auto saeIn = options_.apply_b_dec_to_input ? input - b_dec : input;
  // einops.einsum in SAELens is torch.einsum; the same contraction keeps the same kernels.
  auto hiddenPre = torch::einsum("...i,ij->...j", {saeIn, W_enc}) + b_enc;
  auto noisy = hiddenPre;
  if (options_.noise_scale > 0) {
    // Always applied when configured, also in eval (SAELens does not gate it on training).
    noisy = hiddenPre + torch::randn_like(hiddenPre) * options_.noise_scale;
  }
  auto featureActs = torch::relu(noisy);
  if (options_.activation_fn == "tanh-relu") featureActs = torch::tanh(featureActs);
  return {featureActs, hiddenPre};
}

torch::Tensor Sae::decode(const torch::Tensor& featureActs) const {
  return torch::einsum("...i,ij->...j", {featureActs * scaling_factor, W_dec}) + b_dec;
}

SaeForward Sae::forward(const torch::Tensor& x, double l1Coefficient, const torch::Tensor& deadMask,
                        bool training) const {
  SaeForward out;
  auto input = x.to(W_enc.device(), options_.dtype);
  std::tie(out.feature_acts, out.hidden_pre) = encodeWithHiddenPre(input);
  out.sae_out = decode(out.feature_acts);

  const auto perItem = perItemMse(out.sae_out, input, options_.mse_loss_normalization);

  const bool ghostActive = options_.use_ghost_grads && training && deadMask.defined() &&
                           deadMask.sum().item<int64_t>() > 0;
  if (ghostActive) {
    const auto mask = deadMask.to(W_dec.device(), torch::kBool);
    // SAELens calculate_ghost_grad_loss: an exp-activated reconstruction by the dead features
    // only, rescaled to half the residual's norm, fitted to the residual; its per-item MSE is
    // reweighted (detached) to the size of the main per-item MSE.
    const auto residual = input - out.sae_out;
    const auto residualNorm = at::norm(residual, 2, {-1}, false);
    const auto deadActs = torch::exp(out.hidden_pre.index({Slice(), mask}));
    auto ghostOut = torch::matmul(deadActs, W_dec.index({mask}));
    const auto ghostNorm = at::norm(ghostOut, 2, {-1}, false);
    const auto scale = residualNorm / (1e-6 + ghostNorm * 2);
    ghostOut = ghostOut * scale.index({Slice(), torch::indexing::None}).detach();
    // The ghost MSE goes through the same normalisation as the main MSE (as SAELens does,
    // with the detached residual as target).
    auto ghostMse = perItemMse(ghostOut, residual.detach(), options_.mse_loss_normalization);
    const auto rescale = (perItem / (ghostMse + 1e-6)).detach();
    out.ghost_grad_loss = (rescale * ghostMse).mean();
  } else {
    out.ghost_grad_loss = torch::zeros({}, out.sae_out.options());
  }

  out.mse_loss = perItem.sum(-1).mean();
  torch::Tensor perToken;
  if (options_.scale_sparsity_penalty_by_decoder_norm) {
    // Not detached: the penalty also pulls on the decoder norms, as in SAELens.
    perToken = at::norm(out.feature_acts * rowNorms(W_dec, false), options_.lp_norm, {-1}, false);
  } else {
    perToken = at::norm(out.feature_acts, options_.lp_norm, {-1}, false);
  }
  out.sparsity = perToken.mean();
  out.l1_loss = (l1Coefficient * perToken).mean();
  out.loss = out.mse_loss + out.l1_loss + out.ghost_grad_loss;
  return out;
}

void Sae::setDecoderNormToUnitNorm() {
  torch::NoGradGuard noGrad;
  W_dec.div_(rowNorms(W_dec, true));
}

void Sae::removeGradientParallelToDecoderDirections() {
  if (!W_dec.grad().defined()) {
    throw std::logic_error("removeGradientParallelToDecoderDirections: W_dec has no gradient");
  }
  torch::NoGradGuard noGrad;
  auto grad = W_dec.mutable_grad();
  // The same two einsums as SAELens: per-row dot product, then its multiple of the row.
  const auto parallel = torch::einsum("ij,ij->i", {grad, W_dec});
  grad -= torch::einsum("i,ij->ij", {parallel, W_dec});
}

void Sae::initializeBDecWithMean(const torch::Tensor& activations) {
  torch::NoGradGuard noGrad;
  b_dec.copy_(activations.mean(0).to(b_dec.device(), b_dec.scalar_type()));
}

void Sae::initializeBDecWithGeometricMedian(const torch::Tensor& activations) {
  torch::NoGradGuard noGrad;
  b_dec.copy_(GeometricMedian::compute(activations).to(b_dec.device(), b_dec.scalar_type()));
}

std::vector<torch::Tensor> Sae::trainableParameters() const {
  return {W_enc, b_enc, W_dec, b_dec};
}

std::vector<std::pair<std::string, torch::Tensor>> Sae::namedTensors() const {
  return {{"W_enc", W_enc},
          {"b_enc", b_enc},
          {"W_dec", W_dec},
          {"b_dec", b_dec},
          {"scaling_factor", scaling_factor}};
}

void Sae::loadTensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::string& sourceName) {
  auto shapeText = [](torch::IntArrayRef sizes) {
    std::string s = "[";
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(sizes[i]);
    }
    return s + "]";
  };
  std::vector<std::pair<std::string, torch::Tensor*>> targets = {
      {"W_enc", &W_enc},
      {"b_enc", &b_enc},
      {"W_dec", &W_dec},
      {"b_dec", &b_dec},
      {"scaling_factor", &scaling_factor}};
  // Check everything before touching any weight, so a bad file leaves the SAE unchanged
  // (load_state_dict(strict=True) semantics: unexpected and missing keys are errors).
  std::vector<std::pair<torch::Tensor*, const torch::Tensor*>> copies;
  bool haveScaling = false;
  for (const auto& [key, value] : tensors) {
    auto it =
        std::find_if(targets.begin(), targets.end(), [&](const auto& t) { return t.first == key; });
    if (it == targets.end()) {
      throw std::runtime_error(sourceName + ": unexpected tensor '" + key + "'");
    }
    if (value.sizes() != it->second->sizes()) {
      throw std::runtime_error(sourceName + ": tensor '" + key + "' has shape " +
                               shapeText(value.sizes()) + ", the SAE expects " +
                               shapeText(it->second->sizes()));
    }
    if (key == "scaling_factor") haveScaling = true;
    copies.emplace_back(it->second, &value);
  }
  for (const auto& [key, target] : targets) {
    if (key == "scaling_factor") continue;
    const bool present =
        std::any_of(tensors.begin(), tensors.end(), [&](const auto& t) { return t.first == key; });
    if (!present) throw std::runtime_error(sourceName + ": missing tensor '" + key + "'");
  }
  torch::NoGradGuard noGrad;
  for (auto& [target, value] : copies) {
    target->copy_(value->to(target->device(), target->scalar_type()));
  }
  if (!haveScaling) scaling_factor.fill_(1.0);  // old saves have no scaling factor
}

}  // namespace sae
