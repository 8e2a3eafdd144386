// DataInspection on the synthetic source: sizes, the SAE it inspects equals a run's initial SAE,
// markers, the notebook's title with the mean and std of the plotted values, and torch's
// default generator left as it was.
#include <cmath>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <QtTest>

#include "analysis/DataInspection.h"
#include "config/ConfigError.h"
#include "support/QtTestStrings.h"
#include "train/Trainer.h"

using sae::DataInspection;
using sae::HistogramEvent;
using sae::RunConfig;

namespace {

RunConfig smallSyntheticConfig(bool normalize) {
  RunConfig c;
  c.use_synthetic_activations = true;
  c.d_in = 16;
  c.expansion_factor = 4;
  c.synthetic_n_features = 48;
  c.synthetic_feature_probability = 0.1;
  c.synthetic_noise_std = 0.01;
  c.context_size = 4;
  c.store_batch_size = 2;
  c.n_batches_in_buffer = 4;
  c.train_batch_size = 32;
  c.training_tokens = 32 * 10;
  c.lr_warm_up_steps = 0;
  c.normalize_activations = normalize;
  c.seed = 7;
  c.b_dec_init_method = "zeros";
  c.log_to_wandb = false;
  return c;
}

double meanOf(const std::vector<double>& v) {
  double s = 0;
  for (double x : v)
    s += x;
  return s / static_cast<double>(v.size());
}

}  // namespace

class TestDataInspection : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() { torch::set_num_threads(1); }

  void eventsOnTheSyntheticSource() {
    const RunConfig config = smallSyntheticConfig(true);
    QVERIFY2(config.validate().empty(), "test config is invalid");
    const auto events = DataInspection::inspect(config);
    QCOMPARE(events.size(), size_t{3});

    // Decoder norms: the SAE a run of this config starts from (seeded with config.seed).
    const HistogramEvent& decoder = events[0];
    QCOMPARE(decoder.name, std::string("weights/W_dec_norms_init"));
    QCOMPARE(decoder.values.size(), size_t{64});
    torch::manual_seed(7);
    const auto sae = sae::Trainer::makeSae(config);
    const torch::Tensor expected = sae->W_dec.detach().norm(2, {1}).to(torch::kFloat64);
    for (size_t i = 0; i < decoder.values.size(); ++i)
      QCOMPARE(decoder.values[i], expected[static_cast<int64_t>(i)].item<double>());

    // One get_buffer(32): 32 * store_batch_size * context_size rows; normalised, so the mean
    // row norm is sqrt(d_in) (the factor is sqrt(d_in) / mean norm of this very buffer).
    const HistogramEvent& norms = events[1];
    QCOMPARE(norms.name, std::string("activations/buffer_norms"));
    QCOMPARE(norms.values.size(), size_t{32 * 2 * 4});
    QCOMPARE(norms.markers.at("sqrt(d_in)"), 4.0);
    QVERIFY(norms.markers.count("estimated_norm_scaling_factor") == 1);
    QVERIFY(norms.markers.at("estimated_norm_scaling_factor") > 0);
    QVERIFY(std::fabs(meanOf(norms.values) - 4.0) < 1e-4);
    QVERIFY(std::fabs(norms.markers.at("mean") - meanOf(norms.values)) < 1e-9);
    for (double v : norms.values)
      QVERIFY(std::isfinite(v) && v >= 0);

    // Ten get_buffer(64) means, title with their mean and population std.
    const HistogramEvent& means = events[2];
    QCOMPARE(means.name, std::string("activations/buffer_norm_means"));
    QCOMPARE(means.values.size(), size_t{10});
    const double m = meanOf(means.values);
    double var = 0;
    for (double v : means.values)
      var += (v - m) * (v - m);
    const double sd = std::sqrt(var / 10.0);
    QVERIFY(sd > 0);  // different buffers, different means
    char expectedTitle[160];
    std::snprintf(expectedTitle, sizeof expectedTitle,
                  "Buffer Norm Mean over 10 batches, mean: %.6g std: %.6g", m, sd);
    QCOMPARE(means.title, std::string(expectedTitle));
    // Scaled by the first buffer's factor: every later buffer's mean norm is near sqrt(d_in).
    for (double v : means.values)
      QVERIFY2(std::fabs(v - 4.0) < 0.6, std::to_string(v).c_str());
  }

  void withoutNormalisationNoFactorMarker() {
    sae::DataInspectionOptions options;
    options.normBufferBatches = 3;
    options.meanBufferBatches = 2;
    options.meanBufferCount = 4;
    const auto events = DataInspection::inspect(smallSyntheticConfig(false), options);
    QCOMPARE(events[1].values.size(), size_t{3 * 2 * 4});
    QVERIFY(events[1].markers.count("estimated_norm_scaling_factor") == 0);
    QCOMPARE(events[2].values.size(), size_t{4});
    QVERIFY(events[2].title.rfind("Buffer Norm Mean over 4 batches, mean: ", 0) == 0);
  }

  // A run started after the inspection draws what it would have drawn without it.
  void defaultGeneratorIsRestored() {
    torch::manual_seed(123);
    const torch::Tensor without = torch::rand({5});
    torch::manual_seed(123);
    DataInspection::inspect(smallSyntheticConfig(true));
    QVERIFY(torch::equal(torch::rand({5}), without));
  }

  void invalidConfigIsRejected() {
    RunConfig config = smallSyntheticConfig(true);
    config.d_in = -3;
    QVERIFY_THROWS_EXCEPTION(sae::ConfigError, DataInspection::inspect(config));
  }

  void titleFormat() {
    QCOMPARE(DataInspection::bufferNormMeansTitle({1.0, 3.0}),
             std::string("Buffer Norm Mean over 2 batches, mean: 2 std: 1"));
  }
};

QTEST_APPLESS_MAIN(TestDataInspection)
#include "tst_data_inspection.moc"
