#pragma once
// SAELens 1.5 ActivationsStore buffer semantics over any ActivationSource:
//  - get_buffer(n): n * store_batch_size * context_size rows from the source; for sources that
//    shuffle (live model), a randperm over rows, then normalisation by the estimated factor;
//  - the storage buffer of N//2 batches, built lazily on first use;
//  - each refill: mix = cat(get_buffer(N//2), storage)[randperm]; first half -> new storage,
//    second half -> batches of train_batch_size in a DataLoader(shuffle=True, drop_last=False)
//    order (a randperm drawn from a generator seeded by one draw of the default generator).
// All randomness comes from torch's default generator, in SAELens's order.
#include <future>
#include <memory>
#include <optional>

#include "config/RunConfig.h"
#include "data/ActivationSource.h"

namespace sae {

struct ActivationStoreOptions {
  int64_t n_batches_in_buffer = 20;
  int64_t store_batch_size = 32;
  int64_t context_size = 128;
  int64_t train_batch_size = 4096;
  bool normalize_activations = false;

  // The store fields of a validated config.
  static ActivationStoreOptions fromConfig(const RunConfig& config);
};

class ActivationStore {
 public:
  ActivationStore(std::shared_ptr<ActivationSource> source, const ActivationStoreOptions& options);

  // [n * store_batch_size * context_size, d_in] (the notebook's get_buffer, one layer).
  torch::Tensor getBuffer(int64_t nBatches);
  // The lazily built storage buffer (SAELens's storage_buffer property; b_dec init reads it).
  const torch::Tensor& storageBuffer();
  // Next training batch [<= train_batch_size, d_in]; refills when the loader is exhausted.
  torch::Tensor nextBatch();

  // sqrt(d_in) / mean row norm, set by the first normalised buffer; empty before that.
  std::optional<double> estimatedNormScalingFactor() const { return scalingFactor_; }
  int64_t dIn() const { return source_->dIn(); }
  const ActivationSource& source() const { return *source_; }
  // Storage buffer, loader rows, order and position, scaling factor, and the source's own
  // state under "source.": what the batches still to come depend on (checkpoint resume).
  StreamState saveState() const;
  // On a fresh store over a fresh source with the same settings, before any batch.
  void restoreState(const StreamState& state);

  // Overlapped pipeline: the source reads the next refill's rows (the language model's forward
  // passes) on a producer thread while the caller trains on the current rows. Only the source's
  // next() moves to that thread; every draw from torch's default generator stays on the caller's
  // thread in SAELens's order, so the batches are the same bit for bit. The caller must not let
  // anything else read from the source's streams (an evaluation drawing prompts from the token
  // stream) before the next refill: that would change which tokens each gets. One buffer is
  // fetched ahead at most. Returns false (and does nothing) when no refill is pending or a
  // prefetch is already running.
  bool prefetchNextBuffer();
  // nextBatch() calls that return rows before one of them refills (0: the next one refills).
  int64_t batchesUntilRefill() const;
  ~ActivationStore();

 private:
  void refill();
  // The source's rows for getBuffer: the prefetched ones when they are for this many rows.
  torch::Tensor sourceRows(int64_t rows);
  std::shared_ptr<ActivationSource> source_;
  ActivationStoreOptions options_;
  std::optional<double> scalingFactor_;
  torch::Tensor storage_;
  torch::Tensor loaderData_;   // second half of the last mix
  torch::Tensor loaderOrder_;  // permutation of loaderData_ rows
  int64_t loaderPos_ = 0;
  std::future<torch::Tensor> prefetched_;
  int64_t prefetchedRows_ = 0;
  // The source's state before the prefetch: a checkpoint taken while rows are fetched ahead
  // describes the stream as if they had not been, so the resumed run reads them again.
  StreamState sourceStateBeforePrefetch_;
};

}  // namespace sae
