#include "data/SyntheticActivationSource.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace sae {

namespace {

// meanMaxCosineSimilarity works in chunks of about this many similarities: [n_features, d_sae]
// at once can reach gigabytes.
constexpr int64_t kMaxChunkElements = int64_t{1} << 22;

// A double in [0, 1) from 53 random bits, straight from the generator (no tensor per draw).
double uniform01(at::CPUGeneratorImpl* generator) {
  return static_cast<double>(generator->random64() >> 11) * 0x1.0p-53;
}

// Decorrelates the noise generator's seed from the main one (golden-ratio constant).
constexpr uint64_t kNoiseSeedMix = 0x9E3779B97F4A7C15ULL;
// Spreads the data-parallel ranks' seeds apart (an odd constant from splitmix64).
constexpr uint64_t kShardSeedMix = 0xBF58476D1CE4E5B9ULL;

}  // namespace

SyntheticActivationSource::SyntheticActivationSource(const SyntheticOptions& options)
    : options_(options) {
  if (options.d_in <= 0 || options.n_features <= 0) {
    throw std::runtime_error("synthetic activations: d_in and n_features must be positive");
  }
  if (!(options.feature_probability >= 0.0 && options.feature_probability <= 1.0)) {
    throw std::runtime_error("synthetic activations: feature_probability must be in [0, 1]");
  }
  if (!(options.noise_std >= 0.0)) {
    throw std::runtime_error("synthetic activations: noise_std must be >= 0");
  }
  // A private generator: drawing synthetic rows must not shift the default generator that SAE
  // initialisation and the store's shuffling use (and vice versa).
  generator_ = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  noiseGenerator_ = at::make_generator<at::CPUGeneratorImpl>(options.seed ^ kNoiseSeedMix);
  features_ = torch::randn({options.n_features, options.d_in}, generator_, torch::kFloat32);
  features_ = features_ / features_.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  magnitudes_ = torch::rand({options.n_features}, generator_, torch::kFloat32) + 0.5;
  const DataShard& shard = options.shard;
  if (shard.count < 1 || shard.index < 0 || shard.index >= shard.count)
    throw std::runtime_error("synthetic activations: " + shard.describe() + " is not a shard");
  if (shard.index > 0) {
    // The features above are the same on every rank; the rows from here on are this rank's own.
    const uint64_t seed = options.seed + static_cast<uint64_t>(shard.index) * kShardSeedMix;
    generator_.set_current_seed(seed);
    noiseGenerator_.set_current_seed(seed ^ kNoiseSeedMix);
  }
}

torch::Tensor SyntheticActivationSource::next(int64_t rows) {
  if (rows < 0) throw std::runtime_error("synthetic activations: negative row count requested");
  const int64_t nFeatures = options_.n_features, dIn = options_.d_in;
  if (rows > std::numeric_limits<int64_t>::max() / nFeatures) {
    throw std::runtime_error("synthetic activations: too many rows requested at once");
  }
  // Noise first, in place, and the features added onto it: no temporaries (each fresh
  // multi-megabyte buffer costs page faults that rival the generation itself).
  torch::Tensor x = torch::empty({rows, dIn}, torch::kFloat32);
  if (options_.noise_std > 0.0) {
    x.normal_(0.0, options_.noise_std, noiseGenerator_);
  } else {
    x.zero_();
  }
  const double p = options_.feature_probability;
  if (rows > 0 && p > 0.0) {
    // Firing features are found by jumping geometric gaps through the row-major (row, feature)
    // positions instead of drawing one uniform per position: the same Bernoulli(p) process at
    // a cost proportional to the number of firings (a 10k-row buffer with 4096 features and
    // p = 0.002 needs 84k firings, not 42M uniforms).
    const int64_t total = rows * nFeatures;
    const float* magnitudes = magnitudes_.data_ptr<float>();
    std::vector<int64_t> rowStart(static_cast<size_t>(rows) + 1, 0);
    std::vector<int64_t> firedFeature;
    std::vector<float> coefficient;
    {
      std::lock_guard<std::mutex> lock(generator_.mutex());
      auto* generator = generator_.get<at::CPUGeneratorImpl>();
      const double logMiss = std::log1p(-p);  // -inf for p = 1: every gap is 0
      for (int64_t position = 0;;) {
        if (nextFire_ < 0) {
          const double u = 1.0 - uniform01(generator);  // (0, 1]
          const double gap = std::floor(std::log(u) / logMiss);
          nextFire_ = gap < 4e18 ? static_cast<int64_t>(gap) : int64_t{4'000'000'000'000'000'000};
        }
        if (nextFire_ >= total - position) {  // the next firing is in a later request
          nextFire_ -= total - position;
          break;
        }
        position += nextFire_;
        nextFire_ = -1;
        const int64_t feature = position % nFeatures;
        ++rowStart[static_cast<size_t>(position / nFeatures) + 1];
        firedFeature.push_back(feature);
        // c ~ U(0, 1] x magnitude: strictly positive, so a firing feature is never silent.
        coefficient.push_back(static_cast<float>(1.0 - uniform01(generator)) * magnitudes[feature]);
        ++position;
      }
    }
    for (size_t i = 1; i < rowStart.size(); ++i)
      rowStart[i] += rowStart[i - 1];
    float* out = x.data_ptr<float>();
    const float* features = features_.data_ptr<float>();
    // Rows are independent, so the parallel loop is deterministic.
    at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float* row = out + i * dIn;
        for (int64_t e = rowStart[i]; e < rowStart[i + 1]; ++e) {
          const float c = coefficient[e];
          const float* direction = features + firedFeature[e] * dIn;
          for (int64_t k = 0; k < dIn; ++k)
            row[k] += c * direction[k];
        }
      }
    });
  }
  return x;
}

