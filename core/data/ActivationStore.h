#pragma once
// SAELens 1.5 ActivationsStore buffer semantics over any ActivationSource:
//  - get_buffer(n): n * store_batch_size * context_size rows from the source; for sources that
//    shuffle (live model), a randperm over rows, then normalisation by the estimated factor;
//  - the storage buffer of N//2 batches, built lazily on first use;
//  - each refill: mix = cat(get_buffer(N//2), storage)[randperm]; first half -> new storage,
//    second half -> batches of train_batch_size in a DataLoader(shuffle=True, drop_last=False)
//    order (a randperm drawn from a generator seeded by one draw of the default generator).
// All randomness comes from torch's default generator, in SAELens's order.
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

 private:
  void refill();
  std::shared_ptr<ActivationSource> source_;
  ActivationStoreOptions options_;
  std::optional<double> scalingFactor_;
  torch::Tensor storage_;
  torch::Tensor loaderData_;   // second half of the last mix
  torch::Tensor loaderOrder_;  // permutation of loaderData_ rows
  int64_t loaderPos_ = 0;
};

}  // namespace sae
