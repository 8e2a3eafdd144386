#include "data/ActivationSourceFactory.h"

#include <filesystem>
#include <stdexcept>

#include "config/ConfigError.h"
#include "data/CachedActivationSource.h"
#include "data/LanguageModelActivationSource.h"
#include "data/ShardedTokenSource.h"
#include "data/SyntheticActivationSource.h"
#include "data/TokenSourceFactory.h"
#include "demo/DemoWorld.h"
#include "formats/TokenizerDecoder.h"
#include "model/ModelLoader.h"

namespace fs = std::filesystem;

namespace sae {

namespace {

// The BOS id packing prepends: the model folder's tokenizer.json says which token it is
// (<|BOS|> for Neel's tokenizer, <|endoftext|> for the demo world); 1 (gelu-1l's) otherwise.
int64_t bosTokenIdFor(const std::string& modelFolder) {
  const fs::path tokenizer = fs::path(modelFolder) / "tokenizer.json";
  if (fs::exists(tokenizer)) {
    if (const auto bos = TokenizerDecoder::load(tokenizer.string()).bosId()) return *bos;
  }
  return TokenSourceOptions{}.bosTokenId;
}

}  // namespace

std::shared_ptr<ActivationSource> ActivationSourceFactory::create(
    const RunConfig& config, const std::function<void(const std::string&)>& log,
    const DataShard& shard) {
  if (config.use_synthetic_activations) {
    SyntheticOptions options;
    options.d_in = config.d_in;
    options.n_features = config.synthetic_n_features;
    options.feature_probability = config.synthetic_feature_probability;
    options.noise_std = config.synthetic_noise_std;
    options.seed = static_cast<uint64_t>(config.synthetic_seed);
    options.shard = shard;
    return std::make_shared<SyntheticActivationSource>(options);
  }
  if (config.use_cached_activations) {
    return std::make_shared<CachedActivationSource>(config.resolvedCachedActivationsPath(),
                                                    config.d_in, 0, config.totalTrainingTokens(),
                                                    shard);
  }
  // A language model (a folder or a name in the app's models folder / the hub cache) run up to
  // the hook on the dataset's token rows.
  RunConfig resolved = config;
  // "demo": the corpus, tokenizer and small gelu-1l-family model the app builds itself on first
  // use (core/demo/DemoWorld.h).
  if (DemoWorld::usedBy(config.model_name, config.dataset_path)) {
    DemoWorld world(DemoWorld::defaultFolder());
    world.ensureModel(log);
    if (DemoWorld::isDemoName(config.model_name)) resolved.model_name = world.modelFolder();
    if (DemoWorld::isDemoName(config.dataset_path)) resolved.dataset_path = world.tokensPath();
  }
  const std::string modelFolder = ModelLoader::resolveFolder(resolved.model_name);
  auto model = std::make_shared<const HookedTransformer>(ModelLoader::loadFolder(modelFolder));
  TokenSourceOptions tokenOptions;
  tokenOptions.bosTokenId = bosTokenIdFor(modelFolder);
  std::shared_ptr<TokenSource> tokens = TokenSourceFactory::create(resolved, tokenOptions);
  if (!shard.isWhole()) tokens = std::make_shared<ShardedTokenSource>(tokens, shard);
  return std::make_shared<LanguageModelActivationSource>(model, tokens, config.resolvedHookPoint(),
                                                         config.hook_point_head_index,
                                                         config.store_batch_size, config.d_in);
}

}  // namespace sae
