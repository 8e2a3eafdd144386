#include "train/SparseTrainingStep.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <ATen/Parallel.h>

namespace sae {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The encoder workspace holds this many floats (32 MiB): [chunk rows, d_sae] stays small next
// to the weights and Adam's state, and a 256 x 512 x 32768 product still runs at full speed.
constexpr int64_t kChunkFloats = int64_t(8) << 20;
// Latents per task of the gradient loop: their W_enc gradient columns are written together,
// so the transposed store touches whole cache lines.
constexpr int64_t kLatentBlock = 16;
// The ReLU scan looks at the pre-activations in blocks of this many and skips empty ones.
constexpr int64_t kScanBlock = 64;

// The hot loops below are compiled for AVX-512, AVX2 and the baseline, and picked at load time
// (the build targets plain x86-64 so that the package runs anywhere).
#define SAEWB_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

SAEWB_CLONES void axpy(float* __restrict y, const float* __restrict x, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += a * x[i];
}

SAEWB_CLONES float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  // 16 partial sums: the compiler may not reorder a float reduction itself.
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int l = 0; l < 16; ++l)
      acc[l] += a[i + l] * b[i + l];
  float total = 0;
  for (; i < n; ++i)
    total += a[i] * b[i];
  for (int l = 0; l < 16; ++l)
    total += acc[l];
  return total;
}

// pre += bias in place; per block of kScanBlock the number of positive entries. Returns the
// row's total; *nan is set when an entry is NaN (the ReLU would hide it from the loss).
SAEWB_CLONES int64_t addBiasAndCount(float* __restrict pre, const float* __restrict bias, int64_t n,
                                     uint8_t* __restrict blockCounts, bool* nan) {
  int64_t total = 0;
  int nanCount = 0;
  for (int64_t j0 = 0, blk = 0; j0 < n; j0 += kScanBlock, ++blk) {
    const int64_t len = std::min(kScanBlock, n - j0);
    int count = 0;
    for (int64_t l = 0; l < len; ++l) {
      const float v = pre[j0 + l] + bias[j0 + l];
      pre[j0 + l] = v;
      count += v > 0.0f;
      nanCount += v != v;
    }
    blockCounts[blk] = static_cast<uint8_t>(count);
    total += count;
  }
  if (nanCount > 0) *nan = true;
  return total;
}

// (residual, per-row squared error): g = scale * (o - x); returns sum((o - x)^2).
SAEWB_CLONES double residual(const float* __restrict o, const float* __restrict x,
                             float* __restrict g, float scale, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) {
      const float diff = o[i + l] - x[i + l];
      g[i + l] = scale * diff;
      acc[l] += diff * diff;
    }
  }
  double total = 0;
  for (; i < n; ++i) {
    const float diff = o[i] - x[i];
    g[i] = scale * diff;
    total += static_cast<double>(diff) * diff;
  }
  for (int l = 0; l < 16; ++l)
    total += acc[l];
  return total;
}

float* ptr(const torch::Tensor& t) {
  return t.data_ptr<float>();
}

}  // namespace

SparseTrainingStep::SparseTrainingStep(Sae& sae) : sae_(sae) {
  firingCounts_ = torch::zeros({sae.options().d_sae}, torch::kFloat32);
}

bool SparseTrainingStep::applicable(const Sae& sae, const torch::Tensor& x,
                                    const torch::Tensor& deadMask) {
  const SaeOptions& o = sae.options();
  if (o.activation_fn != "relu" || o.noise_scale > 0 || o.lp_norm != 1.0) return false;
  if (o.dtype != torch::kFloat32 || !o.device.is_cpu() || !sae.W_enc.device().is_cpu())
    return false;
  if (!o.mse_loss_normalization.empty() && o.mse_loss_normalization != "dense_batch") return false;
  if (x.dim() != 2 || !x.device().is_cpu() || x.size(1) != o.d_in) return false;
  if (o.d_sae >= std::numeric_limits<int32_t>::max() ||
      x.size(0) >= std::numeric_limits<int32_t>::max())
    return false;
  // Sae::forward's ghost-grad condition (training is true in a training step).
  if (o.use_ghost_grads && deadMask.defined() && deadMask.sum().item<int64_t>() > 0) return false;
  return true;
}

