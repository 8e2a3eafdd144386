#include "data/ActivationStore.h"

#include <cstring>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace sae {

namespace {

// Whether `rows` is a contiguous float32 tensor whose memory nothing else uses (tensorHandles:
// how many Tensor handles the caller itself holds on it), so that it may be rewritten in place.
bool onlyHolder(const torch::Tensor& rows, size_t tensorHandles = 1) {
  return rows.is_contiguous() && rows.scalar_type() == torch::kFloat32 && rows.dim() == 2 &&
         rows.use_count() <= tensorHandles && rows.storage().use_count() == 1;
}

// rows [first, first + count) of a contiguous [n, d] buffer as a tensor on the same memory.
// Not narrow(): a view keeps its base tensor alive too, and the next refill needs to see that
// nothing but the storage half still uses the buffer.
torch::Tensor rowsOf(const torch::Tensor& buffer, int64_t first, int64_t count) {
  const int64_t width = buffer.size(1);
  return torch::empty({0}, buffer.options())
      .set_(buffer.storage(), buffer.storage_offset() + first * width, {count, width}, {width, 1});
}

// rows[i] = old rows[source(i)] for every i at once, source a permutation: rows.index_select(0,
// source) without a second buffer. Each cycle of the permutation is followed with one row held
// aside; every row is copied once.
template <typename Source>
void gatherRowsInPlace(torch::Tensor& rows, const Source& source) {
  const int64_t n = rows.size(0), width = rows.size(1);
  float* data = rows.data_ptr<float>();
  const size_t rowBytes = static_cast<size_t>(width) * sizeof(float);
  std::vector<float> held(static_cast<size_t>(width));
  std::vector<uint8_t> done(static_cast<size_t>(n), 0);
  for (int64_t start = 0; start < n; ++start) {
    if (done[start]) continue;
    std::memcpy(held.data(), data + start * width, rowBytes);
    int64_t to = start;
    while (true) {
      done[to] = 1;
      const int64_t from = source(to);
      if (from == start) {
        std::memcpy(data + to * width, held.data(), rowBytes);
        break;
      }
      std::memcpy(data + to * width, data + from * width, rowBytes);
      to = from;
    }
  }
}

// torch 1.13 draws seeds for the DataLoader this way: `torch.empty((), dtype=torch.int64)
// .random_().item()` on the default generator.
int64_t drawSeedFromDefaultGenerator() {
  return torch::empty({}, torch::kInt64).random_().item<int64_t>();
}

}  // namespace

ActivationStoreOptions ActivationStoreOptions::fromConfig(const RunConfig& config) {
  ActivationStoreOptions options;
  options.n_batches_in_buffer = config.n_batches_in_buffer;
  options.store_batch_size = config.store_batch_size;
  options.context_size = config.context_size;
  options.train_batch_size = config.train_batch_size;
  options.normalize_activations = config.normalize_activations;
  return options;
}

ActivationStore::ActivationStore(std::shared_ptr<ActivationSource> source,
                                 const ActivationStoreOptions& options)
    : source_(std::move(source)), options_(options) {
  if (!source_) throw std::runtime_error("activation store: no activation source");
  if (options.n_batches_in_buffer < 2) {
    // N // 2 batches per refill: N = 1 would give empty buffers and a DataLoader over 0 rows.
    throw std::runtime_error("activation store: n_batches_in_buffer must be at least 2");
  }
  if (options.store_batch_size <= 0 || options.context_size <= 0 || options.train_batch_size <= 0) {
    throw std::runtime_error(
        "activation store: store_batch_size, context_size and train_batch_size must be positive");
  }
}

ActivationStore::~ActivationStore() {
  // A producer still running reads from the source: wait for it before the source goes.
  if (prefetched_.valid()) prefetched_.wait();
}

bool ActivationStore::prefetchNextBuffer() {
  if (prefetched_.valid() || batchesUntilRefill() == 0) return false;
  const int64_t rows =
      (options_.n_batches_in_buffer / 2) * options_.store_batch_size * options_.context_size;
  sourceStateBeforePrefetch_ = source_->saveState();
  prefetchedRows_ = rows;
  const int threads = at::get_num_threads();
  prefetched_ = std::async(std::launch::async, [source = source_, rows, threads] {
    // Grad mode and the intra-op thread count are per thread: set them as the trainer's.
    torch::NoGradGuard noGrad;
    at::set_num_threads(threads);
    return source->next(rows);
  });
  return true;
}

int64_t ActivationStore::batchesUntilRefill() const {
  if (!loaderData_.defined()) return 0;
  const int64_t left = loaderData_.size(0) - loaderPos_;
  return left <= 0 ? 0 : (left + options_.train_batch_size - 1) / options_.train_batch_size;
}

