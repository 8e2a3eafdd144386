// GeometricMedian and the b_dec initialisers against tests/reference/sae_reference.py
// (Weiszfeld from the mean, maxiter 100, eps 1e-6, ftol 1e-20).
#include <string>
#include <thread>

#include <torch/torch.h>
#include <QtTest>
#include <nlohmann/json.hpp>

#include "sae/GeometricMedian.h"
#include "sae/Sae.h"
#include "support/JsonFixtures.h"

using nlohmann::json;
using sae::GeometricMedian;
using sae::Sae;
using sae::SaeOptions;
using saetest::loadFixture;
using saetest::tensorFromJson;

namespace {

double maxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

}  // namespace

class TestSaeGeometricMedian : public QObject {
  Q_OBJECT

  json fixture_;

 private Q_SLOTS:
  void initTestCase() {
    torch::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));
    fixture_ = loadFixture("sae/geometric_median.json");
  }

  // float32 points (with outliers): within 1e-6 absolute / 1e-5 relative of the reference.
  void float32MatchesReference() {
    const auto points = tensorFromJson(fixture_["points"]);
    const auto median = GeometricMedian::compute(points);
    const auto expected = tensorFromJson(fixture_["median"]);
    QCOMPARE(median.scalar_type(), torch::kFloat32);
    QVERIFY(((median - expected).abs() - (1e-6 + 1e-5 * expected.abs())).max().item<double>() <= 0);
    // The outliers pull the mean away; the median stays with the bulk.
    QVERIFY(maxAbsDiff(median, tensorFromJson(fixture_["mean"])) > 0.1);
  }

  // float64 points: within 1e-12 of the reference (which takes more Weiszfeld iterations).
  void float64MatchesReference() {
    const auto points = tensorFromJson(fixture_["points"], torch::kFloat64);
    const auto median = GeometricMedian::compute(points);
    QCOMPARE(median.scalar_type(), torch::kFloat64);
    QVERIFY(maxAbsDiff(median, tensorFromJson(fixture_["median_float64"], torch::kFloat64)) <
            1e-12);
  }

  // Identical points: the objective is 0 at once and the median is the point itself.
  void identicalPoints() {
    const auto point = torch::tensor({1.5, -2.0, 0.25}, torch::kFloat32);
    const auto median = GeometricMedian::compute(point.repeat({10, 1}));
    QVERIFY(maxAbsDiff(median, point) < 1e-6);
  }

  // maxIter 0 returns the mean.
  void zeroIterationsIsTheMean() {
    const auto points = tensorFromJson(fixture_["points"]);
    QVERIFY(maxAbsDiff(GeometricMedian::compute(points, 0), points.mean(0)) < 1e-6);
  }

  // The b_dec initialisers copy in place (the optimiser keeps the same tensor).
  void bDecInitialisers() {
    SaeOptions options;
    options.d_in = 16;
    options.d_sae = 64;
    Sae sae(options);
    const auto before = sae.b_dec;
    const auto points = tensorFromJson(fixture_["points"]);
    sae.initializeBDecWithGeometricMedian(points);
    QVERIFY(sae.b_dec.is_same(before));
    QVERIFY(sae.b_dec.requires_grad());
    QVERIFY(maxAbsDiff(sae.b_dec, tensorFromJson(fixture_["median"])) < 1e-5);
    sae.initializeBDecWithMean(points);
    QVERIFY(sae.b_dec.is_same(before));
    QVERIFY(maxAbsDiff(sae.b_dec, tensorFromJson(fixture_["mean"])) < 1e-6);
  }
};

QTEST_APPLESS_MAIN(TestSaeGeometricMedian)
#include "tst_sae_geometric_median.moc"
