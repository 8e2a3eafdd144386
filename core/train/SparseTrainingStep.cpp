#include "train/SparseTrainingStep.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <sys/mman.h>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>

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

// The chunked step's column sums run in float over groups of this many rows (so that the loops
// vectorise), each group's sums then added in double: the float part sums at most 64 terms.
constexpr int64_t kRowGroup = 64;

// Columns [0, width) of a [rows, ld] block (pointers already at its first column):
// pre += bias and ReLU in place; per column the number of positive entries and their sum are
// added to count and actSum (partial: width floats of scratch). Returns whether a
// pre-activation was NaN (the ReLU would hide it from the loss).
SAEWB_CLONES bool biasReluColumns(float* __restrict pre, int64_t ld, int64_t rows, int64_t width,
                                  const float* __restrict bias, float* __restrict count,
                                  double* __restrict actSum, float* __restrict partial) {
  int nanCount = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += kRowGroup) {
    const int64_t r1 = std::min(rows, r0 + kRowGroup);
    for (int64_t l = 0; l < width; ++l)
      partial[l] = 0.0f;
    for (int64_t r = r0; r < r1; ++r) {
      float* p = pre + r * ld;
      for (int64_t l = 0; l < width; ++l) {
        const float v = p[l] + bias[l];
        const float a = v > 0.0f ? v : 0.0f;
        nanCount += v != v;
        p[l] = a;
        count[l] += v > 0.0f ? 1.0f : 0.0f;
        partial[l] += a;
      }
    }
    for (int64_t l = 0; l < width; ++l)
      actSum[l] += partial[l];
  }
  return nanCount > 0;
}

// dL/dpre from dL/d(acts) (d, in place): where the latent fired, d + l1Term (the L1 term's
// derivative), else 0 (the ReLU's); per column the sum is added to colSum (b_enc's gradient).
SAEWB_CLONES void maskColumns(float* __restrict d, const float* __restrict act, int64_t ld,
                              int64_t rows, int64_t width, const float* __restrict l1Term,
                              double* __restrict colSum, float* __restrict partial) {
  for (int64_t r0 = 0; r0 < rows; r0 += kRowGroup) {
    const int64_t r1 = std::min(rows, r0 + kRowGroup);
    for (int64_t l = 0; l < width; ++l)
      partial[l] = 0.0f;
    for (int64_t r = r0; r < r1; ++r) {
      float* dr = d + r * ld;
      const float* ar = act + r * ld;
      for (int64_t l = 0; l < width; ++l) {
        const float v = ar[l] > 0.0f ? dr[l] + l1Term[l] : 0.0f;
        dr[l] = v;
        partial[l] += v;
      }
    }
    for (int64_t l = 0; l < width; ++l)
      colSum[l] += partial[l];
  }
}

SAEWB_CLONES void scaleRow(float* __restrict y, float a, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] *= a;
}

SAEWB_CLONES void addRow(float* __restrict y, const float* __restrict x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += x[i];
}

// SAELens's autocast for the autograd step: LibTorch's bf16 autocast on the SAE's device for
// the forward only (the backward runs outside it, as `scaler.scale(loss).backward()` does).
class AutocastGuard {
 public:
  AutocastGuard(bool on, const torch::Device& device) : on_(on), cuda_(device.is_cuda()) {
    if (!on_) return;
    if (cuda_) {
      wasEnabled_ = at::autocast::is_enabled();
      previousDtype_ = at::autocast::get_autocast_gpu_dtype();
      at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
      at::autocast::set_enabled(true);
    } else {
      wasEnabled_ = at::autocast::is_cpu_enabled();
      previousDtype_ = at::autocast::get_autocast_cpu_dtype();
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!on_) return;
    // Leaving the outermost autocast region drops its cached casts, as torch.autocast does.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    if (cuda_) {
      at::autocast::set_enabled(wasEnabled_);
      at::autocast::set_autocast_gpu_dtype(previousDtype_);
    } else {
      at::autocast::set_cpu_enabled(wasEnabled_);
      at::autocast::set_autocast_cpu_dtype(previousDtype_);
    }
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool on_, cuda_;
  bool wasEnabled_ = false;
  at::ScalarType previousDtype_ = at::kBFloat16;
};

