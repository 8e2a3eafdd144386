#include "train/Bf16Gemm.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>
#include <tuple>
#include <vector>

#include <ATen/Parallel.h>
#include <immintrin.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <oneapi/dnnl/dnnl_version.h>

namespace sae {

namespace {

// oneDNN's blocked bf16 weights layout BA16a64b2a (K = dim a, N = dim b): blocks of 32 rows of K
// by 64 columns of N, inside which row pairs (2r, 2r+1) of one column are adjacent, the operand
// order of vdpbf16ps. K is padded to a multiple of 32 and N to one of 64 with zeros. This is
// the layout oneDNN 2.6's brgemm matmul picks itself for "any" weights at every m (checked for
// m from 1 to 2048), so one packed B serves every chunk size.
constexpr int64_t kBlockK = 32;
constexpr int64_t kBlockN = 64;

enum class Layout { Blocked, Plain };

std::string shapeText(int64_t m, int64_t k, int64_t n) {
  return std::to_string(m) + "x" + std::to_string(k) + " by " + std::to_string(k) + "x" +
         std::to_string(n);
}

std::string statusText(dnnl_status_t status) {
  return std::string(dnnl_status2str(status)) + " (" + std::to_string(int(status)) + ")";
}

void check(dnnl_status_t status, const char* what, int64_t m, int64_t k, int64_t n) {
  if (status == dnnl_success) return;
  throw std::runtime_error(std::string("Bf16Gemm: oneDNN ") + what + " failed with status " +
                           statusText(status) + " for the bf16 product " + shapeText(m, k, n));
}

// Round to nearest, ties to even, on the bit pattern: adding 0x7fff plus the lowest kept bit
// carries into the kept half exactly when the dropped half is above the tie, or at the tie with
// an odd kept half. Finite values that round past the largest bf16 carry into the exponent and
// give inf, as they should. NaN is kept apart (the carry could make it inf): quiet bit set.
inline uint16_t roundBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x0040u);
  return uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

// GCC 12 flags its own _mm512_undefined_* (inside the shift and narrowing intrinsics) as
// "(may be) used uninitialized" when the intrinsics come through a target attribute: a false
// positive, silenced for the AVX-512 routines only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// The same rounding for 16 floats; the bf16 bits are left in the low half of each 32-bit lane.
__attribute__((target("avx512f"))) inline __m512i roundBf16x16(__m512 values) {
  const __m512i bits = _mm512_castps_si512(values);
  const __m512i high = _mm512_srli_epi32(bits, 16);
  const __m512i lowestKept = _mm512_and_si512(high, _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lowestKept), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(values, values, _CMP_UNORD_Q);
  return _mm512_mask_or_epi32(rounded, nan, high, _mm512_set1_epi32(0x0040));
}

__attribute__((target("avx512f"))) void toBf16Avx512(const float* src, uint16_t* dst,
                                                     int64_t count) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    const __m512i rounded = roundBf16x16(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(rounded));
  }
  // The tail goes through the scalar routine, so that the tests exercise both.
  for (; i < count; ++i)
    dst[i] = roundBf16(src[i]);
}

bool cpuHasAvx512f() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}

void toBf16Serial(const float* src, uint16_t* dst, int64_t count) {
  if (cpuHasAvx512f()) {
    toBf16Avx512(src, dst, count);
  } else {
    for (int64_t i = 0; i < count; ++i)
      dst[i] = roundBf16(src[i]);
  }
}

// Column blocks [nb0, nb1) of K block kb of the blocked layout, from rows [32 kb, 32 kb + 32) of
// b, zeros outside k x n. Row pair by row pair, so that b is read as two sequential streams of
// up to 16 column blocks (4 KiB per row) rather than 32 rows at once.
__attribute__((target("avx512f"))) void packTileAvx512(const float* b, int64_t k, int64_t n,
                                                       int64_t kb, int64_t nb0, int64_t nb1,
                                                       int64_t kBlocks, uint16_t* packed) {
  for (int64_t pair = 0; pair < kBlockK / 2; ++pair) {
    const int64_t row0 = kb * kBlockK + 2 * pair, row1 = row0 + 1;
    for (int64_t nb = nb0; nb < nb1; ++nb) {
      uint16_t* out = packed + (nb * kBlocks + kb) * kBlockK * kBlockN + pair * 2 * kBlockN;
      for (int64_t group = 0; group < kBlockN / 16; ++group) {
        const int64_t column = nb * kBlockN + 16 * group;
        const int64_t valid = std::clamp<int64_t>(n - column, 0, 16);
        const __mmask16 mask = valid == 16 ? __mmask16(0xffff) : __mmask16((1u << valid) - 1);
        const __m512 v0 =
            row0 < k ? _mm512_maskz_loadu_ps(mask, b + row0 * n + column) : _mm512_setzero_ps();
        const __m512 v1 =
            row1 < k ? _mm512_maskz_loadu_ps(mask, b + row1 * n + column) : _mm512_setzero_ps();
        // Lane j: row0's bf16 in the low half, row1's in the high half.
        const __m512i interleaved =
            _mm512_or_si512(roundBf16x16(v0), _mm512_slli_epi32(roundBf16x16(v1), 16));
        _mm512_storeu_si512(out + group * 32, interleaved);
      }
    }
  }
}

