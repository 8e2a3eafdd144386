// core/analysis/Histogram against numpy.histogram (tests/reference/histogram_reference.py):
// numpy's "auto" bin count, the clipped automatic rule, a fixed count and given edges, bin edges
// to 1e-12 relative and counts exactly; non-finite values counted apart.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <QtTest>
#include <nlohmann/json.hpp>

#include "analysis/Histogram.h"
#include "support/JsonFixtures.h"

using nlohmann::json;
using sae::Histogram;
using sae::HistogramBins;

namespace {

std::vector<double> valuesOf(const json& c) {
  std::vector<double> out;
  for (const auto& v : c["values"]) {
    if (v.is_number()) {
      out.push_back(v.get<double>());
    } else {
      const std::string s = v.get<std::string>();
      if (s == "nan") {
        out.push_back(std::numeric_limits<double>::quiet_NaN());
      } else if (s == "inf") {
        out.push_back(std::numeric_limits<double>::infinity());
      } else {
        out.push_back(-std::numeric_limits<double>::infinity());
      }
    }
  }
  return out;
}

// Edges to 1e-12 relative (absolute near 0), counts exactly; the message names the case.
void compareBins(const HistogramBins& actual, const json& expected, const std::string& what) {
  const auto edges = expected["edges"].get<std::vector<double>>();
  const auto counts = expected["counts"].get<std::vector<int64_t>>();
  QVERIFY2(actual.edges.size() == edges.size(),
           (what + ": " + std::to_string(actual.edges.size()) + " edges, numpy has " +
            std::to_string(edges.size()))
               .c_str());
  for (size_t i = 0; i < edges.size(); ++i) {
    const double tol = 1e-12 * std::max(1.0, std::fabs(edges[i]));
    QVERIFY2(std::fabs(actual.edges[i] - edges[i]) <= tol,
             (what + ": edge " + std::to_string(i)).c_str());
  }
  QVERIFY2(actual.counts == counts, (what + ": counts differ from numpy").c_str());
}

}  // namespace

class TestHistogram : public QObject {
  Q_OBJECT

 private Q_SLOTS:
  void autoRuleMatchesNumpy() {
    const json fixture = saetest::loadFixture("analysis/histograms.json");
    QCOMPARE(fixture["min_bins"].get<int>(), Histogram::kMinAutoBins);
    QCOMPARE(fixture["max_bins"].get<int>(), Histogram::kMaxAutoBins);
    int checked = 0;
    for (const auto& c : fixture["cases"]) {
      const std::string name = c["name"];
      const std::vector<double> values = valuesOf(c);
      std::vector<double> finite;
      for (double v : values)
        if (std::isfinite(v)) finite.push_back(v);
      QVERIFY2(Histogram::numpyAutoBinCount(finite) == c["numpy_auto_count"].get<int64_t>(),
               (name + ": numpy auto count").c_str());
      const HistogramBins bins = Histogram::autoBins(values);
      compareBins(bins, c["auto"], name + " auto");
      QCOMPARE(bins.nonFinite, c["non_finite"].get<int64_t>());
      QCOMPARE(bins.total() + bins.nonFinite, static_cast<int64_t>(values.size()));
      ++checked;
    }
    QCOMPARE(checked, 7);
  }

  void fixedCountAndGivenEdgesMatchNumpy() {
    const json fixture = saetest::loadFixture("analysis/histograms.json");
    for (const auto& c : fixture["cases"]) {
      const std::string name = c["name"];
      const std::vector<double> values = valuesOf(c);
      const HistogramBins fixed = Histogram::fixedBins(values, 7);
      compareBins(fixed, c["fixed7"], name + " fixed7");
      QCOMPARE(fixed.nonFinite, c["non_finite"].get<int64_t>());
      const auto edges = c["given"]["edges"].get<std::vector<double>>();
      compareBins(Histogram::withEdges(values, edges), c["given"], name + " given edges");
      // The same edges from a range: numpy.linspace gives them, so do we.
      compareBins(Histogram::fixedBins(values, 12, edges.front(), edges.back()), c["given"],
                  name + " given range");
    }
  }

  void emptyAndAllNonFinite() {
    const HistogramBins none = Histogram::autoBins({});
    QVERIFY(none.edges.empty());
    QVERIFY(none.counts.empty());
    QCOMPARE(none.nonFinite, int64_t{0});
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const HistogramBins allNan =
        Histogram::autoBins({nan, nan, std::numeric_limits<double>::infinity()});
    QVERIFY(allNan.counts.empty());
    QCOMPARE(allNan.nonFinite, int64_t{3});
    QCOMPARE(Histogram::numpyAutoBinCount({}), int64_t{0});
  }

  void badArgumentsAreRejectedWithAMessage() {
    try {
      Histogram::fixedBins({1.0, 2.0}, 0);
      QFAIL("a bin count of 0 was accepted");
    } catch (const std::invalid_argument& e) {
      QVERIFY(std::string(e.what()).find("at least 1") != std::string::npos);
    }
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, Histogram::fixedBins({1.0}, 3, 2.0, 2.0));
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, Histogram::withEdges({1.0}, {0.5}));
  }
};

QTEST_APPLESS_MAIN(TestHistogram)
#include "tst_histogram.moc"
