#pragma once
// Equal-width histograms of raw values, binned exactly as numpy.histogram bins them, so the
// workbench's histogram views and the tests agree bin for bin with a numpy reference.
// Torch-free and Qt-free.
#include <cstdint>
#include <vector>

namespace sae {

struct HistogramBins {
  std::vector<double> edges;    // bin i is [edges[i], edges[i+1]); the last bin is closed
  std::vector<int64_t> counts;  // counts.size() == edges.size() - 1 (both empty: no values)
  int64_t nonFinite = 0;        // NaN and +-Inf values, left out of every bin
  int64_t total() const;        // sum of counts
  double binWidth() const { return edges.size() < 2 ? 0.0 : edges[1] - edges[0]; }
};

class Histogram {
 public:
  static constexpr int kMinAutoBins = 10;
  static constexpr int kMaxAutoBins = 200;

  // The automatic rule: numpy's bins="auto" width (the smaller of the Freedman-Diaconis width
  // 2 * IQR / n^(1/3) and the Sturges width range / (log2 n + 1); Sturges alone when the IQR is
  // 0), turned into a bin count ceil(range / width) and clipped to [kMinAutoBins, kMaxAutoBins]
  // so a large buffer does not give thousands of one-pixel bins and ten values still show a
  // shape. Equal-width bins span [min, max] of the finite values.
  static HistogramBins autoBins(const std::vector<double>& values);
  // The bin count autoBins would use before clipping (numpy's "auto" count); 0 for no values.
  static int64_t numpyAutoBinCount(const std::vector<double>& finiteValues);
  // binCount equal-width bins over [min, max] of the finite values (numpy.histogram(v, bins=n)):
  // a constant input gets the range [v - 0.5, v + 0.5] as numpy does.
  static HistogramBins fixedBins(const std::vector<double>& values, int64_t binCount);
  // Same, over a given range [lo, hi] (values outside are not counted, as in numpy).
  static HistogramBins fixedBins(const std::vector<double>& values, int64_t binCount, double lo,
                                 double hi);
  // Counts of values in the given equal-width edges (e.g. the bins of another snapshot, so two
  // histograms can share their bins).
  static HistogramBins withEdges(const std::vector<double>& values,
                                 const std::vector<double>& edges);
};

}  // namespace sae