#pragma GCC diagnostic pop

void packBlockScalar(const float* b, int64_t k, int64_t n, int64_t k0, int64_t n0,
                     uint16_t* block) {
  for (int64_t r = 0; r < kBlockK; ++r) {
    for (int64_t c = 0; c < kBlockN; ++c) {
      const int64_t row = k0 + r, column = n0 + c;
      block[(r / 2) * 2 * kBlockN + c * 2 + (r % 2)] =
          row < k && column < n ? roundBf16(b[row * n + column]) : uint16_t(0);
    }
  }
}

// 64-byte aligned storage that only grows.
class AlignedBuffer {
 public:
  ~AlignedBuffer() { std::free(data_); }
  void* reserve(size_t bytes) {
    if (bytes > capacity_) {
      std::free(data_);
      capacity_ = (bytes + 63) / 64 * 64;
      data_ = std::aligned_alloc(64, capacity_);
      if (data_ == nullptr) {
        capacity_ = 0;
        throw std::runtime_error("Bf16Gemm: could not allocate " + std::to_string(bytes) +
                                 " bytes for the bf16 operands");
      }
    }
    return data_;
  }
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
  size_t capacity_ = 0;
};

struct Engine {
  dnnl_engine_t engine = nullptr;
  dnnl_stream_t stream = nullptr;
  ~Engine() {
    if (stream) dnnl_stream_destroy(stream);
    if (engine) dnnl_engine_destroy(engine);
  }
};

// A created matmul with its memory objects (data handles set at each execution).
struct Primitive {
  dnnl_primitive_desc_t desc = nullptr;
  dnnl_primitive_t primitive = nullptr;
  dnnl_memory_t src = nullptr, weights = nullptr, dst = nullptr, scratchpad = nullptr;
  size_t scratchpadBytes = 0;
  size_t weightsBytes = 0;
  std::string implementation;
  ~Primitive() {
    for (dnnl_memory_t memory : {src, weights, dst, scratchpad})
      if (memory) dnnl_memory_destroy(memory);
    if (primitive) dnnl_primitive_destroy(primitive);
    if (desc) dnnl_primitive_desc_destroy(desc);
  }
};

dnnl_status_t weightsDesc(dnnl_memory_desc_t* desc, int64_t k, int64_t n, Layout layout) {
  const dnnl_dims_t dims = {k, n};
  return dnnl_memory_desc_init_by_tag(desc, 2, dims, dnnl_bf16,
                                      layout == Layout::Blocked ? dnnl_BA16a64b2a : dnnl_ab);
}