std::string SyntheticActivationSource::describe() const {
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "synthetic ground truth: %lld unit-norm features in %lld dims, each firing with "
                "p = %g (%.2f active per row), noise std %g, seed %llu",
                static_cast<long long>(options_.n_features), static_cast<long long>(options_.d_in),
                options_.feature_probability,
                options_.feature_probability * static_cast<double>(options_.n_features),
                options_.noise_std, static_cast<unsigned long long>(options_.seed));
  if (!options_.shard.isWhole()) return buf + (", " + options_.shard.describe() + "'s stream");
  return buf;
}

double SyntheticActivationSource::meanMaxCosineSimilarity(const torch::Tensor& decoder) const {
  torch::NoGradGuard noGrad;
  if (decoder.dim() != 2 || decoder.size(1) != options_.d_in || decoder.size(0) == 0) {
    throw std::runtime_error("meanMaxCosineSimilarity: decoder must be [d_sae > 0, " +
                             std::to_string(options_.d_in) + "], got " +
                             std::to_string(decoder.dim()) + "-d tensor");
  }
  torch::Tensor d = decoder.detach().to(torch::kCPU, torch::kFloat32);
  d = d / d.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
  const torch::Tensor dT = d.t().contiguous();
  const int64_t chunk = std::max<int64_t>(1, kMaxChunkElements / d.size(0));
  double sum = 0.0;
  for (int64_t start = 0; start < options_.n_features; start += chunk) {
    const int64_t n = std::min(chunk, options_.n_features - start);
    torch::Tensor sims = features_.narrow(0, start, n).matmul(dT);
    sum += std::get<0>(sims.max(1)).to(torch::kFloat64).sum().item<double>();
  }
  return sum / static_cast<double>(options_.n_features);
}

}  // namespace sae

namespace sae {

StreamState SyntheticActivationSource::saveState() const {
  StreamState state;
  // Handles share the generator; mutex() is only offered on a non-const one.
  for (auto [key, generator] : {std::pair<const char*, at::Generator>{"generator", generator_},
                                {"noise_generator", noiseGenerator_}}) {
    std::lock_guard<std::mutex> lock(generator.mutex());
    state[key] = generator.get_state();
  }
  state["next_fire"] = torch::tensor({nextFire_}, torch::kInt64);
  return state;
}

void SyntheticActivationSource::restoreState(const StreamState& state) {
  for (const char* key : {"generator", "noise_generator", "next_fire"}) {
    if (state.find(key) == state.end())
      throw std::runtime_error(std::string("resume state of synthetic activations has no ") + key);
  }
  try {
    {
      std::lock_guard<std::mutex> lock(generator_.mutex());
      generator_.set_state(state.at("generator"));
    }
    std::lock_guard<std::mutex> lock(noiseGenerator_.mutex());
    noiseGenerator_.set_state(state.at("noise_generator"));
  } catch (const c10::Error& e) {
    throw std::runtime_error("resume state of synthetic activations: bad generator state (" +
                             std::string(e.what_without_backtrace()) + ")");
  }
  nextFire_ = state.at("next_fire").to(torch::kInt64).reshape({-1})[0].item<int64_t>();
}

}  // namespace sae
