#include "model/HookedTransformer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <oneapi/dnnl/dnnl.h>
#include <sys/mman.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <new>
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
  bool replaced(const std::string& name) const { return options.replacements.count(name) > 0; }
  // Whether anyone sees this hook's value: if not, the forward may overwrite it in place.
  bool observed(const std::string& name) const {
    return options.cacheAll || options.cacheNames.count(name) || replaced(name);
  }
};

// Whether a tensor is a float32 CPU tensor the hand-written passes below can read.
bool plainFloat(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat32;
}

// Whether autograd needs nothing from an op on these tensors, so out= kernels, raw pointers and
// in-place updates are allowed.
bool noGradNeeded(std::initializer_list<const torch::Tensor*> tensors) {
  if (!torch::GradMode::is_enabled()) return true;
  for (const auto* t : tensors)
    if (t->defined() && t->requires_grad()) return false;
  return true;
}

// Large activation buffers, 2 MB aligned and backed by 2 MB pages where the kernel allows.
// Why: in this VM the first touch of fresh 4 kB pages costs ~3 ms per MB (the 128 MB MLP
// activation took ~0.4 s to page in, longer than its product) and every large torch::empty is
// fresh memory (glibc maps blocks this big anew each time); huge pages cut that to ~0.1 ms per
// MB, and reusing the blocks of the previous forward (the shapes repeat batch after batch) avoids
// it altogether. At most kMaxHeld bytes of freed blocks are kept; the rest go back to the system.
class LargeBlocks {
 public:
  static constexpr size_t kPage = size_t(2) << 20;
  static constexpr size_t kMaxHeld = size_t(512) << 20;

  static LargeBlocks& instance() {
    static auto* blocks = new LargeBlocks;  // never destroyed: tensors may outlive statics
    return *blocks;
  }
  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const auto it = free_.find(bytes);
      if (it != free_.end()) {
        void* memory = it->second;
        free_.erase(it);
        held_ -= bytes;
        return memory;
      }
    }
    void* memory = nullptr;
    if (posix_memalign(&memory, kPage, bytes) != 0) throw std::bad_alloc();
    madvise(memory, bytes, MADV_HUGEPAGE);  // advice only: 4 kB pages if it is refused
    return memory;
  }
  void give(void* memory, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (held_ + bytes <= kMaxHeld) {
        free_.emplace(bytes, memory);
        held_ += bytes;
        return;
      }
    }
    std::free(memory);
  }

 private:
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  size_t held_ = 0;
};

// An uninitialised float32 tensor; from LargeBlocks when it is 8 MB or more.
torch::Tensor largeEmpty(c10::IntArrayRef sizes) {
  const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) * sizeof(float);
  if (bytes < 4 * LargeBlocks::kPage) return torch::empty(sizes, torch::kFloat32);
  const size_t rounded = (bytes + LargeBlocks::kPage - 1) / LargeBlocks::kPage * LargeBlocks::kPage;
  void* memory = LargeBlocks::instance().take(rounded);
  return torch::from_blob(
      memory, sizes, [rounded](void* m) { LargeBlocks::instance().give(m, rounded); },
      torch::kFloat32);
}