// Creates the m x k x n bf16 matmul with the given weights layout; on failure returns the status
// and leaves `out` empty. Scratchpad is user-managed so that its buffer is allocated once.
dnnl_status_t createPrimitive(dnnl_engine_t engine, int64_t m, int64_t k, int64_t n, Layout layout,
                              Primitive& out) {
  dnnl_memory_desc_t srcDesc, weightsDescriptor, dstDesc;
  const dnnl_dims_t srcDims = {m, k}, dstDims = {m, n};
  dnnl_status_t status = dnnl_memory_desc_init_by_tag(&srcDesc, 2, srcDims, dnnl_bf16, dnnl_ab);
  if (status == dnnl_success) status = weightsDesc(&weightsDescriptor, k, n, layout);
  if (status == dnnl_success)
    status = dnnl_memory_desc_init_by_tag(&dstDesc, 2, dstDims, dnnl_f32, dnnl_ab);
  dnnl_matmul_desc_t matmul;
  if (status == dnnl_success)
    status = dnnl_matmul_desc_init(&matmul, &srcDesc, &weightsDescriptor, nullptr, &dstDesc);
  if (status != dnnl_success) return status;
  dnnl_primitive_attr_t attr = nullptr;
  status = dnnl_primitive_attr_create(&attr);
  if (status != dnnl_success) return status;
  status = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
  if (status == dnnl_success)
    status = dnnl_primitive_desc_create(&out.desc, &matmul, attr, engine, nullptr);
  dnnl_primitive_attr_destroy(attr);
  if (status != dnnl_success) {
    out.desc = nullptr;
    return status;
  }
  const char* implementation = nullptr;
  if (dnnl_primitive_desc_query(out.desc, dnnl_query_impl_info_str, 0, &implementation) ==
          dnnl_success &&
      implementation != nullptr)
    out.implementation = implementation;
  status = dnnl_primitive_create(&out.primitive, out.desc);
  if (status != dnnl_success) return status;
  const dnnl_memory_desc_t* weightsMd =
      dnnl_primitive_desc_query_md(out.desc, dnnl_query_weights_md, 0);
  const dnnl_memory_desc_t* scratchMd =
      dnnl_primitive_desc_query_md(out.desc, dnnl_query_scratchpad_md, 0);
  out.weightsBytes = dnnl_memory_desc_get_size(weightsMd);
  out.scratchpadBytes = scratchMd ? dnnl_memory_desc_get_size(scratchMd) : 0;
  status =
      dnnl_memory_create(&out.src, dnnl_primitive_desc_query_md(out.desc, dnnl_query_src_md, 0),
                         engine, DNNL_MEMORY_NONE);
  if (status == dnnl_success)
    status = dnnl_memory_create(&out.weights, weightsMd, engine, DNNL_MEMORY_NONE);
  if (status == dnnl_success)
    status =
        dnnl_memory_create(&out.dst, dnnl_primitive_desc_query_md(out.desc, dnnl_query_dst_md, 0),
                           engine, DNNL_MEMORY_NONE);
  if (status == dnnl_success && out.scratchpadBytes > 0)
    status = dnnl_memory_create(&out.scratchpad, scratchMd, engine, DNNL_MEMORY_NONE);
  return status;
}

// oneDNN's reference kernels ("ref:any") accept every type on every CPU but are unusably slow.
bool isReference(const std::string& implementation) {
  return implementation.rfind("ref", 0) == 0;
}

struct Availability {
  bool available = false;
  std::string reason;
};

const Availability& availability() {
  static const Availability result = [] {
    Availability a;
    Engine engine;
    dnnl_status_t status = dnnl_engine_create(&engine.engine, dnnl_cpu, 0);
    if (status != dnnl_success) {
      a.reason = "oneDNN could not create a CPU engine (status " + statusText(status) + ")";
      return a;
    }
    std::string offered;
    for (const Layout layout : {Layout::Blocked, Layout::Plain}) {
      Primitive probe;
      status = createPrimitive(engine.engine, 16, 64, 64, layout, probe);
      if (status == dnnl_success && !isReference(probe.implementation)) {
        a.available = true;
        return a;
      }
      if (status == dnnl_success) offered = probe.implementation;
    }
    a.reason = offered.empty()
                   ? "oneDNN " + std::to_string(DNNL_VERSION_MAJOR) + "." +
                         std::to_string(DNNL_VERSION_MINOR) +
                         " cannot create a bf16 matmul on this CPU (status " + statusText(status) +
                         ")"
                   : "oneDNN offers only its reference kernel (" + offered +
                         ") for a bf16 matmul on this CPU, which needs avx512_bf16 or AMX for a "
                         "usable one";
    return a;
  }();
  return result;
}

}  // namespace

struct Bf16Gemm::Impl {
  Engine engine;
  std::map<std::tuple<int64_t, int64_t, int64_t, Layout>, std::unique_ptr<Primitive>> primitives;
  std::map<std::pair<int64_t, int64_t>, Layout> layouts;  // per (k, n), fixed once found
  AlignedBuffer aBuffer, bBuffer, scratchpad;
  int64_t k = 0, n = 0;
  size_t bBytes = 0;  // of the packed B in bBuffer
  Layout layout = Layout::Blocked;
  std::string implementation;