float* ptr(const torch::Tensor& t) {
  return t.data_ptr<float>();
}

// A large workspace, backed by transparent huge pages where the system allows them on request
// (Debian's default is "madvise"): the chunked step's column passes and the products' strided
// operands touch a new 4 KiB page every row otherwise. Only advice; nothing depends on it.
torch::Tensor largeWorkspace(std::initializer_list<int64_t> sizes) {
  torch::Tensor t = torch::empty(sizes, torch::TensorOptions().dtype(torch::kFloat32));
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t end = begin + static_cast<uintptr_t>(t.numel()) * sizeof(float);
  const uintptr_t first = (begin + page - 1) / page * page;
  if (end > first + page) madvise(reinterpret_cast<void*>(first), end - first, MADV_HUGEPAGE);
  return t;
}

// The chunked step's [chunk, d_sae] workspaces hold this many floats each (128 MiB; 1,024 rows
// at d_sae 32,768). Measured on the notebook shape (d_in 512, batch 4096, 2 cores, oneDNN on all
// five products, 2026-11-30, a shared host, so ranges): 512-row chunks 5.4-5.7 s per step,
// 1,024 rows 3.0-5.0 s, 2,048 rows 4.2-4.3 s; the products whose inner dimension is the chunk
// (the two weight gradients) slow down below 1,024 rows, and larger chunks only add memory.
constexpr int64_t kChunkedFloats = int64_t(32) << 20;
// Latent columns per task of the chunked step's element-wise passes: each row's segment is 1 KiB
// of contiguous memory and the per-column sums stay in L1.
constexpr int64_t kColumnBlock = 256;

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

void SparseTrainingStep::setBf16(bool on) {
  if (on && !bf16_) bf16_ = std::make_unique<Bf16Gemm>();
  if (!on) bf16_.reset();
}

void SparseTrainingStep::bf16EncoderProduct(const float* in, const float* wEnc, float* pre,
                                            int64_t m) {
  const SaeOptions& o = sae_.options();
  if (!bf16Prepared_) {
    bf16_->prepareB(wEnc, o.d_in, o.d_sae);
    bf16Prepared_ = true;
  }
  bf16_->multiply(in, pre, m);
}

SaeForward SparseTrainingStep::forward(const torch::Tensor& x, double l1Coefficient,
                                       const torch::Tensor& deadMask) {
  timings_ = {};
  bf16Prepared_ = false;  // W_enc changed since the last forward
  SaeForward out;
  if (path_ != StepPath::Dense && applicable(sae_, x, deadMask)) {
    // Auto: try the sparse step unless the last batch was clearly above the switch point (a
    // sparse attempt that finds the batch too dense stops after the encoder and goes chunked).
    const bool trySparse = path_ == StepPath::Sparse ||
                           (path_ == StepPath::Auto &&
                            (lastPath_ == StepPath::Sparse || density_ < 0.9 * switchDensity_));
    const double maxDensity = path_ == StepPath::Sparse ? 2.0 : switchDensity_;
    nanSeen_ = false;
    if (trySparse && sparseForward(x, l1Coefficient, maxDensity, out)) {
      lastPath_ = StepPath::Sparse;
      return out;
    }
    // A NaN pre-activation goes to autograd, whose loss shows it to the trainer's guard.
    if (!nanSeen_ && path_ != StepPath::Sparse && chunkedForward(x, l1Coefficient, out)) {
      lastPath_ = StepPath::Chunked;
      return out;
    }
  }
  lastPath_ = StepPath::Dense;
  const auto start = Clock::now();
  {
    AutocastGuard autocast(bf16_ != nullptr, sae_.options().device);
    out = sae_.forward(x, l1Coefficient, deadMask, /*training=*/true);
  }
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
  if (lastPath_ == StepPath::Sparse) {
    sparseBackward();
  } else if (lastPath_ == StepPath::Chunked) {
    const auto start = Clock::now();
    publishGradients();
    timings_.backward += since(start);
  } else {
    const auto start = Clock::now();
    out.loss.backward();
    timings_.backward = since(start);
  }
}

