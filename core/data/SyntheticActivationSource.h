#pragma once
#include "data/ActivationSource.h"
#include "data/DataShard.h"

namespace sae {

struct SyntheticOptions {
  int64_t d_in = 64;
  int64_t n_features = 256;           // true feature directions (unit norm, random)
  double feature_probability = 0.01;  // each feature fires independently on each row
  double noise_std = 0.0;             // isotropic Gaussian noise added to every row
  uint64_t seed = 0;
  // Data-parallel: every rank has the same true features; shard index i > 0 draws its firings
  // and noise from a stream seeded from (seed, i), index 0 is the single-process stream.
  DataShard shard;
};

// Ground truth for checking that training recovers features: x = sum_i c_i d_i + noise with
// c_i = 0 except with probability p, then c_i ~ U(0, 1] * magnitude_i (non-negative). The
// stream is deterministic for a given seed and uses its own torch::Generators, so it does not
// disturb the default generator that SAE init and shuffling use. Without noise the stream does
// not depend on how rows are requested (next(300) == next(100) then next(200)).
class SyntheticActivationSource : public ActivationSource {
 public:
  explicit SyntheticActivationSource(const SyntheticOptions& options);
  int64_t dIn() const override { return options_.d_in; }
  torch::Tensor next(int64_t rows) override;
  bool shufflesBuffers() const override { return true; }
  std::string describe() const override;
  StreamState saveState() const override;
  void restoreState(const StreamState& state) override;
  const torch::Tensor& trueFeatures() const { return features_; }  // [n_features, d_in]
  // Mean over true features of the max cosine similarity with any decoder row (W_dec
  // [d_sae, d_in]): 1.0 = every true feature recovered.
  double meanMaxCosineSimilarity(const torch::Tensor& decoder) const;

 private:
  SyntheticOptions options_;
  torch::Generator generator_;       // features, magnitudes, then firing gaps and coefficients
  torch::Generator noiseGenerator_;  // separate, so noise does not shift the firing stream
  torch::Tensor features_;
  torch::Tensor magnitudes_;
  int64_t nextFire_ = -1;  // positions (row-major over rows x features) before the next firing
                           // feature; -1: not drawn yet
};

}  // namespace sae
