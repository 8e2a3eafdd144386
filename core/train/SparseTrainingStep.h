#pragma once
// The forward pass and the gradients of a ReLU SAE's training loss, computed from the active
// (row, latent) pairs only. A trained ReLU SAE fires ~50 of 32,768 latents per token, yet the
// dense step does five full matrix products; only the encoder's product needs every latent.
// Here the encoder product runs dense (in row chunks, into a workspace reused every step), its
// ReLU output becomes a CSR matrix, and the decoder, the (decoder-norm-scaled) L1 term and every
// gradient come from the CSR entries. The values are those of autograd on Sae::forward's loss up
// to float rounding order (tests/train/tst_sparse_step.cpp).
//
// Above the switch density the same loss runs as a chunked dense step instead: per chunk of rows,
// five matrix products (encoder; decoder; dL/dout W_dec^T; the W_dec and W_enc gradients,
// accumulated over the chunks) into two [chunk, d_sae] workspaces allocated once, with the bias,
// ReLU, L1 and masking done in two fused passes over them. Sae::forward + autograd makes a
// dozen element-wise passes over fresh [batch, d_sae] tensors instead, and runs at a fifth of the
// machine's matrix-multiply rate at the notebook's shape.
//
// Applicable when: activation relu, no noise, lp_norm 1, no ghost-grad term this step (no dead
// latents or ghost grads off), float32 on CPU. Otherwise, and for a batch with a NaN
// pre-activation, the step runs Sae::forward and autograd.
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "sae/Sae.h"
#include "train/Bf16Gemm.h"
#include "train/GemmKernel.h"

namespace sae {

// Auto: sparse below the switch density, chunked above it. Dense: always Sae::forward + autograd.
// Sparse / Chunked: that computation wherever it applies (tests compare the paths).
enum class StepPath { Auto, Dense, Sparse, Chunked };

class SparseTrainingStep {
 public:
  // Above this fraction of active (row, latent) pairs Auto runs the chunked dense step. From
  // `sae-train --benchmark`'s sweep (d_in 512, d_sae 4096, batch 1024, 2 cores, 2026-11-30), two
  // runs while other builds shared the cores (the chunked step, all products, slows most):
  //   density          1.7%  4.5%  9.3%   14%   19%   34%   50%
  //   run 1 sparse ms    30   112   137   185   204   377   461
  //   run 1 chunked ms  270   232   225   227   234   245   235   (load 3.3-3.7)
  //   run 2 sparse ms    34    54    90   138   162   265   492
  //   run 2 chunked ms   68    73    73    70    78    74    76   (load 2.4-3.2)
  // The paths cross near 22% in run 1 and near 7% in run 2. At 0.1 the auto step is at most
  // ~25% slower than the faster path in run 2 (7-10%), up to 1.6x in run 1 (10-22%, chunked
  // 225-234 ms against sparse 137-204 ms); it bounds the sparse step's CSR memory (24 bytes per
  // active pair) to 2.4 bytes per (row, latent).
  static constexpr double kDefaultSwitchDensity = 0.1;

  struct Timings {
    double encode = 0;        // encoder products, bias, ReLU (sparse: scan into CSR)
    double encodeGemm = 0;    // of which the matrix products
    double decodeLoss = 0;    // decoder output, MSE (sparse: L1, dL/dpre at active entries)
    double decodeGemm = 0;    // of which the matrix products (chunked step)
    double backward = 0;      // gradients of W_enc, b_enc, W_dec, b_dec
    double backwardGemm = 0;  // of which the matrix products (chunked step)
  };

  explicit SparseTrainingStep(Sae& sae);

  void setPath(StepPath path) { path_ = path; }
  StepPath path() const { return path_; }
  void setSwitchDensity(double density) { switchDensity_ = density; }
  // SAELens's `autocast`: the sparse and chunked steps take the encoder product with
  // bf16-rounded inputs (Bf16Gemm, fp32 accumulation and result); everything else stays fp32.
  // The autograd step runs Sae::forward under LibTorch's bf16 autocast instead.
  void setBf16(bool on);
  bool bf16() const { return bf16_ != nullptr; }
  double switchDensity() const { return switchDensity_; }

  // Rows per chunk of the chunked dense step; 0 (the default) sizes the chunks from d_sae.
  void setChunkedRows(int64_t rows) { chunkedRowsSetting_ = rows; }

  // Whether the sparse and chunked computations can reproduce Sae::forward's loss for this SAE
  // and step.
  static bool applicable(const Sae& sae, const torch::Tensor& x, const torch::Tensor& deadMask);