SaeForward SparseTrainingStep::forward(const torch::Tensor& x, double l1Coefficient,
                                       const torch::Tensor& deadMask) {
  timings_ = {};
  SaeForward out;
  if (path_ != StepPath::Dense && applicable(sae_, x, deadMask)) {
    // Auto: try the sparse step unless the last dense batch was clearly above the switch point
    // (a sparse attempt that finds the batch too dense stops after the encoder and goes dense).
    const bool trySparse =
        path_ == StepPath::Sparse || lastSparse_ || density_ < 0.9 * switchDensity_;
    const double maxDensity = path_ == StepPath::Sparse ? 2.0 : switchDensity_;
    if (trySparse && sparseForward(x, l1Coefficient, maxDensity, out)) {
      lastSparse_ = true;
      return out;
    }
  }
  lastSparse_ = false;
  const auto start = Clock::now();
  out = sae_.forward(x, l1Coefficient, deadMask, /*training=*/true);
  countDense(out);
  timings_.encode = since(start);  // the whole dense forward
  return out;
}

void SparseTrainingStep::countDense(const SaeForward& out) {
  torch::NoGradGuard noGrad;
  firingCounts_ = (out.feature_acts > 0).sum(0).to(torch::kFloat32);
  const int64_t rows = std::max<int64_t>(1, out.feature_acts.size(0));
  l0_ = firingCounts_.sum().item<double>() / static_cast<double>(rows);
  density_ = l0_ / static_cast<double>(sae_.options().d_sae);
}

void SparseTrainingStep::backward(const SaeForward& out) {
  if (!lastSparse_) {
    const auto start = Clock::now();
    out.loss.backward();
    timings_.backward = since(start);
    return;
  }
  sparseBackward();
}

