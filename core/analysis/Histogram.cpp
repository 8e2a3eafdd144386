#include "analysis/Histogram.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace sae {

namespace {

std::vector<double> finiteOnly(const std::vector<double>& values, int64_t* nonFinite) {
  std::vector<double> out;
  out.reserve(values.size());
  for (double v : values) {
    if (std::isfinite(v)) {
      out.push_back(v);
    } else {
      ++*nonFinite;
    }
  }
  return out;
}

// numpy.percentile(sorted, q * 100) with the default "linear" method, in numpy 1.24's order of
// operations (virtual index (n - 1) * q, then _lerp with its t >= 0.5 branch).
double percentileSorted(const std::vector<double>& sorted, double q) {
  const double virtualIndex = (static_cast<double>(sorted.size()) - 1.0) * q;
  const double previous = std::floor(virtualIndex);
  const double gamma = virtualIndex - previous;
  const auto last = static_cast<int64_t>(sorted.size()) - 1;
  const int64_t lo = std::clamp<int64_t>(static_cast<int64_t>(previous), 0, last);
  const int64_t hi = std::clamp<int64_t>(static_cast<int64_t>(previous) + 1, 0, last);
  const double a = sorted[static_cast<size_t>(lo)], b = sorted[static_cast<size_t>(hi)];
  const double diff = b - a;
  return gamma >= 0.5 ? b - diff * (1.0 - gamma) : a + diff * gamma;
}

// numpy.linspace(lo, hi, n + 1): i * step + lo, the last edge exactly hi.
std::vector<double> linspaceEdges(double lo, double hi, int64_t binCount) {
  std::vector<double> edges(static_cast<size_t>(binCount + 1));
  const double step = (hi - lo) / static_cast<double>(binCount);
  for (int64_t i = 0; i <= binCount; ++i) {
    edges[static_cast<size_t>(i)] =
        step == 0.0 ? static_cast<double>(i) / static_cast<double>(binCount) * (hi - lo) + lo
                    : static_cast<double>(i) * step + lo;
  }
  edges.back() = hi;
  return edges;
}

// numpy.histogram's equal-width counting: the index from the scaled offset, then corrected by
// one where rounding put a value on the wrong side of an edge; the last bin includes hi.
void countInto(const std::vector<double>& finite, HistogramBins& bins) {
  const auto n = static_cast<int64_t>(bins.edges.size()) - 1;
  bins.counts.assign(static_cast<size_t>(n), 0);
  const double lo = bins.edges.front(), hi = bins.edges.back();
  const double norm = static_cast<double>(n) / (hi - lo);
  for (double v : finite) {
    if (!(v >= lo && v <= hi)) continue;
    auto index = static_cast<int64_t>((v - lo) * norm);
    if (index == n) --index;
    if (v < bins.edges[static_cast<size_t>(index)]) --index;
    if (v >= bins.edges[static_cast<size_t>(index + 1)] && index != n - 1) ++index;
    ++bins.counts[static_cast<size_t>(index)];
  }
}

}  // namespace

int64_t HistogramBins::total() const {
  return std::accumulate(counts.begin(), counts.end(), int64_t{0});
}

int64_t Histogram::numpyAutoBinCount(const std::vector<double>& finiteValues) {
  if (finiteValues.empty()) return 0;
  std::vector<double> sorted = finiteValues;
  std::sort(sorted.begin(), sorted.end());
  const double lo = sorted.front(), hi = sorted.back();
  const double n = static_cast<double>(sorted.size());
  const double sturges = (hi - lo) / (std::log2(n) + 1.0);
  const double iqr = percentileSorted(sorted, 0.75) - percentileSorted(sorted, 0.25);
  const double fd = 2.0 * iqr * std::pow(n, -1.0 / 3.0);
  const double width = fd != 0.0 ? std::min(fd, sturges) : sturges;
  if (width == 0.0) return 1;
  // numpy takes the outer edges (min, max) for the count; a constant input has width 0 above.
  return static_cast<int64_t>(std::ceil((hi - lo) / width));
}

HistogramBins Histogram::autoBins(const std::vector<double>& values) {
  int64_t nonFinite = 0;
  const std::vector<double> finite = finiteOnly(values, &nonFinite);
  if (finite.empty()) {
    HistogramBins bins;
    bins.nonFinite = nonFinite;
    return bins;
  }
  const int64_t count = std::clamp<int64_t>(numpyAutoBinCount(finite), kMinAutoBins, kMaxAutoBins);
  HistogramBins bins = fixedBins(finite, count);
  bins.nonFinite = nonFinite;
  return bins;
}

HistogramBins Histogram::fixedBins(const std::vector<double>& values, int64_t binCount) {
  int64_t nonFinite = 0;
  const std::vector<double> finite = finiteOnly(values, &nonFinite);
  if (finite.empty()) {
    HistogramBins bins;
    bins.nonFinite = nonFinite;
    return bins;
  }
  const auto [minIt, maxIt] = std::minmax_element(finite.begin(), finite.end());
  double lo = *minIt, hi = *maxIt;
  if (lo == hi) {
    lo -= 0.5;
    hi += 0.5;
  }
  HistogramBins bins = fixedBins(finite, binCount, lo, hi);
  bins.nonFinite = nonFinite;
  return bins;
}

HistogramBins Histogram::fixedBins(const std::vector<double>& values, int64_t binCount, double lo,
                                   double hi) {
  if (binCount < 1) {
    throw std::invalid_argument("histogram: the bin count is " + std::to_string(binCount) +
                                "; it must be at least 1");
  }
  if (!(std::isfinite(lo) && std::isfinite(hi) && lo < hi)) {
    throw std::invalid_argument("histogram: the range [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "] must be finite with lo < hi");
  }
  HistogramBins bins;
  const std::vector<double> finite = finiteOnly(values, &bins.nonFinite);
  bins.edges = linspaceEdges(lo, hi, binCount);
  countInto(finite, bins);
  return bins;
}

HistogramBins Histogram::withEdges(const std::vector<double>& values,
                                   const std::vector<double>& edges) {
  if (edges.size() < 2) {
    throw std::invalid_argument("histogram: need at least 2 edges, got " +
                                std::to_string(edges.size()));
  }
  HistogramBins bins;
  const std::vector<double> finite = finiteOnly(values, &bins.nonFinite);
  bins.edges = edges;
  countInto(finite, bins);
  return bins;
}

}  // namespace sae
