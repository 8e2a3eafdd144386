#pragma once
#include <string>
#include <vector>

#include "data/ActivationSource.h"
#include "data/DataShard.h"

namespace sae {

// SAELens's cached-activation layout: `{path}/0.safetensors, 1.safetensors, ...`, key
// "activations", shape [n, d_in] or [n, n_layers, d_in] (the layer is picked). Files are read
// in numeric order, rows in file order, never shuffled or normalised (SAELens semantics).
// Unlike SAELens 1.5, a partly consumed file continues where it stopped instead of being
// re-read from its start (SAELens's next_idx_within_buffer is never used: a bug).
class CachedActivationSource : public ActivationSource {
 public:
  // Throws std::runtime_error if the folder is missing, holds no 0.safetensors, or a file's
  // "activations" header does not match d_in / layerIndex (message names the file and shapes).
  // Only headers are read here. `trainingTokens` (the config's training_tokens, 0 = unknown)
  // only makes the run-out error say how many tokens the config asks for. `shard`
  // (data-parallel) reads a contiguous block of the rows of all files together: rank r of w
  // reads rows [r * total / w, (r + 1) * total / w).
  CachedActivationSource(const std::string& folder, int64_t dIn, int64_t layerIndex = 0,
                         int64_t trainingTokens = 0, const DataShard& shard = {});
  int64_t dIn() const override { return dIn_; }
  torch::Tensor next(int64_t rows) override;
  bool shufflesBuffers() const override { return false; }
  std::string describe() const override;
  StreamState saveState() const override;
  void restoreState(const StreamState& state) override;
  // Total rows over all files (read from headers only).
  int64_t totalRows() const { return totalRows_; }

 private:
  torch::Tensor loadFile(size_t index) const;
  std::string folder_;
  int64_t dIn_, layerIndex_, trainingTokens_;
  int64_t rowsServed_ = 0;
  std::vector<std::string> files_;
  std::vector<int64_t> fileRows_;
  int64_t totalRows_ = 0;
  size_t fileIndex_ = 0;
  int64_t rowInFile_ = 0;
  DataShard shard_;
  int64_t shardStart_ = 0, shardRows_ = 0;  // this shard's first row and row count
  int64_t skipInFile_ = 0;  // where the shard starts in fileIndex_, until that file is loaded
  torch::Tensor current_;
};

}  // namespace sae