bool SparseTrainingStep::sparseForward(const torch::Tensor& x, double l1Coefficient,
                                       double maxDensity, SaeForward& out) {
  torch::NoGradGuard noGrad;
  auto start = Clock::now();
  const SaeOptions& o = sae_.options();
  const int64_t rows = x.size(0), dIn = o.d_in, dSae = o.d_sae;
  const auto floatOptions = torch::TensorOptions().dtype(torch::kFloat32);
  xIn_ = x.to(torch::kFloat32).contiguous();
  if (rows != rows_ || !saeIn_.defined()) {
    rows_ = rows;
    saeIn_ = torch::empty({rows, dIn}, floatOptions);
    out_ = torch::empty({rows, dIn}, floatOptions);
    gradOut_ = torch::empty({rows, dIn}, floatOptions);
    rowMse_.assign(rows, 0.0);
    rowPerToken_.assign(rows, 0.0);
    rowPtr_.assign(rows + 1, 0);
    chunkRows_ = std::max<int64_t>(1, std::min<int64_t>(rows, kChunkFloats / dSae));
    preChunk_ = torch::empty({chunkRows_, dSae}, floatOptions);
    kernel_ = GemmKernel::choose(chunkRows_, dIn, dSae);
  }
  const torch::Tensor wEnc = sae_.W_enc.detach().contiguous();
  const torch::Tensor bEnc = sae_.b_enc.detach().contiguous();
  const torch::Tensor wDec = sae_.W_dec.detach().contiguous();
  const torch::Tensor bDec = sae_.b_dec.detach().contiguous();
  const torch::Tensor scaling = sae_.scaling_factor.detach().to(torch::kFloat32).contiguous();
  // SAELens: sae_in = x - b_dec * apply_b_dec_to_input.
  const float* saeIn = ptr(xIn_);
  if (o.apply_b_dec_to_input) {
    at::sub_out(saeIn_, xIn_, bDec);
    saeIn = ptr(saeIn_);
  }

  // 1. Encoder: dense product per row chunk, bias, ReLU into CSR (row, latent, value).
  const int64_t blocksPerRow = (dSae + kScanBlock - 1) / kScanBlock;
  blockCounts_.resize(static_cast<size_t>(chunkRows_ * blocksPerRow));
  const auto maxEntries = static_cast<int64_t>(maxDensity * static_cast<double>(rows * dSae));
  std::vector<int64_t> rowCount(static_cast<size_t>(chunkRows_));
  std::atomic<bool> nan{false};
  rowPtr_[0] = 0;
  float* pre = ptr(preChunk_);
  const float* bias = ptr(bEnc);
  for (int64_t r0 = 0; r0 < rows; r0 += chunkRows_) {
    const int64_t chunk = std::min(chunkRows_, rows - r0);
    const auto gemmStart = Clock::now();
    GemmKernel::multiply(kernel_, saeIn + r0 * dIn, ptr(wEnc), pre, chunk, dIn, dSae);
    timings_.encodeGemm += since(gemmStart);
    at::parallel_for(0, chunk, 16, [&](int64_t begin, int64_t end) {
      bool localNan = false;
      for (int64_t r = begin; r < end; ++r) {
        rowCount[r] = addBiasAndCount(pre + r * dSae, bias, dSae,
                                      blockCounts_.data() + r * blocksPerRow, &localNan);
      }
      if (localNan) nan = true;
    });
    for (int64_t r = 0; r < chunk; ++r)
      rowPtr_[r0 + r + 1] = rowPtr_[r0 + r] + rowCount[r];
    // NaN: the dense step reproduces it in the loss, and the trainer's guard reports it.
    if (nan || rowPtr_[r0 + chunk] > maxEntries) return false;
    colIdx_.resize(static_cast<size_t>(rowPtr_[r0 + chunk]));
    actVal_.resize(colIdx_.size());
    at::parallel_for(0, chunk, 16, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float* p = pre + r * dSae;
        const uint8_t* counts = blockCounts_.data() + r * blocksPerRow;
        int64_t k = rowPtr_[r0 + r];
        for (int64_t blk = 0; blk < blocksPerRow; ++blk) {
          if (counts[blk] == 0) continue;
          const int64_t j1 = std::min(dSae, (blk + 1) * kScanBlock);
          for (int64_t j = blk * kScanBlock; j < j1; ++j) {
            if (p[j] > 0.0f) {
              colIdx_[k] = static_cast<int32_t>(j);
              actVal_[k] = p[j];
              ++k;
            }
          }
        }
      }
    });
  }
  const int64_t nnz = rowPtr_[rows];
  // Firing counts per latent (also the CSC column sizes for the backward pass).
  colPtr_.assign(static_cast<size_t>(dSae + 1), 0);
  for (int64_t k = 0; k < nnz; ++k)
    ++colPtr_[colIdx_[k] + 1];
  {
    float* counts = ptr(firingCounts_);
    for (int64_t j = 0; j < dSae; ++j)
      counts[j] = static_cast<float>(colPtr_[j + 1]);
  }
  for (int64_t j = 0; j < dSae; ++j)
    colPtr_[j + 1] += colPtr_[j];
  l0_ = static_cast<double>(nnz) / static_cast<double>(std::max<int64_t>(rows, 1));
  density_ = l0_ / static_cast<double>(dSae);
  timings_.encode = since(start);
  start = Clock::now();

  // 2. Decoder, MSE, L1 and dL/dpre at the active entries, one row per iteration.
  const bool scaleByNorm = o.scale_sparsity_penalty_by_decoder_norm;
  if (scaleByNorm) decoderNorms_ = at::norm(wDec, 2, {1}, false).contiguous();
  const float* norms = scaleByNorm ? ptr(decoderNorms_) : nullptr;
  torch::Tensor rowWeight;  // dense_batch: per-row 1 / (||x - mean(x)|| + 1e-6)
  if (o.mse_loss_normalization == "dense_batch") {
    const auto centered = xIn_ - xIn_.mean(0, /*keepdim=*/true);
    rowWeight = (1.0 / (at::norm(centered, 2, {-1}, false) + 1e-6)).contiguous();
  }
  const float* weights = rowWeight.defined() ? ptr(rowWeight) : nullptr;
  dPreVal_.resize(static_cast<size_t>(nnz));
  const float* wd = ptr(wDec);
  const float* bd = ptr(bDec);
  const float* sf = ptr(scaling);
  const float* xp = ptr(xIn_);
  float* op = ptr(out_);
  float* gp = ptr(gradOut_);
  const double invRows = 1.0 / static_cast<double>(rows);
  const auto l1PerRow = static_cast<float>(l1Coefficient * invRows);
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* orow = op + r * dIn;
      std::copy(bd, bd + dIn, orow);
      for (int64_t k = rowPtr_[r]; k < rowPtr_[r + 1]; ++k) {
        const int32_t j = colIdx_[k];
        axpy(orow, wd + j * dIn, actVal_[k] * sf[j], dIn);
      }
      const double w = weights ? weights[r] : 1.0;
      const double sq =
          residual(orow, xp + r * dIn, gp + r * dIn, static_cast<float>(2.0 * w * invRows), dIn);
      rowMse_[r] = w * sq;
      double perToken = 0;
      for (int64_t k = rowPtr_[r]; k < rowPtr_[r + 1]; ++k) {
        const int32_t j = colIdx_[k];
        const float norm = norms ? norms[j] : 1.0f;
        perToken += static_cast<double>(actVal_[k]) * norm;
        dPreVal_[k] = sf[j] * dot(gp + r * dIn, wd + j * dIn, dIn) + l1PerRow * norm;
      }
      rowPerToken_[r] = perToken;
    }
  });
  double mse = 0, sparsity = 0;
  for (int64_t r = 0; r < rows; ++r) {
    mse += rowMse_[r];
    sparsity += rowPerToken_[r];
  }
  mse *= invRows;
  sparsity *= invRows;
  out.sae_out = out_;
  out.mse_loss = torch::tensor(static_cast<float>(mse));
  out.sparsity = torch::tensor(static_cast<float>(sparsity));
  out.l1_loss = torch::tensor(static_cast<float>(l1Coefficient * sparsity));
  out.ghost_grad_loss = torch::zeros({}, floatOptions);
  out.loss = torch::tensor(static_cast<float>(mse + l1Coefficient * sparsity));
  l1Coefficient_ = l1Coefficient;
  timings_.decodeLoss = since(start);
  return true;
}

