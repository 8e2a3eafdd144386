#pragma once
// The forward pass and the gradients of a ReLU SAE's training loss, computed from the active
// (row, latent) pairs only. A trained ReLU SAE fires ~50 of 32,768 latents per token, yet the
// dense step does five full matrix products; only the encoder's product needs every latent.
// Here the encoder product runs dense (in row chunks, into a workspace reused every step), its
// ReLU output becomes a CSR matrix, and the decoder, the (decoder-norm-scaled) L1 term and every
// gradient come from the CSR entries. The values are those of autograd on Sae::forward's loss up
// to float rounding order (tests/train/tst_sparse_step.cpp).
//
// Applicable when: activation relu, no noise, lp_norm 1, no ghost-grad term this step (no dead
// latents or ghost grads off), float32 on CPU. Otherwise, and when the batch is denser than the
// switch point (Auto), the step runs Sae::forward and autograd.
#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "sae/Sae.h"
#include "train/GemmKernel.h"

namespace sae {

enum class StepPath { Auto, Dense, Sparse };

class SparseTrainingStep {
 public:
  // Above this fraction of active (row, latent) pairs Auto runs the dense step. From
  // `sae-train --benchmark`'s sweep (d_in 512, d_sae 4096, batch 1024, 2 cores, 2026-11-30):
  // sparse 44 / 118 / 202 / 350 ms against dense 398 / 369 / 392 / 291 ms at densities 1.7% /
  // 9% / 19% / 34%, so the paths cross between 19% and 34%; 0.2 keeps the sparse step where it
  // wins clearly and bounds its CSR memory (24 bytes per active pair).
  static constexpr double kDefaultSwitchDensity = 0.2;

  struct Timings {
    double encode = 0;      // encoder product, bias, ReLU scan into CSR
    double encodeGemm = 0;  // of which the matrix products
    double decodeLoss = 0;  // decoder output, MSE, L1, dL/dpre at active entries
    double backward = 0;    // gradients of W_enc, b_enc, W_dec, b_dec
  };

  explicit SparseTrainingStep(Sae& sae);

  void setPath(StepPath path) { path_ = path; }
  StepPath path() const { return path_; }
  void setSwitchDensity(double density) { switchDensity_ = density; }
  double switchDensity() const { return switchDensity_; }

  // Whether the sparse computation can reproduce Sae::forward's loss for this SAE and step.
  static bool applicable(const Sae& sae, const torch::Tensor& x, const torch::Tensor& deadMask);

  // The forward pass. Sparse: the returned tensors carry no autograd history, feature_acts and
  // hidden_pre are undefined (use firingCounts()/l0()), sae_out is a workspace that the next
  // forward overwrites (clone it to keep it). Dense: Sae::forward's result.
  SaeForward forward(const torch::Tensor& x, double l1Coefficient, const torch::Tensor& deadMask);
  // The gradients of the last forward's loss into W_enc/b_enc/W_dec/b_dec .grad (sparse:
  // written into gradient tensors allocated once; dense: autograd on out.loss).
  void backward(const SaeForward& out);

  bool lastWasSparse() const { return lastSparse_; }
  // Per latent, on how many rows of the last batch it fired ((feature_acts > 0).sum(0), float32).
  const torch::Tensor& firingCounts() const { return firingCounts_; }
  double l0() const { return l0_; }            // mean active latents per row, last batch
  double density() const { return density_; }  // l0 / d_sae
  const Timings& timings() const { return timings_; }
  // The encoder kernel chosen for the row-chunk shape (valid after a sparse forward).
  GemmKernel::Kind kernel() const { return kernel_; }
  int64_t chunkRows() const { return chunkRows_; }

 private:
  bool sparseForward(const torch::Tensor& x, double l1Coefficient, double maxDensity,
                     SaeForward& out);
  void sparseBackward();
  void countDense(const SaeForward& out);

  Sae& sae_;
  StepPath path_ = StepPath::Auto;
  double switchDensity_ = kDefaultSwitchDensity;
  bool lastSparse_ = false;
  double density_ = 0, l0_ = 0;
  Timings timings_;
  GemmKernel::Kind kernel_ = GemmKernel::Kind::Torch;
  int64_t chunkRows_ = 0;
  torch::Tensor firingCounts_;

  // Workspaces, allocated on first use and reused while the shapes stay the same.
  int64_t rows_ = 0;
  double l1Coefficient_ = 0;
  torch::Tensor xIn_, saeIn_, out_, gradOut_, preChunk_, decoderNorms_;
  torch::Tensor gradWEnc_, gradBEnc_, gradWDec_, gradBDec_;
  std::vector<int64_t> rowPtr_, colPtr_;
  std::vector<uint8_t> blockCounts_;
  std::vector<int32_t> colIdx_, rowIdx_;
  std::vector<float> actVal_, dPreVal_, cscAct_, cscDPre_;
  std::vector<double> rowMse_, rowPerToken_;
};

}  // namespace sae