void SparseTrainingStep::ensureBatchWorkspaces(int64_t rows) {
  if (rows == rows_ && saeIn_.defined()) return;
  const auto floatOptions = torch::TensorOptions().dtype(torch::kFloat32);
  const int64_t dIn = sae_.options().d_in;
  rows_ = rows;
  saeIn_ = torch::empty({rows, dIn}, floatOptions);
  out_ = torch::empty({rows, dIn}, floatOptions);
  gradOut_ = torch::empty({rows, dIn}, floatOptions);
  rowMse_.assign(rows, 0.0);
  rowPerToken_.assign(rows, 0.0);
  rowPtr_.assign(rows + 1, 0);
}

void SparseTrainingStep::ensureGradientBuffers() {
  if (gradWEnc_.defined()) return;
  const auto floatOptions = torch::TensorOptions().dtype(torch::kFloat32);
  const int64_t dIn = sae_.options().d_in, dSae = sae_.options().d_sae;
  gradWEnc_ = largeWorkspace({dIn, dSae});
  gradBEnc_ = torch::empty({dSae}, floatOptions);
  gradWDec_ = largeWorkspace({dSae, dIn});
  gradBDec_ = torch::empty({dIn}, floatOptions);
}

void SparseTrainingStep::publishGradients() {
  sae_.W_enc.mutable_grad() = gradWEnc_;
  sae_.b_enc.mutable_grad() = gradBEnc_;
  sae_.W_dec.mutable_grad() = gradWDec_;
  sae_.b_dec.mutable_grad() = gradBDec_;
}

SparseTrainingStep::StepInputs SparseTrainingStep::stepInputs() {
  StepInputs inputs;
  inputs.wEnc = sae_.W_enc.detach().contiguous();
  inputs.bEnc = sae_.b_enc.detach().contiguous();
  inputs.wDec = sae_.W_dec.detach().contiguous();
  inputs.bDec = sae_.b_dec.detach().contiguous();
  inputs.scaling = sae_.scaling_factor.detach().to(torch::kFloat32).contiguous();
  // SAELens: sae_in = x - b_dec * apply_b_dec_to_input.
  inputs.saeIn = ptr(xIn_);
  if (sae_.options().apply_b_dec_to_input) {
    at::sub_out(saeIn_, xIn_, inputs.bDec);
    inputs.saeIn = ptr(saeIn_);
  }
  return inputs;
}

bool SparseTrainingStep::sparseForward(const torch::Tensor& x, double l1Coefficient,
                                       double maxDensity, SaeForward& out) {
  torch::NoGradGuard noGrad;
  auto start = Clock::now();
  const SaeOptions& o = sae_.options();
  const int64_t rows = x.size(0), dIn = o.d_in, dSae = o.d_sae;
  const auto floatOptions = torch::TensorOptions().dtype(torch::kFloat32);
  xIn_ = x.to(torch::kFloat32).contiguous();
  ensureBatchWorkspaces(rows);
  if (rows != sparseRows_ || !preChunk_.defined()) {
    sparseRows_ = rows;
    chunkRows_ = std::max<int64_t>(1, std::min<int64_t>(rows, kChunkFloats / dSae));
    preChunk_ = torch::empty({chunkRows_, dSae}, floatOptions);
    kernel_ = GemmKernel::choose(chunkRows_, dIn, dSae);
  }
  const StepInputs inputs = stepInputs();
  const torch::Tensor &wEnc = inputs.wEnc, &bEnc = inputs.bEnc, &wDec = inputs.wDec;
  const torch::Tensor& scaling = inputs.scaling;
  const float* saeIn = inputs.saeIn;

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
    if (bf16_)
      bf16EncoderProduct(saeIn + r0 * dIn, ptr(wEnc), pre, chunk);
    else
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
    if (nan) nanSeen_ = true;
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
  const float* bd = ptr(inputs.bDec);
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
  ensureGradientBuffers();

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

  publishGradients();
  timings_.backward = since(start);
}

