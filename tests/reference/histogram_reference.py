#!/usr/bin/python3
"""Golden values for core/analysis/Histogram (numpy.histogram's equal-width bins).

What it encodes, for a few value sets (normal, skewed with outliers, few values, constant,
with NaN/Inf):
  * numpy's bins="auto" bin count on the finite values (np.histogram_bin_edges(v, "auto")),
  * the workbench's automatic rule: that count clipped to [10, 200], binned with
    np.histogram(v, bins=count) -> edges and counts,
  * a fixed bin count (np.histogram(v, bins=7)),
  * counts over given edges (np.histogram(v, bins=np.linspace(lo, hi, 13))) that cut off both
    tails, so out-of-range values are dropped as numpy drops them,
  * the number of non-finite values (left out of every bin).

And for the plots' smoothing slider, TensorBoard's scalar smoothing (a debiased EMA, as in
tensorboard/webapp/widgets/line_chart_v2/data_transformer.ts: last = last * w + (1 - w) * y,
smoothed = last / (1 - w ** n) over the finite values seen so far; non-finite values pass
through) on a noisy loss curve with a NaN and an Inf in it.

Regenerate:
    /usr/bin/python3 tests/reference/histogram_reference.py
writes tests/fixtures/analysis/histograms.json and tests/fixtures/analysis/ema_smoothing.json.
"""

import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "analysis", "histograms.json")
MIN_BINS, MAX_BINS = 10, 200


def case(name, values):
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    auto_count = len(np.histogram_bin_edges(finite, bins="auto")) - 1
    clipped = int(min(max(auto_count, MIN_BINS), MAX_BINS))
    counts, edges = np.histogram(finite, bins=clipped)
    fixed_counts, fixed_edges = np.histogram(finite, bins=7)
    lo, hi = np.percentile(finite, [10, 80])
    if lo == hi:
        lo, hi = lo - 1.0, hi + 1.0
    given_edges = np.linspace(lo, hi, 13)
    given_counts, _ = np.histogram(finite, bins=given_edges)
    return {
        "name": name,
        # JSON has no NaN/Inf: they travel as strings and the test turns them back.
        "values": [float(v) if np.isfinite(v) else str(v) for v in values],
        "non_finite": int(len(values) - len(finite)),
        "numpy_auto_count": int(auto_count),
        "auto": {"edges": edges.tolist(), "counts": counts.tolist()},
        "fixed7": {"edges": fixed_edges.tolist(), "counts": fixed_counts.tolist()},
        "given": {"edges": given_edges.tolist(), "counts": given_counts.tolist()},
    }


def tensorboard_smooth(ys, weight):
    last, n, out = 0.0, 0, []
    for y in ys:
        if not np.isfinite(y):
            out.append(y)
            continue
        last = last * weight + (1.0 - weight) * y
        n += 1
        debias = 1.0 - weight ** n if weight != 1.0 else 1.0
        out.append(last / debias)
    return out


def ema_fixture(rng):
    steps = np.arange(300)
    ys = 2.0 * np.exp(-steps / 60.0) + 0.1 + rng.normal(0.0, 0.05, 300)
    ys[17] = np.nan
    ys[120] = np.inf
    cases = []
    for weight in [0.0, 0.6, 0.9, 0.999]:
        smoothed = ys.tolist() if weight == 0.0 else tensorboard_smooth(ys.tolist(), weight)
        cases.append({"weight": weight,
                      "smoothed": [float(v) if np.isfinite(v) else str(v) for v in smoothed]})
    return {"ys": [float(v) if np.isfinite(v) else str(v) for v in ys], "cases": cases}


def main():
    rng = np.random.default_rng(1234)
    cases = [
        case("normal_2000", rng.normal(3.0, 0.7, 2000)),
        # Heavy right tail: Freedman-Diaconis asks for more than 200 bins, so the clip applies.
        case("lognormal_outliers_3000", np.concatenate([rng.lognormal(0.0, 1.2, 2990),
                                                        [250.0, 400.0, 1e3] * 3, [0.0]])),
        case("ten_values", rng.normal(22.6, 0.05, 10)),
        case("constant", [1.5] * 20),
        case("with_nan_inf", np.concatenate([rng.uniform(-1.0, 1.0, 500),
                                             [np.nan, np.inf, -np.inf, np.nan]])),
        # Values on exact bin edges (0, 0.1, ..., 1 with 10 bins).
        case("on_edges", np.repeat(np.arange(0, 11) / 10.0, 3)),
        case("log10_density", np.log10(rng.beta(0.3, 30.0, 1500) + 1e-10)),
    ]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump({"min_bins": MIN_BINS, "max_bins": MAX_BINS, "cases": cases}, f)
        f.write("\n")
    print("wrote", OUT, os.path.getsize(OUT), "bytes")
    ema_out = os.path.join(os.path.dirname(OUT), "ema_smoothing.json")
    with open(ema_out, "w") as f:
        json.dump(ema_fixture(np.random.default_rng(99)), f)
        f.write("\n")
    print("wrote", ema_out, os.path.getsize(ema_out), "bytes")
    for c in cases:
        print(c["name"], "numpy auto", c["numpy_auto_count"], "-> bins", len(c["auto"]["counts"]))


if __name__ == "__main__":
    main()