torch::Tensor ActivationStore::sourceRows(int64_t rows) {
  if (prefetched_.valid()) {
    if (prefetchedRows_ != rows)
      throw std::logic_error("activation store: prefetched rows mismatch");
    sourceStateBeforePrefetch_.clear();
    return prefetched_.get();  // rethrows the source's error here, where it would have happened
  }
  return source_->next(rows);
}

torch::Tensor ActivationStore::getBuffer(int64_t nBatches) {
  torch::NoGradGuard noGrad;
  const int64_t rows = nBatches * options_.store_batch_size * options_.context_size;
  torch::Tensor buffer = sourceRows(rows);
  if (buffer.dim() != 2 || buffer.size(0) != rows || buffer.size(1) != dIn() ||
      buffer.scalar_type() != torch::kFloat32) {
    throw std::runtime_error("activation source '" + source_->describe() +
                             "' returned a buffer of the wrong shape or dtype");
  }
  // SAELens 1.5 returns cached buffers straight from disk: no shuffle, no normalisation.
  if (!source_->shufflesBuffers()) return buffer;

  const torch::Tensor order = torch::randperm(rows, torch::kInt64);
  // The source's rows are shuffled where they are when nothing else holds them (a buffer's worth
  // of memory less at the peak of a refill); index_select otherwise. Same rows either way.
  const bool ownRows = onlyHolder(buffer);
  if (ownRows) {
    const int64_t* source = order.data_ptr<int64_t>();
    gatherRowsInPlace(buffer, [source](int64_t i) { return source[i]; });
  } else {
    buffer = buffer.index_select(0, order);
  }
  if (options_.normalize_activations) {
    if (!scalingFactor_) {
      // SAELens: (d_in ** 0.5) / x.norm(dim=-1).mean(), a float32 tensor. Python evaluates
      // `float / tensor` as tensor.reciprocal() * float; doing the same keeps the factor
      // bit-identical. (SAELens also asserts the first buffer has > 3e5 rows; that is a
      // reliability warning, not semantics, so small test buffers are allowed here.)
      const torch::Tensor meanNorm =
          at::linalg_vector_norm(buffer, 2, {-1}, false, c10::nullopt).mean();
      const torch::Tensor factor = meanNorm.reciprocal() * std::sqrt(static_cast<double>(dIn()));
      scalingFactor_ = static_cast<double>(factor.item<float>());  // exact: float fits in double
    }
    buffer = ownRows ? buffer.mul_(*scalingFactor_) : buffer * *scalingFactor_;
  }
  return buffer;
}

const torch::Tensor& ActivationStore::storageBuffer() {
  if (!storage_.defined()) storage_ = getBuffer(options_.n_batches_in_buffer / 2);
  return storage_;
}

void ActivationStore::refill() {
  torch::NoGradGuard noGrad;
  // Python builds the list left to right: the new buffer is drawn before the lazily built
  // storage buffer, and that order decides which randperm each gets.
  torch::Tensor fresh = getBuffer(options_.n_batches_in_buffer / 2);
  const int64_t freshRows = fresh.size(0);
  // A storage buffer not built yet will be built from as many batches as the fresh one.
  const int64_t storageRows = storage_.defined() ? storage_.size(0) : freshRows;
  const int64_t n = freshRows + storageRows;
  // SAELens: mix = cat([fresh, storage])[randperm(n)], then storage = its first half and the
  // loader its second. Done without the two n-row temporaries: the rows go into one n-row
  // buffer laid out [storage | fresh] (the previous mix itself when the storage is its first
  // half and its spent loader half is free to overwrite), then the permutation is applied in
  // place, mapping each cat index to where that row sits. At most one half-buffer is held
  // beside the mix at any time.
  loaderData_ = torch::Tensor();  // spent: the loader reads the new mix from here on
  torch::Tensor mix;
  if (storage_.defined() && storageRows == freshRows && storage_.is_contiguous() &&
      storage_.storage_offset() == 0 &&
      storage_.storage().nbytes() == static_cast<size_t>(n * dIn()) * sizeof(float) &&
      onlyHolder(storage_)) {
    mix = torch::empty({0}, storage_.options()).set_(storage_.storage(), 0, {n, dIn()}, {dIn(), 1});
  } else {
    mix = torch::empty({n, dIn()}, torch::kFloat32);
  }
  mix.narrow(0, storageRows, freshRows).copy_(fresh);
  fresh = torch::Tensor();
  {
    const torch::Tensor& storage = storageBuffer();  // built now when lazy, after the fresh draw
    if (storage.size(0) != storageRows)
      throw std::logic_error("activation store: storage buffer size changed");
    if (storage.data_ptr() != mix.data_ptr()) mix.narrow(0, 0, storageRows).copy_(storage);
  }
  storage_ = torch::Tensor();
  const torch::Tensor order = torch::randperm(n, torch::kInt64);
  const int64_t* catIndex = order.data_ptr<int64_t>();
  gatherRowsInPlace(mix, [&](int64_t i) {
    const int64_t c = catIndex[i];
    return c < freshRows ? storageRows + c : c - freshRows;
  });
  const int64_t half = n / 2;
  storage_ = rowsOf(mix, 0, half);
  loaderData_ = rowsOf(mix, half, n - half);
  // iter(DataLoader(...)) in torch 1.13 draws `_base_seed` (used only by worker processes) from
  // the default generator when the iterator is created; the draw still advances the generator.
  drawSeedFromDefaultGenerator();
  // The RandomSampler's own seed is drawn lazily, on the iterator's first next().
  loaderOrder_ = torch::Tensor();
  loaderPos_ = 0;
}