// c [m, n] (row stride ldc) = alpha * a [m, k] times b [k, n] (or b^T) + beta * c, row-major,
// through oneDNN's sgemm: OpenMP-threaded like ATen (OpenBLAS's own threads fight ATen's
// spinning OpenMP workers on a small machine), single-threaded inside a parallel region.
void sgemm(bool transB, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
           const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const dnnl_status_t status =
      dnnl_sgemm('N', transB ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (status != dnnl_success) {
    throw std::runtime_error("dnnl_sgemm failed with status " + std::to_string(status) + " for a " +
                             std::to_string(m) + "x" + std::to_string(k) + " by " +
                             std::to_string(k) + "x" + std::to_string(n) + " product");
  }
}

// x [..., in] times W [in, out] plus b [out], as TransformerLens's batch_addmm (the bias is
// written first and the product added to it, as addmm does).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& W, const torch::Tensor& b) {
  auto sizes = x.sizes().vec();
  sizes.back() = W.size(1);
  const auto x2 = x.reshape({-1, W.size(0)});
  if (!(plainFloat(x2) && plainFloat(W) && plainFloat(b) && noGradNeeded({&x, &W, &b}) &&
        x2.stride(1) == 1 && W.stride(1) == 1 && b.dim() == 1 && x2.size(0) > 0 && W.size(0) > 0)) {
    return torch::addmm(b, x2, W).view(sizes);
  }
  const int64_t m = x2.size(0), k = W.size(0), n = W.size(1);
  auto out = largeEmpty({m, n});
  out.copy_(b.unsqueeze(0).expand({m, n}));
  sgemm(false, m, n, k, 1.0f, x2.data_ptr<float>(), x2.stride(0), W.data_ptr<float>(), W.stride(0),
        1.0f, out.data_ptr<float>(), n);
  return out.view(sizes);
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

// layerNorm in one pass per row (the row stays in cache) instead of seven full-tensor passes,
// each with a fresh allocation. Same formula in float32; only the sums are accumulated in
// double, so the result differs from layerNorm's by rounding only. Used without autograd and
// when hook_scale is not replaced (a replaced scale must divide the centred input).
torch::Tensor layerNormFused(const HookContext& hook, const std::string& prefix,
                             const torch::Tensor& input, const torch::Tensor& w,
                             const torch::Tensor& b, double eps) {
  const auto x = input.contiguous();
  const int64_t n = x.size(-1), rows = x.numel() / n;
  auto out = largeEmpty(x.sizes());
  auto scaleSizes = x.sizes().vec();
  scaleSizes.back() = 1;
  auto scale = torch::empty(scaleSizes, x.options());
  const auto wc = w.defined() ? w.contiguous() : w;
  const auto bc = b.defined() ? b.contiguous() : b;
  const float* xp = x.data_ptr<float>();
  float* op = out.data_ptr<float>();
  float* sp = scale.data_ptr<float>();
  const float* wp = wc.defined() ? wc.data_ptr<float>() : nullptr;
  const float* bp = bc.defined() ? bc.data_ptr<float>() : nullptr;
  const float epsF = static_cast<float>(eps);
  at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = xp + r * n;
      float* orow = op + r * n;
      double sum = 0;
      for (int64_t j = 0; j < n; ++j)
        sum += xr[j];
      const float mean = static_cast<float>(sum / static_cast<double>(n));
      double squares = 0;
      for (int64_t j = 0; j < n; ++j) {
        const float c = xr[j] - mean;
        squares += static_cast<double>(c * c);
      }
      const float s = std::sqrt(static_cast<float>(squares / static_cast<double>(n)) + epsF);
      sp[r] = s;
      if (wp) {
        for (int64_t j = 0; j < n; ++j)
          orow[j] = (xr[j] - mean) / s * wp[j] + bp[j];
      } else {
        for (int64_t j = 0; j < n; ++j)
          orow[j] = (xr[j] - mean) / s;
      }
    }
  });
  hook(prefix + "hook_scale", scale);
  return hook(prefix + "hook_normalized", out);
}