void SparseTrainingStep::prepareChunked(int64_t rows) {
  const SaeOptions& o = sae_.options();
  const int64_t dIn = o.d_in, dSae = o.d_sae;
  int64_t target = 0;
  if (chunkedRowsSetting_ > 0) {
    target = std::min(chunkedRowsSetting_, rows);
  } else {
    // Equal chunks no larger than the workspace allows (no small remainder chunk).
    const int64_t most = std::max<int64_t>(1, kChunkedFloats / dSae);
    const int64_t chunks = (rows + most - 1) / most;
    target = (rows + chunks - 1) / chunks;
  }
  target = std::max<int64_t>(1, target);
  if (target == chunkedRows_ && actChunk_.defined()) return;
  chunkedRows_ = target;
  actChunk_ = largeWorkspace({target, dSae});
  dPreChunk_ = largeWorkspace({target, dSae});
  // {transA, transB, m, k, n, accumulate}
  chunkedShapes_ = {
      {false, false, target, dIn, dSae, false},  // pre = sae_in W_enc
      {false, false, target, dSae, dIn, false},  // out = acts (W_dec * scaling)
      {false, true, target, dIn, dSae, false},   // dL/dacts = dL/dout (W_dec * scaling)^T
      {true, false, dSae, target, dIn, true},    // grad W_dec += acts^T dL/dout
      {true, false, dIn, target, dSae, true}};   // grad W_enc += sae_in^T dL/dpre
  chunkedKernels_.clear();
  for (const auto& s : chunkedShapes_)
    chunkedKernels_.push_back(GemmKernel::choose(s));
}

