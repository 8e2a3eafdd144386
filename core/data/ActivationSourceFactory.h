#pragma once
#include <functional>
#include <memory>
#include <string>

#include "config/RunConfig.h"
#include "data/ActivationSource.h"
#include "data/DataShard.h"

namespace sae {

// Picks the activation source a validated config asks for: synthetic ground truth, cached
// activation files, or a language model run up to the hook on a token dataset. Errors name the
// field to change.
class ActivationSourceFactory {
 public:
  // `log` receives progress lines of slow setup (building the demo world on first use).
  // `shard` (data-parallel training) picks this rank's disjoint share of the data:
  //  - synthetic: the same true features on every rank, firings from a rank-dependent stream
  //    (rank 0's is the single-process stream);
  //  - cached activations: a contiguous block of rows, rank r reading rows
  //    [r * total / world, (r + 1) * total / world) of all files together;
  //  - language model: rows of the packed token stream, rank r taking the r-th block of every
  //    batch of world * store_batch_size rows (all ranks pack the same stream; each runs the
  //    model on its own rows only).
  static std::shared_ptr<ActivationSource> create(
      const RunConfig& config, const std::function<void(const std::string&)>& log = {},
      const DataShard& shard = {});
};

}  // namespace sae