// Causal attention z = softmax(mask(q k^T / scale)) v for q, k, v [B, P, H, D] (last stride 1),
// written into a new z [B, P, H, D]. Each (batch row, head) is one task of a parallel loop, and
// works through blocks of query rows: the block's scores ([rows, keys up to the block's end],
// 256 kB) stay in cache through the scale, mask, softmax and product with v, instead of passes
// over [B, H, P, P] (512 MB each for gelu-1l at 16 x 1024) with fresh allocations, and the keys
// after the block (all masked) are never computed. Those keys would get exp(ignore - row max) in
// the softmax: exactly 0 in float32 when ignore is -inf or far enough below every row's max
// (Neel's IGNORE -1e5); if a row's max comes too close to a finite ignore, returns false and the
// caller takes the full path. No autograd; the caller uses it when no hook sees the scores or
// pattern.
bool blockedCausalAttention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                            double scale, double ignore, torch::Tensor& z) {
  const int64_t B = q.size(0), P = q.size(1), H = q.size(2), D = q.size(3);
  if (q.stride(3) != 1 || k.stride(3) != 1 || v.stride(3) != 1) return false;
  constexpr int64_t kBlock = 64;
  const int64_t block = std::min(kBlock, P);
  // Dividing by a power of two is exact, so it can be sgemm's alpha; otherwise divide as the
  // reference does.
  int exponent = 0;
  const bool scaleIsPowerOfTwo = std::frexp(scale, &exponent) == 0.5;
  const float alpha = scaleIsPowerOfTwo ? static_cast<float>(1.0 / scale) : 1.0f;
  const float divisor = static_cast<float>(scale);
  const float ignoreF = static_cast<float>(ignore);
  const bool finiteIgnore = std::isfinite(ignore);
  z = largeEmpty({B, P, H, D});
  const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
  float* zp = z.data_ptr<float>();
  std::atomic<bool> tooClose{false};
  at::parallel_for(0, B * H, 1, [&](int64_t t0, int64_t t1) {
    auto scoreBuf = torch::empty({block * P}, torch::kFloat32);
    float* sp = scoreBuf.data_ptr<float>();
    for (int64_t t = t0; t < t1 && !tooClose.load(std::memory_order_relaxed); ++t) {
      const int64_t b = t / H, h = t % H;
      const float* qbh = qp + b * q.stride(0) + h * q.stride(2);
      const float* kbh = kp + b * k.stride(0) + h * k.stride(2);
      const float* vbh = vp + b * v.stride(0) + h * v.stride(2);
      float* zbh = zp + (b * P * H + h) * D;
      for (int64_t i0 = 0; i0 < P; i0 += block) {
        const int64_t n = std::min(block, P - i0), keys = i0 + n;
        sgemm(true, n, keys, D, alpha, qbh + i0 * q.stride(1), q.stride(1), kbh, k.stride(1), 0.0f,
              sp, keys);
        for (int64_t r = 0; r < n; ++r) {
          float* row = sp + r * keys;
          if (!scaleIsPowerOfTwo) {
            for (int64_t j = 0; j <= i0 + r; ++j)
              row[j] /= divisor;
          }
          for (int64_t j = i0 + r + 1; j < keys; ++j)
            row[j] = ignoreF;
        }
        auto s = torch::from_blob(sp, {n, keys}, torch::kFloat32);
        const auto rowMax = s.amax(-1);
        const float* mp = rowMax.data_ptr<float>();
        bool finite = true;
        float lowest = std::numeric_limits<float>::infinity();
        for (int64_t r = 0; r < n; ++r) {
          finite = finite && std::isfinite(mp[r]);
          lowest = std::min(lowest, mp[r]);
        }
        // exp(ignore - max) is 0 in float32 below about -103.97; keep a margin.
        if (finiteIgnore && keys < P && !(finite && ignore - lowest < -110.0)) {
          tooClose = true;
          return;
        }
        at::_softmax_out(s, s, -1, false);
        if (!finite) s.nan_to_num_(0.0);  // a row's max is NaN or infinite: softmax gave NaN
        sgemm(false, n, D, keys, 1.0f, sp, keys, vbh, v.stride(1), 0.0f, zbh + i0 * H * D, H * D);
      }
    }
  });
  return !tooClose;
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
  // Without autograd (no_grad, or nothing requiring grad) the forward may overwrite fresh
  // intermediates that no hook sees and use out= kernels; with a graph, the plain ops only.
  bool frozen = true;
  for (const auto& [name, t] : params_)
    frozen = frozen && !t.requires_grad();
  const bool noGraph = !torch::GradMode::is_enabled() || frozen;
  auto plain = [&](const torch::Tensor& t) { return noGraph && !t.requires_grad(); };
  // a + b, written into a when a is a fresh result no hook sees (a + b == b + a exactly).
  auto sum = [&](torch::Tensor a, const std::string& aHook, const torch::Tensor& b) {
    if (plain(a) && plain(b) && !hook.observed(aHook) && a.sizes() == b.sizes() &&
        a.scalar_type() == b.scalar_type() && a.is_contiguous())
      return a.add_(b);
    return a + b;
  };
  auto norm2 = [&](const std::string& prefix, const torch::Tensor& x, const torch::Tensor& w,
                   const torch::Tensor& b) {
    if (plain(x) && plainFloat(x) &&
        (!w.defined() || (plainFloat(w) && plainFloat(b) && plain(w) && plain(b))) &&
        !hook.replaced(prefix + "hook_scale"))
      return layerNormFused(hook, prefix, x, w, b, c.eps);
    return layerNorm(hook, prefix, x, w, b, c.eps);
  };

  torch::Tensor embedded;
  if (plainFloat(W_E_) && noGradNeeded({&W_E_})) {
    embedded = largeEmpty({B * P, c.d_model});
    at::index_select_out(embedded, W_E_, 0, tokens.reshape({-1}));
    embedded = embedded.view({B, P, c.d_model});
  } else {
    embedded = torch::embedding(W_E_, tokens);
  }
  const auto embed = hook("hook_embed", embedded);
  const auto pos =
      hook("hook_pos_embed", W_pos_.slice(0, 0, P).unsqueeze(0).expand({B, P, c.d_model}));
  torch::Tensor residual = sum(embed, "hook_embed", pos);

  const int64_t stop = options.stopAtLayer < 0 ? c.n_layers : options.stopAtLayer;
  const double scale = c.use_attn_scale ? c.attn_scale : 1.0;
  const int64_t H = c.n_heads, D = c.d_head;
  for (int64_t l = 0; l < stop; ++l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    const std::string p = "blocks." + std::to_string(l) + ".";
    const auto residPre = hook(p + "hook_resid_pre", residual);
    const auto attnIn =
        norm ? norm2(p + "ln1.", residPre, ln ? L.ln1_w : none, ln ? L.ln1_b : none) : residPre;
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
    torch::Tensor zValue;
    const bool blocked = plain(q) && plain(k) && plain(v) && plainFloat(q) && plainFloat(k) &&
                         plainFloat(v) && !hook.observed(p + "attn.hook_attn_scores") &&
                         !hook.observed(p + "attn.hook_pattern") &&
                         blockedCausalAttention(q, k, v, scale, L.ignore, zValue);
    if (!blocked) {
      const auto causal = torch::triu(torch::ones({P, P}, torch::kBool), 1);
      auto scores = torch::matmul(q.permute({0, 2, 1, 3}), k.permute({0, 2, 3, 1})) / scale;
      scores = hook(p + "attn.hook_attn_scores", scores.masked_fill(causal, L.ignore));
      auto pattern = torch::softmax(scores, -1);
      pattern = hook(p + "attn.hook_pattern", torch::nan_to_num(pattern, 0.0));
      zValue = torch::matmul(pattern, v.permute({0, 2, 1, 3})).permute({0, 2, 1, 3});
    }
    const auto z = hook(p + "attn.hook_z", zValue);
    const auto attnOut =
        hook(p + "hook_attn_out",
             linear(z.reshape({B, P, H * D}), L.W_O.reshape({H * D, c.d_model}), L.b_O));
    if (c.attn_only) {
      residual = hook(p + "hook_resid_post", sum(attnOut, p + "hook_attn_out", residPre));
      continue;
    }
    const auto residMid = hook(p + "hook_resid_mid", sum(attnOut, p + "hook_attn_out", residPre));
    const auto mlpIn =
        norm ? norm2(p + "ln2.", residMid, ln ? L.ln2_w : none, ln ? L.ln2_b : none) : residMid;
    auto pre = hook(p + "mlp.hook_pre", linear(mlpIn, L.W_in, L.b_in));
    torch::Tensor post;
    if (c.act_fn == "solu_ln") {
      const auto mid = hook(p + "mlp.hook_mid", activation(c.act_fn, pre));
      post = hook(p + "mlp.hook_post", norm2(p + "mlp.ln.", mid, L.mlp_ln_w, L.mlp_ln_b));
    } else if (c.act_fn == "gelu" && plain(pre) && !hook.observed(p + "mlp.hook_pre")) {
      post = hook(p + "mlp.hook_post", torch::gelu_(pre));  // the same kernel, in place
    } else {
      post = hook(p + "mlp.hook_post", activation(c.act_fn, pre));
    }
    const auto mlpOut = hook(p + "hook_mlp_out", linear(post, L.W_out, L.b_out));
    residual = hook(p + "hook_resid_post", sum(residMid, p + "hook_resid_mid", mlpOut));
  }
  if (options.stopAtLayer >= 0) {
    result.output = residual;
    return result;
  }
  if (norm) residual = norm2("ln_final.", residual, ln_final_w_, ln_final_b_);
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