bool SparseTrainingStep::chunkedForward(const torch::Tensor& x, double l1Coefficient,
                                        SaeForward& out) {
  torch::NoGradGuard noGrad;
  auto start = Clock::now();
  const SaeOptions& o = sae_.options();
  const int64_t rows = x.size(0), dIn = o.d_in, dSae = o.d_sae;
  const auto floatOptions = torch::TensorOptions().dtype(torch::kFloat32);
  xIn_ = x.to(torch::kFloat32).contiguous();
  ensureBatchWorkspaces(rows);
  ensureGradientBuffers();
  prepareChunked(rows);
  // The gradients are written from the first chunk on: a .grad still pointing at the buffers
  // from the last step is detached, so that nothing can change them before backward().
  const std::pair<const torch::Tensor*, const torch::Tensor*> owned[] = {{&sae_.W_enc, &gradWEnc_},
                                                                         {&sae_.b_enc, &gradBEnc_},
                                                                         {&sae_.W_dec, &gradWDec_},
                                                                         {&sae_.b_dec, &gradBDec_}};
  for (const auto& [param, buffer] : owned) {
    if (param->grad().defined() && param->grad().data_ptr() == buffer->data_ptr())
      param->mutable_grad().reset();
  }
  if (!firingCounts_.defined() || firingCounts_.scalar_type() != torch::kFloat32 ||
      !firingCounts_.is_contiguous() || firingCounts_.numel() != dSae)
    firingCounts_ = torch::zeros({dSae}, floatOptions);
  firingCounts_.zero_();
  colActSum_.assign(static_cast<size_t>(dSae), 0.0);
  colDPreSum_.assign(static_cast<size_t>(dSae), 0.0);

  const StepInputs inputs = stepInputs();
  const torch::Tensor &wEnc = inputs.wEnc, &bEnc = inputs.bEnc, &wDec = inputs.wDec;
  const torch::Tensor& scaling = inputs.scaling;
  const float* saeIn = inputs.saeIn;
  // out = (acts * scaling) W_dec = acts (scaling-scaled rows of W_dec): the scaling moves onto
  // W_dec once per step instead of onto every activation; the backward products use the same
  // scaled W_dec, and W_dec's own gradient is scaled per row at the end.
  const bool scaled = !(scaling == 1.0f).all().item<bool>();
  const float* wds = ptr(wDec);
  if (scaled) {
    if (!scaledWDec_.defined()) scaledWDec_ = torch::empty({dSae, dIn}, floatOptions);
    at::mul_out(scaledWDec_, wDec, scaling.unsqueeze(1));
    wds = ptr(scaledWDec_);
  }
  const bool scaleByNorm = o.scale_sparsity_penalty_by_decoder_norm;
  if (scaleByNorm) decoderNorms_ = at::norm(wDec, 2, {1}, false).contiguous();
  const float* norms = scaleByNorm ? ptr(decoderNorms_) : nullptr;
  const double invRows = 1.0 / static_cast<double>(rows);
  // d(l1 * mean_rows sum_j |acts * norm_j|) / d acts = l1 / B * norm_j where acts > 0.
  l1Term_.resize(static_cast<size_t>(dSae));
  for (int64_t j = 0; j < dSae; ++j)
    l1Term_[j] = static_cast<float>(l1Coefficient * invRows * (norms ? norms[j] : 1.0));
  torch::Tensor rowWeight;  // dense_batch: per-row 1 / (||x - mean(x)|| + 1e-6)
  if (o.mse_loss_normalization == "dense_batch") {
    const auto centered = xIn_ - xIn_.mean(0, /*keepdim=*/true);
    rowWeight = (1.0 / (at::norm(centered, 2, {-1}, false) + 1e-6)).contiguous();
  }
  const float* weights = rowWeight.defined() ? ptr(rowWeight) : nullptr;
  const float* bias = ptr(bEnc);
  const float* bd = ptr(inputs.bDec);
  const float* xp = ptr(xIn_);
  float* op = ptr(out_);
  float* gp = ptr(gradOut_);
  float* act = ptr(actChunk_);
  float* dPre = ptr(dPreChunk_);
  float* counts = ptr(firingCounts_);
  float* gWEnc = ptr(gradWEnc_);
  float* gWDec = ptr(gradWDec_);
  const int64_t columnBlocks = (dSae + kColumnBlock - 1) / kColumnBlock;
  timings_.encode += since(start);

  for (int64_t r0 = 0; r0 < rows; r0 += chunkedRows_) {
    const int64_t chunk = std::min(chunkedRows_, rows - r0);
    std::vector<GemmKernel::Shape> shapes = chunkedShapes_;
    shapes[0].m = shapes[1].m = shapes[2].m = chunk;
    shapes[3].k = shapes[4].k = chunk;
    shapes[3].accumulate = shapes[4].accumulate = r0 > 0;  // the first chunk overwrites
    const float* in = saeIn + r0 * dIn;
    float* gChunk = gp + r0 * dIn;

    // Encoder: pre = sae_in W_enc, then bias, ReLU, firing counts and activation sums.
    start = Clock::now();
    if (bf16_)
      bf16EncoderProduct(in, ptr(wEnc), act, chunk);
    else
      GemmKernel::multiply(chunkedKernels_[0], shapes[0], in, ptr(wEnc), act);
    timings_.encodeGemm += since(start);
    std::atomic<bool> nan{false};
    at::parallel_for(0, columnBlocks, 1, [&](int64_t begin, int64_t end) {
      float localCount[kColumnBlock], partial[kColumnBlock];
      double localSum[kColumnBlock];
      for (int64_t blk = begin; blk < end; ++blk) {
        const int64_t j0 = blk * kColumnBlock, width = std::min(kColumnBlock, dSae - j0);
        std::fill(localCount, localCount + width, 0.0f);
        std::fill(localSum, localSum + width, 0.0);
        if (biasReluColumns(act + j0, dSae, chunk, width, bias + j0, localCount, localSum, partial))
          nan = true;
        for (int64_t l = 0; l < width; ++l) {
          counts[j0 + l] += localCount[l];
          colActSum_[j0 + l] += localSum[l];
        }
      }
    });
    timings_.encode += since(start);
    if (nan) return false;

    // Decoder, then b_dec, the residual (dL/dout, as the sparse step scales it) and the MSE.
    start = Clock::now();
    GemmKernel::multiply(chunkedKernels_[1], shapes[1], act, wds, op + r0 * dIn);
    timings_.decodeGemm += since(start);
    at::parallel_for(0, chunk, 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t r = r0 + i;
        float* orow = op + r * dIn;
        addRow(orow, bd, dIn);
        const double w = weights ? weights[r] : 1.0;
        rowMse_[r] = w * residual(orow, xp + r * dIn, gp + r * dIn,
                                  static_cast<float>(2.0 * w * invRows), dIn);
      }
    });
    timings_.decodeLoss += since(start);

    // Backward: dL/dacts, W_dec's gradient, dL/dpre (ReLU mask, L1 term), W_enc's gradient.
    start = Clock::now();
    auto gemmStart = Clock::now();
    GemmKernel::multiply(chunkedKernels_[2], shapes[2], gChunk, wds, dPre);
    GemmKernel::multiply(chunkedKernels_[3], shapes[3], act, gChunk, gWDec);
    double gemm = since(gemmStart);
    at::parallel_for(0, columnBlocks, 1, [&](int64_t begin, int64_t end) {
      float partial[kColumnBlock];
      double localSum[kColumnBlock];
      for (int64_t blk = begin; blk < end; ++blk) {
        const int64_t j0 = blk * kColumnBlock, width = std::min(kColumnBlock, dSae - j0);
        std::fill(localSum, localSum + width, 0.0);
        maskColumns(dPre + j0, act + j0, dSae, chunk, width, l1Term_.data() + j0, localSum,
                    partial);
        for (int64_t l = 0; l < width; ++l)
          colDPreSum_[j0 + l] += localSum[l];
      }
    });
    gemmStart = Clock::now();
    GemmKernel::multiply(chunkedKernels_[4], shapes[4], in, dPre, gWEnc);
    gemm += since(gemmStart);
    timings_.backwardGemm += gemm;
    timings_.backward += since(start);
  }

  // W_dec's gradient: the scaling factor per row, and the decoder-norm-scaled L1's pull on
  // ||W_dec[j]||, (l1/B * sum_r acts[r, j]) * W_dec[j] / ||W_dec[j]|| (zero for a zero row).
  start = Clock::now();
  const float* wd = ptr(wDec);
  const float* sf = ptr(scaling);
  float* gBEnc = ptr(gradBEnc_);
  at::parallel_for(0, dSae, 64, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      float* gd = gWDec + j * dIn;
      if (scaled) scaleRow(gd, sf[j], dIn);
      if (norms && norms[j] != 0.0f && colActSum_[j] != 0) {
        const auto coef = static_cast<float>(l1Coefficient * invRows * colActSum_[j] / norms[j]);
        axpy(gd, wd + j * dIn, coef, dIn);
      }
      gBEnc[j] = static_cast<float>(colDPreSum_[j]);
    }
  });
  // b_dec: sum over rows of dL/dout, minus W_enc dL/db_enc when it is subtracted from the input.
  at::sum_out(gradBDec_, gradOut_, {0});
  if (o.apply_b_dec_to_input) gradBDec_.sub_(at::mv(wEnc, gradBEnc_));
  timings_.backward += since(start);

  double mse = 0, sparsity = 0, fired = 0;
  for (int64_t r = 0; r < rows; ++r)
    mse += rowMse_[r];
  for (int64_t j = 0; j < dSae; ++j) {
    sparsity += colActSum_[j] * (norms ? norms[j] : 1.0);
    fired += counts[j];
  }
  mse *= invRows;
  sparsity *= invRows;
  l0_ = fired * invRows;
  density_ = l0_ / static_cast<double>(dSae);
  out.sae_out = out_;
  out.mse_loss = torch::tensor(static_cast<float>(mse));
  out.sparsity = torch::tensor(static_cast<float>(sparsity));
  out.l1_loss = torch::tensor(static_cast<float>(l1Coefficient * sparsity));
  out.ghost_grad_loss = torch::zeros({}, floatOptions);
  out.loss = torch::tensor(static_cast<float>(mse + l1Coefficient * sparsity));
  l1Coefficient_ = l1Coefficient;
  return true;
}

}  // namespace sae
