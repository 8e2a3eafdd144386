#include "analysis/DataInspection.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "config/ConfigError.h"
#include "data/ActivationSourceFactory.h"
#include "data/ActivationStore.h"
#include "train/Trainer.h"

namespace sae {

namespace {

// Puts torch's default CPU generator back as it was, also when the inspection throws.
class DefaultGeneratorRestorer {
 public:
  DefaultGeneratorRestorer()
      : generator_(at::detail::getDefaultCPUGenerator()), state_(generator_.get_state()) {}
  ~DefaultGeneratorRestorer() { generator_.set_state(state_); }
  DefaultGeneratorRestorer(const DefaultGeneratorRestorer&) = delete;
  DefaultGeneratorRestorer& operator=(const DefaultGeneratorRestorer&) = delete;

 private:
  at::Generator generator_;
  at::Tensor state_;
};

std::vector<double> toVector(const torch::Tensor& t) {
  const torch::Tensor d = t.to(torch::kFloat64).contiguous().flatten();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

torch::Tensor rowNorms(const torch::Tensor& buffer) {
  return at::linalg_vector_norm(buffer, 2, {-1}, false, c10::nullopt);
}

}  // namespace

std::vector<HistogramEvent> DataInspection::inspect(const RunConfig& config) {
  return inspect(config, DataInspectionOptions{});
}

std::vector<HistogramEvent> DataInspection::inspect(const RunConfig& config,
                                                    const DataInspectionOptions& options) {
  const auto issues = config.validate();
  if (!issues.empty()) throw ConfigError("data inspection config", issues);
  if (options.normBufferBatches < 1 || options.meanBufferBatches < 1 ||
      options.meanBufferCount < 1) {
    throw std::invalid_argument(
        "data inspection: buffer sizes and the number of buffers must be at least 1");
  }
  torch::NoGradGuard noGrad;
  DefaultGeneratorRestorer restorer;
  // The same order a run uses (TrainingRun): seed, source, store, SAE. Sources draw from
  // their own generators, so the SAE's init equals the run's.
  torch::manual_seed(static_cast<uint64_t>(config.seed));
  auto source = ActivationSourceFactory::create(config);
  ActivationStore store(source, ActivationStoreOptions::fromConfig(config));
  const auto sae = Trainer::makeSae(config);
  const double sqrtDIn = std::sqrt(static_cast<double>(config.d_in));

  std::vector<HistogramEvent> events;
  HistogramEvent decoder;
  decoder.name = "weights/W_dec_norms_init";
  decoder.values = toVector(sae->W_dec.detach().norm(2, {1}));
  decoder.title = "Decoder row norms at initialisation";
  events.push_back(std::move(decoder));

  HistogramEvent norms;
  norms.name = "activations/buffer_norms";
  const torch::Tensor normTensor = rowNorms(store.getBuffer(options.normBufferBatches));
  norms.values = toVector(normTensor);
  norms.markers["sqrt(d_in)"] = sqrtDIn;
  norms.markers["mean"] = normTensor.to(torch::kFloat64).mean().item<double>();
  if (const auto factor = store.estimatedNormScalingFactor()) {
    norms.markers["estimated_norm_scaling_factor"] = *factor;
  }
  norms.title = "Activation norms of get_buffer(" + std::to_string(options.normBufferBatches) +
                ") (" + std::to_string(norms.values.size()) + " rows)";
  events.push_back(std::move(norms));

  HistogramEvent means;
  means.name = "activations/buffer_norm_means";
  for (int64_t i = 0; i < options.meanBufferCount; ++i) {
    means.values.push_back(
        rowNorms(store.getBuffer(options.meanBufferBatches)).mean().item<double>());
  }
  means.markers["sqrt(d_in)"] = sqrtDIn;
  means.title = bufferNormMeansTitle(means.values);
  events.push_back(std::move(means));
  return events;
}

std::string DataInspection::bufferNormMeansTitle(const std::vector<double>& means) {
  double mean = 0.0;
  for (double v : means)
    mean += v;
  mean /= means.empty() ? 1.0 : static_cast<double>(means.size());
  double var = 0.0;
  for (double v : means)
    var += (v - mean) * (v - mean);
  var /= means.empty() ? 1.0 : static_cast<double>(means.size());
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "Buffer Norm Mean over %zu batches, mean: %.6g std: %.6g",
                means.size(), mean, std::sqrt(var));
  return buffer;
}

}  // namespace sae