  Primitive& primitive(int64_t m, int64_t k_, int64_t n_, Layout layout_) {
    auto& slot = primitives[std::make_tuple(m, k_, n_, layout_)];
    if (!slot) {
      auto created = std::make_unique<Primitive>();
      const dnnl_status_t status = createPrimitive(engine.engine, m, k_, n_, layout_, *created);
      if (status != dnnl_success) {
        primitives.erase(std::make_tuple(m, k_, n_, layout_));
        throw std::runtime_error(
            "Bf16Gemm: oneDNN could not create the bf16 matmul for a " + shapeText(m, k_, n_) +
            " product (" + (layout_ == Layout::Blocked ? "blocked" : "plain") +
            " bf16 weights, fp32 output), status " + statusText(status) +
            "; this CPU/oneDNN cannot run the autocast (bfloat16) encoder product: set "
            "autocast to false");
      }
      slot = std::move(created);
    }
    implementation = slot->implementation;
    return *slot;
  }

  // The weights layout for (k, n): blocked when oneDNN takes it with an optimised kernel, plain
  // otherwise (e.g. oneDNN's jit gemm on CPUs without avx512_bf16 wants plain weights).
  Layout layoutFor(int64_t k_, int64_t n_) {
    const auto key = std::make_pair(k_, n_);
    auto it = layouts.find(key);
    if (it != layouts.end()) return it->second;
    Layout chosen = Layout::Plain;
    Primitive probe;
    if (createPrimitive(engine.engine, 1, k_, n_, Layout::Blocked, probe) == dnnl_success &&
        !isReference(probe.implementation))
      chosen = Layout::Blocked;
    layouts.emplace(key, chosen);
    return chosen;
  }
};

Bf16Gemm::Bf16Gemm() : impl_(std::make_unique<Impl>()) {
  check(dnnl_engine_create(&impl_->engine.engine, dnnl_cpu, 0), "engine creation", 0, 0, 0);
  check(dnnl_stream_create(&impl_->engine.stream, impl_->engine.engine, dnnl_stream_default_flags),
        "stream creation", 0, 0, 0);
}

Bf16Gemm::~Bf16Gemm() = default;

bool Bf16Gemm::available() {
  return availability().available;
}

std::string Bf16Gemm::unavailableReason() {
  return availability().reason;
}

void Bf16Gemm::toBf16(const float* src, uint16_t* dst, int64_t count) {
  if (count <= 0) return;
  // 64 Ki elements per task: below that, waking threads costs more than converting.
  at::parallel_for(0, count, int64_t(1) << 16, [&](int64_t begin, int64_t end) {
    toBf16Serial(src + begin, dst + begin, end - begin);
  });
}

float Bf16Gemm::bf16ToFloat(uint16_t bits) {
  const uint32_t wide = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &wide, sizeof value);
  return value;
}

void Bf16Gemm::prepareB(const float* b, int64_t k, int64_t n) {
  if (k < 1 || n < 1 || b == nullptr) {
    throw std::runtime_error("Bf16Gemm::prepareB: B must be a non-empty k x n matrix, got " +
                             std::to_string(k) + "x" + std::to_string(n) +
                             (b == nullptr ? " with no data" : ""));
  }
  Impl& d = *impl_;
  d.k = d.n = 0;  // nothing prepared if anything below throws
  d.layout = d.layoutFor(k, n);
  if (d.layout == Layout::Plain) {
    d.bBytes = size_t(k * n) * sizeof(uint16_t);
    toBf16(b, static_cast<uint16_t*>(d.bBuffer.reserve(d.bBytes)), k * n);
  } else {
    const int64_t kBlocks = (k + kBlockK - 1) / kBlockK, nBlocks = (n + kBlockN - 1) / kBlockN;
    const int64_t blockSize = kBlockK * kBlockN;
    d.bBytes = size_t(kBlocks * nBlocks * blockSize) * sizeof(uint16_t);
    auto* packed = static_cast<uint16_t*>(d.bBuffer.reserve(d.bBytes));
    const bool vector = cpuHasAvx512f();
    // Block (kb, nb) sits at nb * kBlocks + kb (N blocks outermost, as in BA16a64b2a). Tasks are
    // (kb, 16 column blocks), filled row pair by row pair, so that b is read in sequential runs
    // of 4 KiB; measured within 15% of a plain fp32 -> bf16 conversion of b, and faster than
    // visiting whole blocks in either order.
    constexpr int64_t kTile = 16;
    const int64_t tiles = (nBlocks + kTile - 1) / kTile;
    at::parallel_for(0, kBlocks * tiles, 1, [&](int64_t begin, int64_t end) {
      for (int64_t index = begin; index < end; ++index) {
        const int64_t kb = index / tiles, nb0 = (index % tiles) * kTile;
        const int64_t nb1 = std::min(nBlocks, nb0 + kTile);
        if (vector) {
          packTileAvx512(b, k, n, kb, nb0, nb1, kBlocks, packed);
        } else {
          for (int64_t nb = nb0; nb < nb1; ++nb)
            packBlockScalar(b, k, n, kb * kBlockK, nb * kBlockN,
                            packed + (nb * kBlocks + kb) * blockSize);
        }
      }
    });
  }
  d.k = k;
  d.n = n;
}

