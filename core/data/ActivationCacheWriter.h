#pragma once
// `sae-train cache-activations`: runs a config's activation source (the language model up to
// the hook) once and writes the rows in SAELens's cached-activation layout, which
// CachedActivationSource reads back: DIR/0.safetensors, 1.safetensors, ..., key "activations",
// shape [rows, 1, d_in] (one hook layer). Rows are kept in stream order, unshuffled and
// unnormalised: the store shuffles (and normalises when asked) whatever it reads.
#include <cstdint>
#include <functional>
#include <string>

#include "config/RunConfig.h"
#include "data/ActivationSource.h"

namespace sae {

struct ActivationCachePlan {
  int64_t files = 0;        // buffers written, one file each
  int64_t rowsPerFile = 0;  // n_batches_in_buffer * store_batch_size * context_size
  int64_t rows() const { return files * rowsPerFile; }
};

class ActivationCacheWriter {
 public:
  // (files done, files total) after each file.
  using Progress = std::function<void(int64_t, int64_t)>;

  // Enough whole buffers for the config's total training tokens, plus one: the store keeps
  // half a buffer in storage that training never drains, so a run on exactly the budget would
  // run out (SAELens's ceil(training_tokens / tokens_per_buffer) has the same shortfall).
  static ActivationCachePlan plan(const RunConfig& config);

  // Builds the config's source (a language model or synthetic activations; a config that already
  // reads cached activations is refused) and writes plan(config) into outDir. Throws
  // std::runtime_error naming outDir when it already holds a cache, or the source's error.
  static ActivationCachePlan write(const RunConfig& config, const std::string& outDir,
                                   const Progress& progress = {});
  // Writes `plan.files` files of `plan.rowsPerFile` rows from `source`, each to a temporary
  // name then renamed, so a reader never sees a half-written file.
  static void write(ActivationSource& source, const ActivationCachePlan& plan,
                    const std::string& outDir, const Progress& progress = {});
};

}  // namespace sae