torch::Tensor ActivationStore::nextBatch() {
  torch::NoGradGuard noGrad;
  if (!loaderData_.defined() || loaderPos_ >= loaderData_.size(0)) refill();
  const int64_t n = loaderData_.size(0);
  if (!loaderOrder_.defined()) {
    // RandomSampler.__iter__ with generator=None: a fresh CPU generator seeded from one draw of
    // the default generator, then randperm(n) on it.
    const int64_t seed = drawSeedFromDefaultGenerator();
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
    loaderOrder_ = torch::randperm(n, generator, torch::kInt64);
  }
  const int64_t count = std::min(options_.train_batch_size, n - loaderPos_);
  torch::Tensor batch = loaderData_.index_select(0, loaderOrder_.narrow(0, loaderPos_, count));
  loaderPos_ += count;
  return batch;
}

}  // namespace sae

namespace sae {

namespace {
// An undefined buffer (not built yet) is saved as a [0, d_in] tensor plus a flag.
torch::Tensor orEmpty(const torch::Tensor& t, int64_t dIn) {
  return t.defined() ? t : torch::empty({0, dIn}, torch::kFloat32);
}
}  // namespace

StreamState ActivationStore::saveState() const {
  StreamState state;
  state["storage"] = orEmpty(storage_, dIn());
  state["loader_data"] = orEmpty(loaderData_, dIn());
  state["loader_order"] = loaderOrder_.defined() ? loaderOrder_ : torch::empty({0}, torch::kInt64);
  state["flags"] = torch::tensor({loaderPos_, int64_t(storage_.defined()),
                                  int64_t(loaderData_.defined()), int64_t(loaderOrder_.defined())},
                                 torch::kInt64);
  state["scaling_factor"] = scalingFactor_ ? torch::tensor({*scalingFactor_}, torch::kFloat64)
                                           : torch::empty({0}, torch::kFloat64);
  // While rows are fetched ahead the source must not be read from two threads; the state saved
  // is the one from before the prefetch (see prefetchNextBuffer).
  if (prefetched_.valid()) prefetched_.wait();
  const StreamState sourceState =
      prefetched_.valid() ? sourceStateBeforePrefetch_ : source_->saveState();
  for (const auto& [name, tensor] : sourceState)
    state["source." + name] = tensor;
  return state;
}

void ActivationStore::restoreState(const StreamState& state) {
  if (prefetched_.valid()) throw std::logic_error("restoreState on a store that fetched ahead");
  auto get = [&](const std::string& key) -> const torch::Tensor& {
    const auto it = state.find(key);
    if (it == state.end())
      throw std::runtime_error("resume state of the activation store has no '" + key + "'");
    return it->second;
  };
  const torch::Tensor flags = get("flags").to(torch::kInt64).contiguous();
  if (flags.numel() != 4) throw std::runtime_error("resume state: store flags must have 4 values");
  auto buffer = [&](const std::string& key, bool defined) {
    const torch::Tensor& t = get(key);
    if (!defined) return torch::Tensor();
    if (t.dim() != 2 || t.size(1) != dIn() || t.scalar_type() != torch::kFloat32)
      throw std::runtime_error("resume state: store buffer '" + key + "' must be float32 [n, " +
                               std::to_string(dIn()) + "]");
    return t;
  };
  storage_ = buffer("storage", flags[1].item<int64_t>() != 0);
  loaderData_ = buffer("loader_data", flags[2].item<int64_t>() != 0);
  loaderOrder_ =
      flags[3].item<int64_t>() != 0 ? get("loader_order").to(torch::kInt64) : torch::Tensor();
  loaderPos_ = flags[0].item<int64_t>();
  if (loaderOrder_.defined() &&
      (!loaderData_.defined() || loaderOrder_.numel() != loaderData_.size(0)))
    throw std::runtime_error("resume state: the loader order does not match the loader rows");
  const torch::Tensor& factor = get("scaling_factor");
  scalingFactor_.reset();
  if (factor.numel() == 1) scalingFactor_ = factor.to(torch::kFloat64).item<double>();
  StreamState sourceState;
  for (const auto& [name, tensor] : state)
    if (name.rfind("source.", 0) == 0) sourceState[name.substr(7)] = tensor;
  source_->restoreState(sourceState);
}

}  // namespace sae
