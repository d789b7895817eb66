"""Merging duplicate sample locations (core/geostatistics/samples.merge_duplicates): the per-location
np.nanmean loop it had against the vectorised form (one sort, one np.bincount per column), and janja:krige's
core pipeline at 10^5 samples with each.

Two surveys per size: every row its own location (uniform random points over 10 km, as bench_report_size.py
krige them: the worst case for the loop, one np.nanmean per row) and a resampled one (rows drawn from 60 % as
many sites, rounded to 0.1 m, 10 % of values missing). Each line checks the results are bit-identical.
Pure core code, no QGIS; one process, whatever threads numpy uses (merging is single-threaded).

    .venv/bin/python bench/bench_merge_duplicates.py [--sizes 100000,1000000] [--krige 100000]
"""

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from janja_plugin.core.geostatistics import krige_pipeline as kp  # noqa: E402
from janja_plugin.core.geostatistics import samples  # noqa: E402
from janja_plugin.core.raster_grid import grid_for_extent  # noqa: E402

NEW = samples.merge_duplicates


def loop_merge(x, y, values, tolerance=0.0):
    """merge_duplicates before it was vectorised (tolerance 0 only; validation left out)."""
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    values = np.asarray(values, float).reshape(x.size, -1)
    assert tolerance == 0
    _, label = np.unique(np.column_stack([x, y]), axis=0, return_inverse=True)
    label = np.asarray(label).ravel()
    order = np.argsort(label, kind="stable")
    _, starts, sizes = np.unique(label[order], return_index=True, return_counts=True)
    groups = [order[s:s + c] for s, c in zip(starts, sizes)]
    first = np.array([g[0] for g in groups], dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mv = np.array([np.nanmean(values[g], axis=0) for g in groups]).reshape(len(groups), -1)
    return samples.MergedSamples(x[first], y[first], mv, sizes, order, int(np.sum(sizes > 1)))


def surveys(n, seed=1):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 10_000, n), rng.uniform(0, 10_000, n)
    yield "distinct", x, y, np.exp(np.sin(x / 3000) + np.cos(y / 2500) + 0.3 * rng.standard_normal(n))[:, None]
    sites = int(0.6 * n)
    sx, sy = rng.uniform(0, 10_000, sites).round(1), rng.uniform(0, 10_000, sites).round(1)
    pick = rng.integers(0, sites, n)
    v = np.exp(rng.normal(0, 1, (n, 1)))
    v[rng.random(n) < 0.1] = np.nan
    yield "resampled", sx[pick], sy[pick], v


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--krige", type=int, default=100_000, help="samples of the janja:krige run (0: skip)")
    args = parser.parse_args()
    print("| samples | survey | locations | loop s | vectorised s | ratio | bit-identical |")
    print("|---|---|---|---|---|---|---|")
    for n in [int(v) for v in args.sizes.split(",")]:
        for name, x, y, v in surveys(n):
            old, t_old = timed(loop_merge, x, y, v)
            new, t_new = timed(NEW, x, y, v)
            same = all(np.array_equal(getattr(old, f), getattr(new, f), equal_nan=True)
                       for f in ("x", "y", "values", "group_sizes", "row_order"))
            print(f"| {n:,} | {name} | {new.x.size:,} | {t_old:.2f} | {t_new:.3f} | {t_old / t_new:.0f}x | {same} |",
                  flush=True)
    if args.krige:
        settings = kp.KrigeSettings(fit="manual", nugget=0.05, psill=0.5, range=3000.0, neighbours=8)
        grid = grid_for_extent(0, 0, 10_000, 10_000, cell=1000.0)
        _, x, y, z = next(surveys(args.krige))
        runs = {}
        for label, merge in (("loop", loop_merge), ("vectorised", NEW)):
            samples.merge_duplicates = merge
            try:
                (res,), t = timed(lambda: kp.krige_elements(x, y, {"Au": list(z[:, 0])}, settings, grid,
                                                            log=lambda s: None))
            finally:
                samples.merge_duplicates = NEW
            runs[label] = (res, t)
        (a, ta), (b, tb) = runs["loop"], runs["vectorised"]
        same = np.array_equal(a.prediction, b.prediction, equal_nan=True)
        print(f"\njanja:krige core pipeline, {args.krige:,} samples, 8 neighbours, 10x10 cells, manual variogram: "
              f"{ta:.2f} s with the loop, {tb:.2f} s vectorised ({ta / tb:.1f}x); predictions identical: {same}")


if __name__ == "__main__":
    main()
