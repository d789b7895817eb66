"""Scatter plots draw at most svgplot.MAX_POINTS circles and say so: a 10^6-sample kriging report drew 61,904
circles in its leave-one-out plot and weighed 4.6 MB. Surveys below the cap draw every sample, as before."""

import re

import numpy as np

from janja_plugin.core.geostatistics import krige_pipeline as kp
from janja_plugin.core.raster_grid import grid_for_extent
from janja_plugin.core.reporting import svgplot

GRID = grid_for_extent(0, 0, 10_000, 10_000, cell=1000.0)
REPORT_LIMIT = 600_000  # bytes; measured 375,725 with the cap, 3,473,260 without it (46,895 circles)


def survey(n, seed=1):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(0, 10_000, n), rng.uniform(0, 10_000, n)
    return x, y, np.exp(np.sin(x / 3000) + np.cos(y / 2500) + 0.3 * rng.standard_normal(n))


def loo_chart(path):
    return next(s for s in re.findall(r"<svg.*?</svg>", path.read_text(), re.S) if "leave-one-out" in s)


def krige_report(n, path, settings=None):
    settings = settings or kp.KrigeSettings()
    x, y, z = survey(n)
    (r,) = kp.krige_elements(x, y, {"Au": list(z)}, settings, GRID, log=lambda s: None)
    kp.write_report([r], settings, path, crs_name="x", grid=GRID)
    return r


# A variogram given by hand and 8 neighbours: the same report and leave-one-out plot at 100,000 samples in about
# 5 s instead of 20-40 s (fitted variogram, 32 neighbours) on this 2-core machine.
QUICK = kp.KrigeSettings(fit="manual", nugget=0.05, psill=0.5, range=3000.0, neighbours=8)


def test_a_100000_sample_kriging_report_stays_small_and_says_how_many_samples_it_draws(tmp_path):
    r = krige_report(100_000, tmp_path / "r.html", QUICK)
    assert r.cv["observed"].size == 100_000
    assert (tmp_path / "r.html").stat().st_size < REPORT_LIMIT
    svg = loo_chart(tmp_path / "r.html")
    assert "5,000 of 100,000 samples drawn" in svg
    assert svg.count("<circle") == 5000 == svgplot.MAX_POINTS


def test_a_500_sample_kriging_report_draws_every_sample(tmp_path):
    krige_report(500, tmp_path / "r.html")
    svg = loo_chart(tmp_path / "r.html")
    assert svg.count("<circle") == 500 and ">samples</text>" in svg and " drawn" not in svg


def lattice(nx, ny):
    """nx × ny points that fall on distinct screen positions (none merged as the same half pixel)."""
    xx, yy = np.meshgrid(np.arange(nx, dtype=float), np.arange(ny, dtype=float))
    return xx.ravel(), yy.ravel()


def test_the_cap_applies_only_beyond_max_points_of_distinct_positions():
    x, y = lattice(100, 50)  # exactly 5,000
    svg = svgplot.chart([{"x": x, "y": y, "label": "rows"}])
    assert svg.count("<circle") == 5000 and ">rows</text>" in svg and " drawn" not in svg
    x, y = lattice(100, 51)
    svg = svgplot.chart([{"x": x, "y": y}])
    assert svg.count("<circle") == 5000 and "5,000 of 5,100 points drawn" in svg


def test_the_subsample_is_seeded_keeps_isolated_points_and_keeps_density():
    rng = np.random.default_rng(3)
    core = rng.normal(0, 1, (60_000, 2))
    far = np.array([[12.0, 0.0], [-12.0, 3.0], [0.0, 14.0], [9.0, -11.0]])  # four outliers
    pts = np.vstack([core, far])
    series = [{"x": pts[:, 0], "y": pts[:, 1], "label": "samples"}]
    svg = svgplot.chart(series)
    assert svg == svgplot.chart(series)  # the same data draw the same points
    assert svg.count("<circle") == 5000 and "5,000 of 60,004 samples drawn" in svg
    # on screen-like coordinates (about 20 px per SD): every outlier drawn, and the core about as dense as it is
    keep = svgplot._even_subsample(260 + 20 * pts[:, 0], 170 + 20 * pts[:, 1])
    assert keep.size == 5000 and np.all(np.diff(keep) > 0)
    assert set(range(60_000, 60_004)) <= set(keep.tolist())
    inner = np.hypot(*pts[keep].T) < 1.0
    assert 0.30 < inner.mean() < 0.45  # 39 % of the data lie within one SD of the centre