void SparseTrainingStep::sparseBackward() {
  torch::NoGradGuard noGrad;
  const auto start = Clock::now();
  const SaeOptions& o = sae_.options();
  const int64_t rows = rows_, dIn = o.d_in, dSae = o.d_sae;
  const int64_t nnz = rowPtr_[rows];
  const auto floatOptions = torch::TensorOptions().dtype(torch::kFloat32);
  if (!gradWEnc_.defined()) {
    gradWEnc_ = torch::empty({dIn, dSae}, floatOptions);
    gradBEnc_ = torch::empty({dSae}, floatOptions);
    gradWDec_ = torch::empty({dSae, dIn}, floatOptions);
    gradBDec_ = torch::empty({dIn}, floatOptions);
  }

  // CSR -> CSC (per latent, rows ascending): a counting sort on the column pointers.
  rowIdx_.resize(static_cast<size_t>(nnz));
  cscAct_.resize(static_cast<size_t>(nnz));
  cscDPre_.resize(static_cast<size_t>(nnz));
  {
    std::vector<int64_t> next(colPtr_.begin(), colPtr_.end() - 1);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t k = rowPtr_[r]; k < rowPtr_[r + 1]; ++k) {
        const int64_t slot = next[colIdx_[k]]++;
        rowIdx_[slot] = static_cast<int32_t>(r);
        cscAct_[slot] = actVal_[k];
        cscDPre_[slot] = dPreVal_[k];
      }
    }
  }

  const torch::Tensor wDec = sae_.W_dec.detach().contiguous();
  const torch::Tensor scaling = sae_.scaling_factor.detach().to(torch::kFloat32).contiguous();
  const float* wd = ptr(wDec);
  const float* sf = ptr(scaling);
  const float* saeIn = o.apply_b_dec_to_input ? ptr(saeIn_) : ptr(xIn_);
  const float* gp = ptr(gradOut_);
  const bool scaleByNorm = o.scale_sparsity_penalty_by_decoder_norm;
  const float* norms = scaleByNorm ? ptr(decoderNorms_) : nullptr;
  const double l1PerRow = l1Coefficient_ / static_cast<double>(rows);
  float* gWEnc = ptr(gradWEnc_);
  float* gWDec = ptr(gradWDec_);
  float* gBEnc = ptr(gradBEnc_);
  const int64_t blocks = (dSae + kLatentBlock - 1) / kLatentBlock;
  at::parallel_for(0, blocks, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> encRows(static_cast<size_t>(kLatentBlock * dIn));
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t j0 = blk * kLatentBlock, j1 = std::min(dSae, j0 + kLatentBlock);
      std::fill(encRows.begin(), encRows.end(), 0.0f);
      for (int64_t j = j0; j < j1; ++j) {
        float* gd = gWDec + j * dIn;
        float* ge = encRows.data() + (j - j0) * dIn;
        std::fill(gd, gd + dIn, 0.0f);
        double actSum = 0, dPreSum = 0;
        for (int64_t k = colPtr_[j]; k < colPtr_[j + 1]; ++k) {
          const int64_t r = rowIdx_[k];
          // d out / d W_dec[j] = (a * scaling_factor)[r, j] * dL/dout[r]
          axpy(gd, gp + r * dIn, cscAct_[k] * sf[j], dIn);
          // d pre / d W_enc[:, j] = sae_in[r] * dL/dpre[r, j]
          axpy(ge, saeIn + r * dIn, cscDPre_[k], dIn);
          actSum += cscAct_[k];
          dPreSum += cscDPre_[k];
        }
        // The decoder-norm-scaled L1 also pulls on ||W_dec[j]||: its gradient
        // (l1/B * sum_r a[r, j]) * W_dec[j] / ||W_dec[j]||, zero for a zero row (as torch).
        if (norms && norms[j] != 0.0f && actSum != 0) {
          const auto coef = static_cast<float>(l1PerRow * actSum / norms[j]);
          axpy(gd, wd + j * dIn, coef, dIn);
        }
        gBEnc[j] = static_cast<float>(dPreSum);
      }
      // W_enc's gradient is [d_in, d_sae]: store the block's columns transposed.
      const int64_t width = j1 - j0;
      for (int64_t i = 0; i < dIn; ++i) {
        float* dst = gWEnc + i * dSae + j0;
        for (int64_t jj = 0; jj < width; ++jj)
          dst[jj] = encRows[jj * dIn + i];
      }
    }
  });
  // b_dec: sum over rows of dL/dout, minus W_enc dL/db_enc when it is subtracted from the input.
  at::sum_out(gradBDec_, gradOut_, {0});
  if (o.apply_b_dec_to_input) gradBDec_.sub_(at::mv(sae_.W_enc.detach(), gradBEnc_));

  sae_.W_enc.mutable_grad() = gradWEnc_;
  sae_.b_enc.mutable_grad() = gradBEnc_;
  sae_.W_dec.mutable_grad() = gradWDec_;
  sae_.b_dec.mutable_grad() = gradBDec_;
  timings_.backward = since(start);
}

}  // namespace sae
