// SyntheticActivationSource: determinism per seed, isolation from torch's default generator,
// the statistics of the generated rows, and the mean-max-cosine-similarity score.
#include <QtTest>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <thread>

#include "data/SyntheticActivationSource.h"

using sae::SyntheticActivationSource;
using sae::SyntheticOptions;

namespace {

SyntheticOptions options(uint64_t seed, int64_t dIn = 64, int64_t nFeatures = 256, double p = 0.01,
                         double noise = 0.0) {
  SyntheticOptions o;
  o.seed = seed;
  o.d_in = dIn;
  o.n_features = nFeatures;
  o.feature_probability = p;
  o.noise_std = noise;
  return o;
}

}  // namespace

class TestSyntheticSource : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
  }

  void deterministicPerSeed() {
    SyntheticActivationSource a(options(3, 64, 256, 0.05, 0.1));
    SyntheticActivationSource b(options(3, 64, 256, 0.05, 0.1));
    SyntheticActivationSource c(options(4, 64, 256, 0.05, 0.1));
    QVERIFY(torch::equal(a.trueFeatures(), b.trueFeatures()));
    QVERIFY(!torch::equal(a.trueFeatures(), c.trueFeatures()));
    for (int i = 0; i < 3; ++i) {
      const torch::Tensor x = a.next(500);
      QCOMPARE(x.sizes().vec(), (std::vector<int64_t>{500, 64}));
      QCOMPARE(x.scalar_type(), torch::kFloat32);
      QVERIFY(torch::equal(x, b.next(500)));
      QVERIFY(!torch::equal(x, c.next(500)));
    }
    QCOMPARE(a.next(0).sizes().vec(), (std::vector<int64_t>{0, 64}));
  }

  // Without noise the stream does not depend on how rows are requested (firings are found by
  // geometric jumps that carry over between calls).
  void streamIndependentOfRequestSizes() {
    SyntheticActivationSource a(options(5, 16, 2048, 0.01));
    SyntheticActivationSource b(options(5, 16, 2048, 0.01));
    const torch::Tensor whole = a.next(5000);
    const torch::Tensor parts =
        torch::cat({b.next(1234), b.next(0), b.next(1), b.next(2999), b.next(766)});
    QVERIFY(torch::equal(whole, parts));
  }

  void extremeProbabilities() {
    SyntheticActivationSource never(options(1, 8, 4, 0.0, 0.0));
    QVERIFY(torch::equal(never.next(100), torch::zeros({100, 8})));
    // p = 1: every feature fires on every row with a positive coefficient.
    SyntheticActivationSource always(options(1, 8, 4, 1.0, 0.0));
    const torch::Tensor f = always.trueFeatures().to(torch::kFloat64);
    const torch::Tensor c =
        always.next(200).to(torch::kFloat64).matmul(f.t()).matmul(torch::inverse(f.matmul(f.t())));
    QVERIFY(c.min().item<double>() > 0.0);
  }

  void isolatedFromDefaultGenerator() {
    // The source neither consumes nor depends on the default generator.
    torch::manual_seed(11);
    const torch::Tensor expected = torch::rand({8});
    torch::manual_seed(11);
    SyntheticActivationSource a(options(9));
    const torch::Tensor x1 = a.next(300);
    QVERIFY(torch::equal(torch::rand({8}), expected));

    torch::manual_seed(12345);
    torch::rand({100});
    SyntheticActivationSource b(options(9));
    QVERIFY(torch::equal(b.next(300), x1));
  }

  void featuresAreUnitNormAndMagnitudesBounded() {
    SyntheticActivationSource s(options(1, 32, 100));
    const torch::Tensor norms = s.trueFeatures().norm(2, {1});
    QVERIFY(torch::allclose(norms, torch::ones({100}), 0, 1e-5));
    QCOMPARE(s.trueFeatures().sizes().vec(), (std::vector<int64_t>{100, 32}));
  }

  // Recover the coefficients exactly (d_in > n_features, so the features are independent and
  // x = c F is solvable) and check their statistics against the model.
  void activeFeatureStatistics() {
    const int64_t rows = 20000, nFeatures = 32;
    const double p = 0.1;
    SyntheticActivationSource s(options(21, 64, nFeatures, p));
    const torch::Tensor x = s.next(rows).to(torch::kFloat64);
    const torch::Tensor f = s.trueFeatures().to(torch::kFloat64);
    const torch::Tensor c = x.matmul(f.t()).matmul(torch::inverse(f.matmul(f.t())));
    const torch::Tensor active = c.abs() > 1e-4;

    // Mean active features per row = n_features * p (std of the estimate ~0.012).
    const double meanActive = active.sum(1).to(torch::kFloat64).mean().item<double>();
    QVERIFY2(std::abs(meanActive - nFeatures * p) < 0.05, std::to_string(meanActive).c_str());
    // Every feature fires with probability p (per-feature std ~0.0021).
    const torch::Tensor perFeature = active.to(torch::kFloat64).mean(0);
    QVERIFY2((perFeature - p).abs().max().item<double>() < 0.012,
             std::to_string(perFeature.min().item<double>()).c_str());
    // Coefficients are non-negative, at most 1.5 (U(0,1] x magnitude in [0.5, 1.5)), and their
    // mean is E[U] E[magnitude] = 0.5 * ~1.0.
    QVERIFY(c.min().item<double>() > -1e-4);
    QVERIFY(c.max().item<double>() < 1.5 + 1e-4);
    const double meanCoef = c.masked_select(active).mean().item<double>();
    QVERIFY2(std::abs(meanCoef - 0.5) < 0.05, std::to_string(meanCoef).c_str());
  }

  void noiseHasTheRequestedStd() {
    SyntheticActivationSource s(options(2, 64, 16, 0.0, 0.5));
    const torch::Tensor x = s.next(4000);
    QVERIFY(std::abs(x.mean().item<double>()) < 0.01);
    QVERIFY(std::abs(x.std().item<double>() - 0.5) < 0.01);
  }

  void meanMaxCosineSimilarity() {
    SyntheticActivationSource s(options(7, 64, 256));
    const torch::Tensor f = s.trueFeatures();
    QVERIFY(std::abs(s.meanMaxCosineSimilarity(f) - 1.0) < 1e-5);
    // Scale, order and extra rows do not matter.
    torch::Generator g = at::make_generator<at::CPUGeneratorImpl>(99);
    const torch::Tensor perm = torch::randperm(256, g, torch::kInt64);
    const torch::Tensor decoder =
        torch::cat({f.index_select(0, perm) * 3.0, torch::randn({100, 64}, g, torch::kFloat32)});
    QVERIFY(std::abs(s.meanMaxCosineSimilarity(decoder) - 1.0) < 1e-5);
    // Random directions score low (expected ~0.35 for 256 rows in 64 dims).
    const double random = s.meanMaxCosineSimilarity(torch::randn({256, 64}, g, torch::kFloat32));
    QVERIFY2(random < 0.5, std::to_string(random).c_str());
    // Half the features recovered: about (1 + random) / 2.
    const torch::Tensor half =
        torch::cat({f.narrow(0, 0, 128), torch::randn({128, 64}, g, torch::kFloat32)});
    const double partial = s.meanMaxCosineSimilarity(half);
    QVERIFY2(partial > 0.6 && partial < 0.75, std::to_string(partial).c_str());
    bool threw = false;
    try {
      s.meanMaxCosineSimilarity(torch::randn({10, 63}));
    } catch (const std::runtime_error&) {
      threw = true;
    }
    QVERIFY(threw);
  }

  void describeAndOptionsErrors() {
    SyntheticActivationSource s(options(3));
    QVERIFY(s.shufflesBuffers());
    QCOMPARE(s.dIn(), int64_t{64});
    const std::string d = s.describe();
    QVERIFY2(d.find("256") != std::string::npos && d.find("64 dims") != std::string::npos,
             d.c_str());
    auto bad = options(0);
    bad.feature_probability = 1.5;
    bool threw = false;
    try {
      SyntheticActivationSource x(bad);
    } catch (const std::runtime_error&) {
      threw = true;
    }
    QVERIFY(threw);
  }
};

QTEST_APPLESS_MAIN(TestSyntheticSource)
#include "tst_synthetic_source.moc"