void Bf16Gemm::multiply(const float* a, float* c, int64_t m) {
  Impl& d = *impl_;
  if (d.k == 0) {
    throw std::runtime_error(
        "Bf16Gemm::multiply: no B prepared; call prepareB(b, k, n) first (after each change of "
        "b)");
  }
  if (m < 0) {
    throw std::runtime_error("Bf16Gemm::multiply: negative row count " + std::to_string(m));
  }
  if (m == 0) return;
  Primitive& p = d.primitive(m, d.k, d.n, d.layout);
  if (p.weightsBytes != d.bBytes) {
    // The packing above and oneDNN's idea of the layout disagree: never read past the buffer.
    throw std::runtime_error("Bf16Gemm: oneDNN expects " + std::to_string(p.weightsBytes) +
                             " bytes of bf16 weights for a " + shapeText(m, d.k, d.n) +
                             " product, prepareB packed " + std::to_string(d.bBytes));
  }
  auto* aBf16 = static_cast<uint16_t*>(d.aBuffer.reserve(size_t(m * d.k) * sizeof(uint16_t)));
  toBf16(a, aBf16, m * d.k);
  void* scratch = p.scratchpadBytes > 0 ? d.scratchpad.reserve(p.scratchpadBytes) : nullptr;
  check(dnnl_memory_set_data_handle(p.src, aBf16), "setting the source", m, d.k, d.n);
  check(dnnl_memory_set_data_handle(p.weights, d.bBuffer.data()), "setting the weights", m, d.k,
        d.n);
  check(dnnl_memory_set_data_handle(p.dst, c), "setting the destination", m, d.k, d.n);
  std::vector<dnnl_exec_arg_t> args = {
      {DNNL_ARG_SRC, p.src}, {DNNL_ARG_WEIGHTS, p.weights}, {DNNL_ARG_DST, p.dst}};
  if (p.scratchpad) {
    check(dnnl_memory_set_data_handle(p.scratchpad, scratch), "setting the scratchpad", m, d.k,
          d.n);
    args.push_back({DNNL_ARG_SCRATCHPAD, p.scratchpad});
  }
  check(dnnl_primitive_execute(p.primitive, d.engine.stream, int(args.size()), args.data()),
        "matmul execution", m, d.k, d.n);
  check(dnnl_stream_wait(d.engine.stream), "stream wait", m, d.k, d.n);
}

void Bf16Gemm::multiply(const float* a, const float* b, float* c, int64_t m, int64_t k, int64_t n) {
  prepareB(b, k, n);
  multiply(a, c, m);
}

int64_t Bf16Gemm::preparedK() const {
  return impl_->k;
}

int64_t Bf16Gemm::preparedN() const {
  return impl_->n;
}

std::string Bf16Gemm::implementation() const {
  return impl_->implementation;
}

double Bf16Gemm::benchmarkGflops(int64_t m, int64_t k, int64_t n, bool includePrepareB,
                                 int repeats) {
  // A private generator: LibTorch's default one is left alone (see GemmKernel).
  std::mt19937 generator(20261130);
  std::normal_distribution<float> normal;
  std::vector<float> a(size_t(m * k)), b(size_t(k * n)), c(size_t(m * n));
  for (float& value : a)
    value = normal(generator);
  for (float& value : b)
    value = normal(generator) * 0.05f;
  Bf16Gemm gemm;
  gemm.multiply(a.data(), b.data(), c.data(), m, k, n);  // warm-up: primitive, pages
  double best = 1e30;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    const auto start = std::chrono::steady_clock::now();
    if (includePrepareB) gemm.prepareB(b.data(), k, n);
    gemm.multiply(a.data(), c.data(), m);
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return 2.0 * double(m) * double(k) * double(n) / best / 1e9;
}

}  // namespace sae