  // The forward pass. Sparse and chunked: the returned tensors carry no autograd history,
  // feature_acts and hidden_pre are undefined (use firingCounts()/l0()), sae_out is a workspace
  // that the next forward overwrites (clone it to keep it). Dense: Sae::forward's result.
  // The chunked step computes the gradients here too (each chunk's activations are gone once the
  // next chunk runs) into buffers allocated once; the parameters' .grad that still point at those
  // buffers from the previous step are detached first.
  SaeForward forward(const torch::Tensor& x, double l1Coefficient, const torch::Tensor& deadMask);
  // The gradients of the last forward's loss into W_enc/b_enc/W_dec/b_dec .grad (sparse:
  // computed now; chunked: the ones forward computed; both in gradient tensors allocated once;
  // dense: autograd on out.loss).
  void backward(const SaeForward& out);

  // Which computation ran the last forward: Dense (autograd), Sparse or Chunked.
  StepPath lastPath() const { return lastPath_; }
  bool lastWasSparse() const { return lastPath_ == StepPath::Sparse; }
  // Whether backward() writes the gradients itself (sparse or chunked) rather than autograd.
  bool lastUsedOwnGradients() const { return lastPath_ != StepPath::Dense; }
  // Per latent, on how many rows of the last batch it fired ((feature_acts > 0).sum(0), float32).
  const torch::Tensor& firingCounts() const { return firingCounts_; }
  double l0() const { return l0_; }            // mean active latents per row, last batch
  double density() const { return density_; }  // l0 / d_sae
  const Timings& timings() const { return timings_; }
  // The encoder kernel chosen for the row-chunk shape (valid after a sparse forward).
  GemmKernel::Kind kernel() const { return kernel_; }
  int64_t chunkRows() const { return chunkRows_; }
  // The chunked step's rows per chunk and its five products (for a full chunk) with the kernel
  // chosen for each (valid after a chunked forward).
  int64_t chunkedRows() const { return chunkedRows_; }
  const std::vector<GemmKernel::Shape>& chunkedShapes() const { return chunkedShapes_; }
  const std::vector<GemmKernel::Kind>& chunkedKernels() const { return chunkedKernels_; }

 private:
  bool sparseForward(const torch::Tensor& x, double l1Coefficient, double maxDensity,
                     SaeForward& out);
  void sparseBackward();
  bool chunkedForward(const torch::Tensor& x, double l1Coefficient, SaeForward& out);
  void publishGradients();
  void countDense(const SaeForward& out);
  void ensureBatchWorkspaces(int64_t rows);
  void ensureGradientBuffers();
  void prepareChunked(int64_t rows);

  Sae& sae_;
  StepPath path_ = StepPath::Auto;
  double switchDensity_ = kDefaultSwitchDensity;
  StepPath lastPath_ = StepPath::Dense;
  // The encoder product pre[m, d_sae] = in[m, d_in] W_enc in bf16; prepares W_enc's bf16 copy
  // once per forward (the sparse attempt and the chunked step that may follow share it).
  // The weights as this step reads them (contiguous, no autograd) and sae_in (x, or x - b_dec
  // into saeIn_), for xIn_ as set by the forward.
  struct StepInputs {
    torch::Tensor wEnc, bEnc, wDec, bDec, scaling;
    const float* saeIn = nullptr;
  };
  StepInputs stepInputs();
  void bf16EncoderProduct(const float* in, const float* wEnc, float* pre, int64_t m);
  std::unique_ptr<Bf16Gemm> bf16_;
  bool bf16Prepared_ = false;
  bool nanSeen_ = false;  // the last sparse attempt stopped at a NaN pre-activation
  double density_ = 0, l0_ = 0;
  Timings timings_;
  GemmKernel::Kind kernel_ = GemmKernel::Kind::Torch;
  int64_t chunkRows_ = 0;
  torch::Tensor firingCounts_;

  // Workspaces, allocated on first use and reused while the shapes stay the same.
  int64_t rows_ = 0, sparseRows_ = 0;
  double l1Coefficient_ = 0;
  torch::Tensor xIn_, saeIn_, out_, gradOut_, preChunk_, decoderNorms_;
  // Chunked step: activations and dL/dpre of one chunk, W_dec * scaling_factor (when it is not
  // all ones), per-latent sums over the batch.
  int64_t chunkedRowsSetting_ = 0, chunkedRows_ = 0;
  torch::Tensor actChunk_, dPreChunk_, scaledWDec_;
  std::vector<GemmKernel::Shape> chunkedShapes_;
  std::vector<GemmKernel::Kind> chunkedKernels_;
  std::vector<double> colActSum_, colDPreSum_;
  std::vector<float> l1Term_;
  torch::Tensor gradWEnc_, gradBEnc_, gradWDec_, gradBDec_;
  std::vector<int64_t> rowPtr_, colPtr_;
  std::vector<uint8_t> blockCounts_;
  std::vector<int32_t> colIdx_, rowIdx_;
  std::vector<float> actVal_, dPreVal_, cscAct_, cscDPre_;
  std::vector<double> rowMse_, rowPerToken_;
};

}  // namespace sae
