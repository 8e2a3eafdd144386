#include "data/ActivationSourceFactory.h"

#include <stdexcept>

#include "config/ConfigError.h"
#include "data/CachedActivationSource.h"
#include "data/SyntheticActivationSource.h"

namespace sae {

std::shared_ptr<ActivationSource> ActivationSourceFactory::create(const RunConfig& config) {
  if (config.use_synthetic_activations) {
    SyntheticOptions options;
    options.d_in = config.d_in;
    options.n_features = config.synthetic_n_features;
    options.feature_probability = config.synthetic_feature_probability;
    options.noise_std = config.synthetic_noise_std;
    options.seed = static_cast<uint64_t>(config.synthetic_seed);
    return std::make_shared<SyntheticActivationSource>(options);
  }
  if (config.use_cached_activations) {
    return std::make_shared<CachedActivationSource>(config.resolvedCachedActivationsPath(),
                                                    config.d_in, 0, config.totalTrainingTokens());
  }
  throw ConfigError(
      "model_name '" + config.model_name +
      "': activations from a language model are not available in this build yet; set "
      "use_cached_activations (with cached_activations_path) or use_synthetic_activations");
}

}  // namespace sae
