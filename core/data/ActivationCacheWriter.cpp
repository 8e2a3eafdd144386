#include "data/ActivationCacheWriter.h"

#include <filesystem>
#include <stdexcept>

#include "data/ActivationSourceFactory.h"
#include "formats/Safetensors.h"

namespace sae {

namespace fs = std::filesystem;

ActivationCachePlan ActivationCacheWriter::plan(const RunConfig& config) {
  ActivationCachePlan p;
  p.rowsPerFile = config.n_batches_in_buffer * config.store_batch_size * config.context_size;
  if (p.rowsPerFile <= 0) {
    throw std::runtime_error(
        "cache-activations: n_batches_in_buffer * store_batch_size * context_size must be "
        "positive");
  }
  const int64_t tokens = config.totalTrainingTokens();
  p.files = (tokens + p.rowsPerFile - 1) / p.rowsPerFile + 1;
  return p;
}

ActivationCachePlan ActivationCacheWriter::write(const RunConfig& config, const std::string& outDir,
                                                 const Progress& progress) {
  if (config.use_cached_activations) {
    throw std::runtime_error(
        "cache-activations: the config already reads cached activations "
        "(use_cached_activations is true); set use_cached_activations=false so the model "
        "produces them");
  }
  if (outDir.empty()) throw std::runtime_error("cache-activations: give an output folder (--out)");
  std::error_code ec;
  if (fs::exists(fs::path(outDir) / "0.safetensors", ec)) {
    throw std::runtime_error("cache-activations: '" + outDir +
                             "' already holds a cache (0.safetensors); choose an empty folder "
                             "or delete the old cache first");
  }
  if (fs::exists(outDir, ec) && !fs::is_directory(outDir, ec)) {
    throw std::runtime_error("cache-activations: '" + outDir + "' exists and is not a folder");
  }
  const ActivationCachePlan p = plan(config);
  const auto source = ActivationSourceFactory::create(config);
  write(*source, p, outDir, progress);
  return p;
}

void ActivationCacheWriter::write(ActivationSource& source, const ActivationCachePlan& plan,
                                  const std::string& outDir, const Progress& progress) {
  std::error_code ec;
  fs::create_directories(outDir, ec);
  if (ec) {
    throw std::runtime_error("cache-activations: cannot create '" + outDir + "': " + ec.message());
  }
  torch::NoGradGuard noGrad;
  for (int64_t i = 0; i < plan.files; ++i) {
    // [rows, 1, d_in]: SAELens's cache keeps a layer axis; CachedActivationSource selects 0.
    const torch::Tensor rows = source.next(plan.rowsPerFile).to(torch::kFloat32).unsqueeze(1);
    const std::string file = (fs::path(outDir) / (std::to_string(i) + ".safetensors")).string();
    Safetensors::write(file, {{"activations", rows}});
    if (progress) progress(i + 1, plan.files);
  }
}

}  // namespace sae
