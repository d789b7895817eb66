"""Size of janja:krige's HTML report by number of samples, with and without the scatter point cap.

The report's leave-one-out plot drew one circle per sample on a distinct half pixel: at 10^6 samples 61,904
circles, a 4.6 MB report. core/reporting/svgplot.py now draws at most MAX_POINTS (5,000) and says how many of
how many in the legend. The survey is synthetic (uniform locations over 10 km, a smooth lognormal field plus
noise); the kriging uses a variogram given by hand and 8 neighbours, so that 10^6 samples krige in minutes on 2
cores (the report's plot and size do not depend on those choices). Pure core code, no QGIS.

    .venv/bin/python bench/bench_report_size.py [--sizes 820,100000,1000000]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from janja_plugin.core.geostatistics import krige_pipeline as kp  # noqa: E402
from janja_plugin.core.raster_grid import grid_for_extent  # noqa: E402
from janja_plugin.core.reporting import svgplot  # noqa: E402

SETTINGS = kp.KrigeSettings(fit="manual", nugget=0.05, psill=0.5, range=3000.0, neighbours=8)
GRID = grid_for_extent(0, 0, 10_000, 10_000, cell=1000.0)


def survey(n, seed=1):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 10_000, n), rng.uniform(0, 10_000, n)
    return x, y, np.exp(np.sin(x / 3000) + np.cos(y / 2500) + 0.3 * rng.standard_normal(n))


def report(result, path, cap):
    saved = svgplot.MAX_POINTS
    svgplot.MAX_POINTS = cap
    try:
        t = time.perf_counter()
        kp.write_report([result], SETTINGS, path, crs_name="synthetic", grid=GRID)
        seconds = time.perf_counter() - t
    finally:
        svgplot.MAX_POINTS = saved
    text = Path(path).read_text(encoding="utf-8")
    return Path(path).stat().st_size, text.count("<circle"), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="820,100000,1000000")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="reportsize_"))
    print("| samples | report with the cap | circles | write s | report without it | circles | write s |")
    print("|---|---|---|---|---|---|---|")
    for n in [int(v) for v in args.sizes.split(",")]:
        x, y, z = survey(n)
        t = time.perf_counter()
        (result,) = kp.krige_elements(x, y, {"Au": list(z)}, SETTINGS, GRID, log=lambda s: None)
        krige_s = time.perf_counter() - t
        capped = report(result, out / f"capped_{n}.html", svgplot.MAX_POINTS)
        uncapped = report(result, out / f"uncapped_{n}.html", sys.maxsize)
        print(f"| {n:,} | {capped[0] / 1e3:,.0f} KB | {capped[1]:,} | {capped[2]:.2f} | {uncapped[0] / 1e3:,.0f} KB | "
              f"{uncapped[1]:,} | {uncapped[2]:.2f} |  (kriging {krige_s:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
